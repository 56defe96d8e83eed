// The fail-closed matrix: each dependency made unavailable in turn — state
// store, recorder, transcript store, Step Functions, the cluster — while an
// allowed, a refused and a destructive request are sent. Every answer is a
// clear Status, nothing reaches the cluster without a write-ahead record, and
// service resumes when the dependency returns, without a restart.
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { recordsTableDefinition } from '../../lambdas/adapters/dynamodb/tables.ts';
import { LOCAL_CREDENTIALS, TABLES } from '../../local/stack.ts';
import { FaultProxy } from '../support/fault-proxy.ts';
import { kubectl } from '../support/kubectl.ts';
import { startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');

const POLICY = `windowApproval: none
approvers: [oncall@example.com]
rules:
  - effect: deny
    resources: [secrets]
  - effect: allow
    verbs: [get, list, watch, create]
    namespaces: [prod]
  - effect: approve
    verbs: [delete]
    namespaces: [prod]
`;

interface Answer {
  status: number;
  cause: string;
  kind: string;
  message: string;
  approvalId?: string;
}

describe.skipIf(!cluster)('fail-closed matrix', () => {
  let env: TestStack;
  let agent: TestAgent;
  let token: string;
  const proxies: Record<'dynamodb' | 's3' | 'sfn' | 'upstream', FaultProxy> = {} as never;
  const run = Date.now().toString(36);
  let counter = 0;

  async function send(method: string, path: string, body?: unknown): Promise<Answer> {
    const response = await env.https(method, `/k8s/prod-cluster${path}`, {
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const parsed = JSON.parse(response.body) as { kind?: string; code?: number; message?: string; details?: { name?: string; causes?: { reason: string }[] } };
    return { status: response.status, kind: parsed.kind ?? '', cause: parsed.details?.causes?.[0]?.reason ?? '', message: parsed.message ?? '', approvalId: parsed.details?.name };
  }

  const allowed = (name: string) => send('POST', '/api/v1/namespaces/prod/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } });
  const refused = () => send('GET', '/api/v1/namespaces/prod/secrets');
  const destructive = () => send('DELETE', '/api/v1/namespaces/prod/pods/web-0');
  const inCluster = async (name: string) => (await kubectl(['get', 'configmap', name, '-n', 'prod', '-o', 'name'], { kubeconfig: cluster!.adminKubeconfig })).code === 0;
  const nextName = (dependency: string) => `fc-${run}-${dependency}-${counter++}`;

  beforeAll(async () => {
    env = await startTestStack({
      configure: async (config) => {
        proxies.dynamodb = new FaultProxy(config.endpoints!.dynamodb!);
        proxies.s3 = new FaultProxy(config.endpoints!.s3!);
        proxies.sfn = new FaultProxy(config.endpoints!.sfn!);
        for (const proxy of [proxies.dynamodb, proxies.s3, proxies.sfn]) await proxy.listen();
        return { ...config, endpoints: { ...config.endpoints, dynamodb: proxies.dynamodb.url('http'), s3: proxies.s3.url('http'), sfn: proxies.sfn.url('http') } };
      },
    });
    proxies.upstream = new FaultProxy(cluster!.server);
    await proxies.upstream.listen();
    await env.createConnection('prod-cluster', { cluster: cluster!, policy: POLICY, server: proxies.upstream.url('https') });
    agent = await env.createAgent('fail-closed-agent');
    expect((await agent.cli(['access', 'request', '--connection', 'prod-cluster', '--duration', '30m', '--reason', 'fail-closed matrix'])).code).toBe(0);
    token = JSON.parse((await agent.cli(['token', '--connection', 'prod-cluster'])).stdout).status.token;
  });
  afterAll(async () => {
    await env?.stop();
    for (const proxy of Object.values(proxies)) await proxy?.close();
    const listed = await kubectl(['get', 'configmaps', '-n', 'prod', '-o', 'jsonpath={.items[*].metadata.name}'], { kubeconfig: cluster!.adminKubeconfig });
    const ours = listed.stdout.split(' ').filter((name) => name.startsWith(`fc-${run}-`));
    if (ours.length) await kubectl(['delete', 'configmap', '-n', 'prod', ...ours, '--wait=false'], { kubeconfig: cluster!.adminKubeconfig });
  });

  // First: deleting the records table (the fault) also deletes the records written before it.
  it('recorder down: nothing is forwarded unrecorded; refusals stay clear; resumes when it returns', async () => {
    const dynamo = new DynamoDBClient({ region: 'us-east-1', endpoint: env.stack.endpoints.dynamodb, credentials: LOCAL_CREDENTIALS });
    const name = nextName('recorder');
    await dynamo.send(new DeleteTableCommand({ TableName: TABLES.records }));
    try {
      expect(await allowed(name)).toMatchObject({ status: 503, kind: 'Status', cause: 'recorder_unavailable' });
      expect(await refused()).toMatchObject({ status: 403, kind: 'Status', cause: 'forbidden_by_policy' });
      // A destructive request needing a new approval cannot have it recorded, so it is refused outright.
      expect(await send('DELETE', '/api/v1/namespaces/prod/pods/web-0?dryRun=All&recorder=down')).toMatchObject({ status: 503, kind: 'Status', cause: 'recorder_unavailable' });
    } finally {
      await dynamo.send(new CreateTableCommand(recordsTableDefinition(TABLES.records)));
      dynamo.destroy();
    }
    expect(await inCluster(name)).toBe(false);
    expect(await allowed(nextName('recorder-back'))).toMatchObject({ status: 201 });
  });

  it('baseline: allowed passes, refused is refused, destructive is held', async () => {
    const name = nextName('baseline');
    expect(await allowed(name)).toMatchObject({ status: 201 });
    expect(await inCluster(name)).toBe(true);
    expect(await refused()).toMatchObject({ status: 403, kind: 'Status', cause: 'forbidden_by_policy' });
    expect(await destructive()).toMatchObject({ status: 403, kind: 'Status', cause: 'approval_required' });
  });

  it('state store down: everything is refused with 503, nothing forwarded; resumes when it returns', async () => {
    const name = nextName('state');
    proxies.dynamodb.down();
    try {
      expect(await allowed(name)).toMatchObject({ status: 503, kind: 'Status', cause: 'state_unavailable' });
      expect(await refused()).toMatchObject({ status: 503, kind: 'Status', cause: 'state_unavailable' });
      expect(await destructive()).toMatchObject({ status: 503, kind: 'Status', cause: 'state_unavailable' });
    } finally {
      proxies.dynamodb.up();
    }
    expect(await inCluster(name)).toBe(false);
    expect(await kubectl(['get', 'pod', 'web-0', '-n', 'prod', '-o', 'name'], { kubeconfig: cluster!.adminKubeconfig })).toMatchObject({ code: 0 });
    const resumed = nextName('state-back');
    expect(await allowed(resumed)).toMatchObject({ status: 201 });
  });

  it('transcript store down: forwarded requests are recorded, the transcript is kept in the record, `audit repair` moves it', async () => {
    const name = nextName('s3');
    proxies.s3.down();
    let requestId: string | undefined;
    try {
      const response = await env.https('POST', '/k8s/prod-cluster/api/v1/namespaces/prod/configmaps', {
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } }),
      });
      expect(response.status).toBe(201);
      requestId = response.headers['x-airlock-request-id'] as string;
      expect(await refused()).toMatchObject({ status: 403, cause: 'forbidden_by_policy' });
      expect(await destructive()).toMatchObject({ status: 403, cause: 'approval_required' });
      // The transcript write is retried, then the record is marked incomplete with the transcript inside it.
      let record: { phase: string; transcriptError?: string } | undefined;
      for (let i = 0; i < 50 && record?.phase !== 'incomplete'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        record = await env.stack.services.records.get(requestId!);
      }
      expect(record).toMatchObject({ phase: 'incomplete', transcriptError: expect.stringContaining('transcript not written') });
    } finally {
      proxies.s3.up();
    }
    expect(await inCluster(name)).toBe(true);
    const shown = JSON.parse((await env.cli(['audit', 'show', requestId!])).stdout) as { record: { phase: string; transcriptSpooled?: boolean }; transcript: { agent: string } };
    expect(shown.record).toMatchObject({ phase: 'incomplete', transcriptSpooled: true });
    expect(shown.transcript.agent).toBe('fail-closed-agent');
    const repair = await env.cli(['--json', 'audit', 'repair']);
    expect(repair.code, repair.stderr).toBe(0);
    expect((JSON.parse(repair.stdout) as { moved: number }).moved).toBeGreaterThanOrEqual(1);
    const repaired = JSON.parse((await env.cli(['audit', 'show', requestId!])).stdout) as { record: { phase: string; transcriptSpooled?: boolean }; transcript: { agent: string } };
    expect(repaired.record.phase).toBe('complete');
    expect(repaired.record.transcriptSpooled).toBeUndefined();
    expect(repaired.transcript.agent).toBe('fail-closed-agent');
  });

  it('Step Functions down: allowed and refused work; a destructive request is refused, not forwarded; resumes when it returns', async () => {
    proxies.sfn.down();
    try {
      expect(await allowed(nextName('sfn'))).toMatchObject({ status: 201 });
      expect(await refused()).toMatchObject({ status: 403, cause: 'forbidden_by_policy' });
      const held = await send('DELETE', '/api/v1/namespaces/prod/pods/web-0?dryRun=All&sfn=down');
      expect(held).toMatchObject({ status: 503, kind: 'Status', cause: 'approvals_unavailable' });
    } finally {
      proxies.sfn.up();
    }
    expect(await kubectl(['get', 'pod', 'web-0', '-n', 'prod', '-o', 'name'], { kubeconfig: cluster!.adminKubeconfig })).toMatchObject({ code: 0 });
    const back = await send('DELETE', '/api/v1/namespaces/prod/pods/web-0?dryRun=All&sfn=back');
    expect(back).toMatchObject({ status: 403, cause: 'approval_required', approvalId: expect.stringMatching(/^apr_/) });
  });

  it('cluster down: allowed answers 502 and is recorded; refusals need no cluster; resumes when it returns', async () => {
    const name = nextName('upstream');
    proxies.upstream.down();
    let requestId: string | undefined;
    try {
      const response = await env.https('POST', '/k8s/prod-cluster/api/v1/namespaces/prod/configmaps', {
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } }),
      });
      expect(response.status).toBe(502);
      expect(JSON.parse(response.body)).toMatchObject({ kind: 'Status', details: { causes: [{ reason: 'upstream_unavailable' }] } });
      requestId = response.headers['x-airlock-request-id'] as string;
      expect(await refused()).toMatchObject({ status: 403, cause: 'forbidden_by_policy' });
      expect(await destructive()).toMatchObject({ status: 403, cause: 'approval_required' });
    } finally {
      proxies.upstream.up();
    }
    let record = await env.stack.services.records.get(requestId!);
    for (let attempt = 0; record?.phase === 'started' && attempt < 50; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      record = await env.stack.services.records.get(requestId!);
    }
    expect(record).toMatchObject({ decision: 'allowed', status: 502, phase: 'complete' });
    expect(await inCluster(name)).toBe(false);
    expect(await allowed(nextName('upstream-back'))).toMatchObject({ status: 201 });
  });

  it('every configmap this suite created in the cluster has a write-ahead record naming it', async () => {
    const listed = await kubectl(['get', 'configmaps', '-n', 'prod', '-o', 'jsonpath={.items[*].metadata.name}'], { kubeconfig: cluster!.adminKubeconfig });
    const created = listed.stdout.split(' ').filter((name) => name.startsWith(`fc-${run}-`));
    expect(created.length).toBeGreaterThanOrEqual(5);
    const audit = JSON.parse((await env.cli(['--json', 'audit', 'list', '--agent', 'fail-closed-agent', '--all', '--limit', '1000'])).stdout) as {
      items: { id: string; verb: string; resource: string; decision: string; status: number }[];
    };
    const recordedNames = new Set<string>();
    for (const item of audit.items.filter((entry) => entry.verb === 'create' && entry.resource === 'configmaps' && entry.status === 201)) {
      // A create names its object in the body: read it from the transcript.
      const shown = JSON.parse((await env.cli(['audit', 'show', item.id])).stdout) as { transcript: { request: { body: { metadata?: { name?: string } } } } };
      const name = shown.transcript.request.body.metadata?.name;
      if (name) recordedNames.add(name);
    }
    for (const name of created) expect(recordedNames.has(name), `${name} reached the cluster without a record`).toBe(true);
  });
});
