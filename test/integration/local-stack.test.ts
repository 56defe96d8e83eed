// The local stack on its emulators (no cluster needed): admin surface,
// validation with field-level errors, windows and revocation, persistence,
// and `npm start`'s process behaviour.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.ts';

const NO_CLUSTER = 'https://127.0.0.1:9';
const policy = (extra = '') => `windowApproval: none\nmaxWindow: 1h\nrules:\n  - effect: allow\n    namespaces: [prod]\n${extra}`;

describe('local stack: admin, validation, windows', () => {
  let env: TestStack;
  let caPem: string;

  beforeAll(async () => {
    env = await startTestStack();
    caPem = readFileSync(env.stack.caFile, 'utf8');
  });
  afterAll(async () => {
    await env?.stop();
  });

  const admin = (method: string, path: string, body?: unknown, key = env.stack.adminKey) =>
    env.https(method, path, { headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

  it('keeps its secrets private: admin key, keys, CA key are mode 0600', () => {
    for (const file of ['admin.key', 'secret.json', 'ca.key', 'server.key']) {
      expect(statSync(join(env.stack.home, file)).mode & 0o777, file).toBe(0o600);
    }
  });

  it('refuses admin calls without the admin key, or with a wrong one', async () => {
    expect((await env.https('GET', '/v1/agents')).status).toBe(401);
    const wrong = await admin('GET', '/v1/agents', undefined, 'nope');
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.body)).toEqual({ error: { code: 'invalid_credentials', message: 'admin key is wrong' } });
  });

  it('validates agents: names, duplicates', async () => {
    expect(JSON.parse((await admin('POST', '/v1/agents', { name: 'Bad Name' })).body).error.message).toMatch(/^name: use lowercase/);
    expect((await admin('POST', '/v1/agents', { name: 'dup-agent' })).status).toBe(201);
    const again = await admin('POST', '/v1/agents', { name: 'dup-agent' });
    expect(again.status).toBe(409);
    expect(JSON.parse(again.body).error.code).toBe('agent_exists');
  });

  it('validates connections and points at the bad field of a policy', async () => {
    const good = { name: 'c1', server: NO_CLUSTER, caPem, token: 't', policy: policy() };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...good, policy: 'rules:\n  - effect: allow\n    verbs: [destroy]\n' }, /rules\[0\]\.verbs\[0\]: "destroy" is not a Kubernetes verb/],
      [{ ...good, policy: 'rules:\n  - effect: allow\n    verb: [get]\n' }, /rules\[0\]\.verb.*did you mean 'verbs'/],
      [{ ...good, policy: 'maxWindow: forever\nrules: [{effect: allow}]\n' }, /maxWindow/],
      [{ ...good, server: 'http://127.0.0.1:6443' }, /^server: an https:\/\/ URL/],
      [{ ...good, caPem: 'not a certificate' }, /^caPem: no PEM certificate/],
      [{ ...good, token: undefined }, /exactly one credential/],
      [{ ...good, eks: { clusterName: 'c', region: 'us-east-1', roleArn: 'arn:aws:iam::123456789012:role/r' } }, /exactly one credential/],
      [{ ...good, extra: true }, /Unrecognized key|extra/],
    ];
    for (const [body, message] of cases) {
      const result = await admin('POST', '/v1/connections', body);
      expect(result.status, result.body).toBe(400);
      expect(JSON.parse(result.body).error.message).toMatch(message);
    }
    const listed = JSON.parse((await admin('GET', '/v1/connections')).body) as { items: unknown[] };
    expect(listed.items).toEqual([]);
  });

  it('never returns a connection credential', async () => {
    expect((await admin('POST', '/v1/connections', { name: 'hidden', server: NO_CLUSTER, caPem, token: 'super-secret-token', policy: policy() })).status).toBe(201);
    for (const path of ['/v1/connections', '/v1/connections/hidden']) {
      expect((await admin('GET', path)).body).not.toContain('super-secret-token');
    }
  });

  it('gives no token without a window, bounds windows by maxWindow, and revokes on the next request', async () => {
    await admin('POST', '/v1/connections', { name: 'w1', server: NO_CLUSTER, caPem, token: 't', policy: policy() });
    const agent = await env.createAgent('window-agent');

    const noWindow = await agent.cli(['token', '--connection', 'w1']);
    expect(noWindow.code).toBe(1);
    expect(noWindow.stderr).toContain('no access window');

    const tooLong = await agent.cli(['access', 'request', '--connection', 'w1', '--duration', '2h', '--reason', 'too long']);
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toContain('longer than this connection allows (maxWindow 1h)');

    const granted = await agent.cli(['--json', 'access', 'request', '--connection', 'w1', '--duration', '10m', '--reason', 'look around']);
    expect(granted.code, granted.stderr).toBe(0);
    const grant = JSON.parse(granted.stdout) as { id: string; status: string; expiresAt: string };
    expect(grant.status).toBe('active');
    expect(Date.parse(grant.expiresAt) - Date.now()).toBeLessThanOrEqual(10 * 60_000);

    const token = JSON.parse((await agent.cli(['token', '--connection', 'w1'])).stdout) as { kind: string; status: { token: string; expirationTimestamp: string } };
    expect(token.kind).toBe('ExecCredential');
    expect(Date.parse(token.status.expirationTimestamp)).toBeLessThanOrEqual(Date.parse(grant.expiresAt));

    // The window check happens before forwarding: an unreachable cluster shows 502 while open...
    const open = await env.https('GET', '/k8s/w1/api/v1/namespaces/prod/pods', { headers: { authorization: `Bearer ${token.status.token}` } });
    expect(open.status).toBe(502);
    // ...and the kill switch closes it on the very next request.
    expect((await env.cli(['revoke', '--connection', 'w1'])).code).toBe(0);
    const closed = await env.https('GET', '/k8s/w1/api/v1/namespaces/prod/pods', { headers: { authorization: `Bearer ${token.status.token}` } });
    expect(closed.status).toBe(403);
    expect(JSON.parse(closed.body).details.causes[0].reason).toBe('window_revoked');
    const status = JSON.parse((await agent.cli(['--json', 'access', 'status', grant.id])).stdout) as { status: string };
    expect(status.status).toBe('revoked');
  });

  it('refuses a window that needs approval when no approval workflow is configured: never a silent grant', async () => {
    const bare = await startTestStack({ configure: (config) => ({ ...config, workflows: undefined }) });
    try {
      const created = await bare.https('POST', '/v1/connections', {
        headers: { authorization: `Bearer ${bare.stack.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'needs-approval', server: NO_CLUSTER, caPem, token: 't', policy: 'windowApproval: required\napprovers: [oncall@example.com]\nrules: [{effect: allow}]\n' }),
      });
      expect(created.status).toBe(201);
      const agent = await bare.createAgent('approval-agent');
      const result = await agent.cli(['access', 'request', '--connection', 'needs-approval', '--duration', '10m', '--reason', 'please']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('approvals are not configured');
      expect((await bare.stack.services.state.listGrants({ agentId: agent.id })).length).toBe(0);
    } finally {
      await bare.stop();
    }
  });

  it('survives clients that hang up before the answer (kubectl ^C)', async () => {
    const { request } = await import('node:https');
    await admin('POST', '/v1/connections', { name: 'hangup', server: NO_CLUSTER, caPem, token: 't', policy: policy() });
    const agent = await env.createAgent('hangup-agent');
    await agent.cli(['access', 'request', '--connection', 'hangup', '--duration', '10m', '--reason', 'hang up early']);
    const token = (JSON.parse((await agent.cli(['token', '--connection', 'hangup'])).stdout) as { status: { token: string } }).status.token;
    const { hostname, port } = new URL(env.stack.url);
    for (let i = 0; i < 20; i++) {
      // Hang up while the gateway is still checking the request (before any answer).
      const req = request({ hostname, port, path: '/k8s/hangup/api/v1/namespaces/prod/pods', method: 'GET', ca: caPem, headers: { authorization: `Bearer ${token}` } });
      req.on('error', () => undefined);
      req.on('socket', (socket) => socket.on('secureConnect', () => setTimeout(() => req.destroy(), i % 4)));
      req.end();
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await env.https('GET', '/healthz')).status).toBe(200);
  });

  it('records state changes as audit events', async () => {
    const events = await env.cli(['--json', 'audit', 'list', '--events']);
    const types = (JSON.parse(events.stdout) as { items: { type: string }[] }).items.map((event) => event.type);
    for (const type of ['agent.created', 'connection.created', 'window.requested', 'window.activated', 'token.issued', 'window.revoked']) {
      expect(types).toContain(type);
    }
  });
});

describe('local stack: persistence and process', () => {
  it('keeps agents, connections, keys and the CA across a restart', async () => {
    const first = await startTestStack();
    const home = first.stack.home;
    await first.createAgent('survivor');
    const ca = readFileSync(first.stack.caFile, 'utf8');
    await first.stop();
    const { startLocalStack } = await import('../../local/stack.ts');
    const second = await startLocalStack({ home, port: 0 });
    try {
      expect(readFileSync(second.caFile, 'utf8')).toBe(ca);
      const agents = await second.services.state.listAgents();
      expect(agents.map((agent) => agent.name)).toContain('survivor');
    } finally {
      await second.stop();
    }
  });

  it('`npm start` prints where things are and stops cleanly on SIGTERM', async () => {
    const home = mkdtempSync(join(tmpdir(), 'airlock-start-'));
    writeFileSync(join(home, '.keep'), '');
    const child = spawn(process.execPath, ['local/main.ts'], { env: { ...process.env, AIRLOCK_HOME: home, AIRLOCK_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const deadline = Date.now() + 30_000;
    while (!output.includes('Next:') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(output).toMatch(/listening on https:\/\/127\.0\.0\.1:\d+/);
    expect(output).toContain(join(home, 'ca.crt'));
    expect(output).toContain(join(home, 'admin.key'));
    expect(output).toContain(join(home, 'outbox'));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('stopped');
  });
});
