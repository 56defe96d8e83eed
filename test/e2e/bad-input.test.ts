// Bad input on the proxy path: each gets a clear Kubernetes Status and changes
// nothing in the cluster. Requests go over real HTTPS to the local stack,
// which forwards (or not) to the real kube-apiserver.
import { rmSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { generateSigningKey, TokenService, type SigningKeySet } from '../../lambdas/core/tokens.ts';
import { recordsTableDefinition } from '../../lambdas/adapters/dynamodb/tables.ts';
import { LOCAL_CREDENTIALS, TABLES } from '../../local/stack.ts';
import { kubectl } from '../support/kubectl.ts';
import { PROD_POLICY, startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');

interface KubeStatus {
  kind: string;
  code: number;
  reason: string;
  message: string;
  details?: { causes?: { reason: string }[] };
}

describe.skipIf(!cluster)('bad input on the proxy path', () => {
  let env: TestStack;
  let agent: TestAgent;
  let token: string;
  let keys: SigningKeySet;
  const base = '/k8s/prod-cluster';

  async function adminGet(path: string): Promise<number> {
    const caPem = cluster!.caPem;
    return new Promise((resolve, reject) => {
      const req = request(new URL(path, cluster!.server), { ca: caPem, headers: { authorization: `Bearer ${cluster!.adminToken}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
  }

  async function proxy(method: string, path: string, headers: Record<string, string | string[]> = {}, body?: string | Buffer) {
    const response = await env.https(method, path, { headers: { authorization: `Bearer ${token}`, ...headers }, body });
    let status: KubeStatus | undefined;
    try {
      status = JSON.parse(response.body) as KubeStatus;
    } catch {
      status = undefined;
    }
    return { ...response, status };
  }

  function expectStatus(result: { status?: KubeStatus; headers: Record<string, unknown> }, code: number, cause: string) {
    expect(result.status?.kind, JSON.stringify(result.status)).toBe('Status');
    expect(result.status?.code).toBe(code);
    expect(result.status?.details?.causes?.[0]?.reason).toBe(cause);
    expect(result.status?.message).toMatch(/^airlock: /);
  }

  /** The newest record on the connection, once it is complete (completion follows the response). */
  async function lastRecord() {
    for (let attempt = 0; ; attempt++) {
      const audit = await env.cli(['--json', 'audit', 'list', '--connection', 'prod-cluster', '--limit', '1']);
      const record = (JSON.parse(audit.stdout) as { items: { decision: string; status: number; reason: string; agent: string; phase: string }[] }).items[0]!;
      if (record.phase !== 'started' || attempt > 50) return record;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  beforeAll(async () => {
    env = await startTestStack();
    await env.createConnection('prod-cluster', { cluster: cluster!, policy: PROD_POLICY });
    await env.createConnection('other-cluster', { cluster: cluster!, policy: PROD_POLICY });
    await env.createConnection('dead-cluster', { cluster: cluster!, policy: PROD_POLICY, server: 'https://127.0.0.1:9' });
    agent = await env.createAgent('bad-input-agent');
    for (const connection of ['prod-cluster', 'other-cluster', 'dead-cluster']) {
      const window = await agent.cli(['access', 'request', '--connection', connection, '--duration', '30m', '--reason', 'bad input tests']);
      expect(window.code, window.stderr).toBe(0);
    }
    token = JSON.parse((await agent.cli(['token', '--connection', 'prod-cluster'])).stdout).status.token;
    keys = env.stack.services.secrets.signingKeys;
  });
  afterAll(async () => {
    await env?.stop();
  });

  it('passes a good request (the baseline for everything below)', async () => {
    const ok = await proxy('GET', `${base}/api/v1/namespaces/prod/pods`);
    expect(ok.status?.kind).not.toBe('Status');
    expect(JSON.parse(ok.body).kind).toBe('PodList');
  });

  it.each([
    ['no token', undefined, 'missing_token'],
    ['a malformed token', 'not-a-token', 'malformed_token'],
    ['a truncated token', 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0', 'malformed_token'],
    ['alg none', `${Buffer.from('{"alg":"none","typ":"airlock+jwt"}').toString('base64url')}.${Buffer.from('{"sub":"x"}').toString('base64url')}.`, 'malformed_token'],
    ['an oversized token', 'a'.repeat(5000), 'malformed_token'],
  ])('refuses %s with 401', async (_what, bad, cause) => {
    const result = await env.https('GET', `${base}/api/v1/namespaces/prod/pods`, { headers: bad === undefined ? {} : { authorization: `Bearer ${bad}` } });
    const status = JSON.parse(result.body) as KubeStatus;
    expect(status.code).toBe(401);
    expect(status.reason).toBe('Unauthorized');
    expect(status.details?.causes?.[0]?.reason).toBe(cause);
  });

  it('refuses an expired token', async () => {
    const pastIssuer = new TokenService(keys, { issuer: env.stack.url, now: () => Date.now() - 20 * 60_000 });
    const grant = (await env.stack.services.state.listGrants({ agentId: agent.id })).find((g) => g.connection === 'prod-cluster')!;
    const expired = await pastIssuer.issue({ agentId: agent.id, agentName: agent.name, connection: 'prod-cluster', grantId: grant.id, windowExpiresAt: Date.now() + 3_600_000 });
    expectStatus(await proxy('GET', `${base}/api/v1/namespaces/prod/pods`, { authorization: `Bearer ${expired.token}` }), 401, 'token_expired');
  });

  it('refuses a token signed by another key, even with the right key id', async () => {
    const forger = new TokenService({ current: { ...(await generateSigningKey()), kid: keys.current.kid } }, { issuer: env.stack.url });
    const grant = (await env.stack.services.state.listGrants({ agentId: agent.id })).find((g) => g.connection === 'prod-cluster')!;
    const forged = await forger.issue({ agentId: agent.id, agentName: agent.name, connection: 'prod-cluster', grantId: grant.id, windowExpiresAt: Date.now() + 3_600_000 });
    expectStatus(await proxy('GET', `${base}/api/v1/namespaces/prod/pods`, { authorization: `Bearer ${forged.token}` }), 401, 'invalid_token');
  });

  it('refuses a token for connection A on connection B, and says so', async () => {
    const result = await proxy('GET', '/k8s/other-cluster/api/v1/namespaces/prod/pods');
    expectStatus(result, 401, 'wrong_connection');
    expect(result.status?.message).toContain('"prod-cluster", not "other-cluster"');
  });

  it('answers 404 for an unknown connection', async () => {
    expectStatus(await proxy('GET', '/k8s/no-such-cluster/api/v1/pods'), 404, 'connection_not_found');
  });

  it.each([
    ['..', '/api/v1/namespaces/prod/pods/../secrets'],
    ['%2e%2e', '/api/v1/namespaces/prod/pods/%2e%2e/secrets'],
    ['an encoded slash', '/api/v1/namespaces/prod%2Fsecrets'],
    ['a double slash', '/api/v1/namespaces/prod//secrets'],
    ['a dot segment', '/api/v1/namespaces/./prod/pods'],
  ])('refuses a path with %s (400) and forwards nothing', async (_what, path) => {
    expectStatus(await proxy('GET', `${base}${path}`), 400, 'invalid_path');
  });

  it('refuses Impersonate-* and X-Remote-* headers; they never reach the cluster', async () => {
    const name = `impersonated-${Date.now()}`;
    for (const header of ['Impersonate-User', 'Impersonate-Group', 'X-Remote-User']) {
      const result = await proxy(
        'POST',
        `${base}/api/v1/namespaces/prod/configmaps`,
        { [header]: 'system:admin', 'content-type': 'application/json' },
        JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } }),
      );
      expectStatus(result, 403, 'impersonation_refused');
    }
    expect(await adminGet(`/api/v1/namespaces/prod/configmaps/${name}`)).toBe(404);
    // kubectl's own --as flag gets the same clear refusal.
    const viaKubectl = await kubectl(['get', 'pods', '-n', 'prod', '--as', 'system:admin'], { kubeconfig: await agent.kubeconfig('prod-cluster') });
    expect(viaKubectl.stderr).toContain('impersonate-user header is not allowed');
  });

  it('refuses interactive sessions (exec, attach, port-forward) with a clear reason; nothing runs', async () => {
    const kubeconfig = await agent.kubeconfig('prod-cluster');
    const exec = await kubectl(['exec', 'web-0', '-n', 'prod', '--', 'ls'], { kubeconfig });
    expect(exec.code).not.toBe(0);
    expect(exec.stderr).toMatch(/interactive \(upgraded\) connection, which Airlock does not carry/);
    // A refusal by design, not a fault to retry (issue 11 §6).
    expect(exec.stderr).toContain('Error from server (NotImplemented): airlock: ');
    const direct = await proxy('POST', `${base}/api/v1/namespaces/prod/pods/web-0/exec?command=ls&stdout=true`, { connection: 'Upgrade', upgrade: 'SPDY/3.1' });
    expectStatus(direct, 501, 'interactive_not_supported');
  });

  it('refuses a second Authorization header', async () => {
    const result = await env.https('GET', `${base}/api/v1/namespaces/prod/pods`, { headers: { authorization: [`Bearer ${token}`, 'Bearer other'] } });
    expect((JSON.parse(result.body) as KubeStatus).details?.causes?.[0]?.reason).toBe('duplicate_authorization');
  });

  it('refuses a body over the limit with 413 and creates nothing', async () => {
    const name = `huge-${Date.now()}`;
    const body = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { big: 'x'.repeat(4 * 1024 * 1024) } });
    const result = await proxy('POST', `${base}/api/v1/namespaces/prod/configmaps`, { 'content-type': 'application/json' }, body);
    expectStatus(result, 413, 'body_too_large');
    expect(await adminGet(`/api/v1/namespaces/prod/configmaps/${name}`)).toBe(404);
  });

  it('refuses a disabled agent on its next request, even with a token still in date', async () => {
    const other = await env.createAgent('soon-disabled');
    await other.cli(['access', 'request', '--connection', 'prod-cluster', '--duration', '10m', '--reason', 'will be disabled']);
    const otherToken = JSON.parse((await other.cli(['token', '--connection', 'prod-cluster'])).stdout).status.token as string;
    const before = await proxy('GET', `${base}/api/v1/namespaces/prod/pods`, { authorization: `Bearer ${otherToken}` });
    expect(JSON.parse(before.body).kind).toBe('PodList');
    expect((await env.cli(['agents', 'disable', 'soon-disabled'])).code).toBe(0);
    expectStatus(await proxy('GET', `${base}/api/v1/namespaces/prod/pods`, { authorization: `Bearer ${otherToken}` }), 403, 'agent_disabled');
    // `airlock token` hands out its cached token (cli/token-cache.ts) until shortly before expiry: refused all the same.
    const cached = await other.cli(['token', '--connection', 'prod-cluster']);
    const cachedToken = JSON.parse(cached.stdout).status.token as string;
    expect(cachedToken).toBe(otherToken);
    expectStatus(await proxy('GET', `${base}/api/v1/namespaces/prod/pods`, { authorization: `Bearer ${cachedToken}` }), 403, 'agent_disabled');
    // Without a cached token it asks the gateway, which issues none to a disabled agent.
    rmSync(join(other.profileDir, 'tokens'), { recursive: true, force: true });
    const tokenAgain = await other.cli(['token', '--connection', 'prod-cluster']);
    expect(tokenAgain.code).toBe(1);
  });

  it('answers 502 when the cluster is down, and records it', async () => {
    const deadToken = JSON.parse((await agent.cli(['token', '--connection', 'dead-cluster'])).stdout).status.token as string;
    const result = await env.https('GET', '/k8s/dead-cluster/api/v1/namespaces/prod/pods', { headers: { authorization: `Bearer ${deadToken}` } });
    const status = JSON.parse(result.body) as KubeStatus;
    expect(status.code).toBe(502);
    expect(status.message).toContain('could not be reached');
    const record = await env.stack.services.records.get(result.headers['x-airlock-request-id'] as string);
    for (let attempt = 0; record?.phase === 'started' && attempt < 50; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      Object.assign(record, await env.stack.services.records.get(record.id));
    }
    expect(record).toMatchObject({ status: 502, decision: 'allowed', phase: 'complete' });
  });

  it('refuses with 503 and forwards nothing when the recorder is down; resumes when it returns', async () => {
    const dynamo = new DynamoDBClient({ region: 'us-east-1', endpoint: env.stack.endpoints.dynamodb, credentials: LOCAL_CREDENTIALS });
    const name = `unrecorded-${Date.now()}`;
    const kubeconfig = await agent.kubeconfig('prod-cluster');
    const freshToken = JSON.parse((await agent.cli(['token', '--connection', 'prod-cluster'])).stdout).status.token as string;
    const createBody = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } });
    await dynamo.send(new DeleteTableCommand({ TableName: TABLES.records }));
    try {
      // kubectl: no token is issued while its issue cannot be recorded.
      const refused = await kubectl(['create', 'configmap', name, '-n', 'prod'], { kubeconfig });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('audit recorder is unavailable');
      // A token issued before the outage: the gateway refuses before forwarding.
      const direct = await proxy('POST', `${base}/api/v1/namespaces/prod/configmaps`, { authorization: `Bearer ${freshToken}`, 'content-type': 'application/json' }, createBody);
      expectStatus(direct, 503, 'recorder_unavailable');
      expect(direct.status?.message).toContain('nothing was forwarded');
      expect(await adminGet(`/api/v1/namespaces/prod/configmaps/${name}`)).toBe(404);
    } finally {
      await dynamo.send(new CreateTableCommand(recordsTableDefinition(TABLES.records)));
    }
    const resumed = await kubectl(['create', 'configmap', name, '-n', 'prod'], { kubeconfig });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await adminGet(`/api/v1/namespaces/prod/configmaps/${name}`)).toBe(200);
    expect(await lastRecord()).toMatchObject({ decision: 'allowed', status: 201, agent: 'bad-input-agent' });
    await kubectl(['delete', 'configmap', name, '-n', 'prod'], { kubeconfig: cluster!.adminKubeconfig });
    dynamo.destroy();
  });
});
