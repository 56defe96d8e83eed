// POST /v1/exec through the whole gateway on in-memory ports, with the real
// exec client (lambdas/proxy/exec-client.ts) against a loopback TLS WebSocket
// server speaking v5.channel.k8s.io (test/support/fake-exec-upstream.ts):
// output and exit codes streamed in the documented framing, stdin, every
// control (token, window, policy with commands, one-time approval bound to the
// command, record, transcript), and the bounds (timeout, output size, window).
// test/e2e/exec.test.ts proves the same against a real API server and kwok pods.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decide } from '../../lambdas/core/lifecycle.ts';
import type { PolicyRule } from '../../lambdas/core/policy.ts';
import { RequestApprovals } from '../../lambdas/proxy/approval-gate.ts';
import { ExecClient, exitCodeOf } from '../../lambdas/proxy/exec-client.ts';
import { Gateway, type GatewayOptions } from '../../lambdas/proxy/gateway.ts';
import { ConnectionUpstreamAuth } from '../../lambdas/proxy/upstream-auth.ts';
import { FakeExecUpstream } from '../support/fake-exec-upstream.ts';
import { causeOf, startGateway, type Harness } from '../support/gateway-harness.ts';
import { MemoryWorkflows } from '../support/memory.ts';

/** prod: `echo …`, `say …`, `cat`, `fail …`, `flood …`, `hang`, `broken` run; any other command is held; exec in other namespaces is denied. */
const RULES: PolicyRule[] = [
  { effect: 'allow', verbs: ['exec'], resources: ['pods/exec'], namespaces: ['prod'], commands: ['echo *', 'say *', 'cat', 'fail *', 'flood *', 'hang', 'broken'] },
  { effect: 'approve', verbs: ['exec'], resources: ['pods/exec'], namespaces: ['prod'] },
  { effect: 'allow', verbs: ['get'], resources: ['pods'], namespaces: ['prod'] },
];

interface Line {
  stream?: string;
  data?: string;
  exit?: { code: number };
  error?: { code?: number; message?: string; details?: { causes?: { reason: string }[] } };
}

let world: Harness;
let cluster: FakeExecUpstream;
let gateway: Gateway;
let workflows: MemoryWorkflows;

async function setUp(options: { windowSeconds?: number; gateway?: Partial<GatewayOptions> } = {}) {
  world = await startGateway({ rules: RULES, windowSeconds: options.windowSeconds });
  cluster = await FakeExecUpstream.start();
  await world.state.putConnection({ ...world.connection, server: cluster.url, caPem: cluster.ca.certPem }, 'replace');
  workflows = new MemoryWorkflows();
  const approvals = new RequestApprovals({ state: world.state, records: world.records, workflows, log: world.log, now: Date.now, transcripts: world.transcripts });
  gateway = new Gateway({
    state: world.state,
    records: world.records,
    transcripts: world.transcripts,
    tokens: world.tokens,
    upstreamAuth: new ConnectionUpstreamAuth(),
    forwarder: world.upstream.forwarder,
    executor: new ExecClient(),
    approvals,
    log: world.log,
    streamRecheckMs: 50,
    streamRecheckTimeoutMs: 500,
    ...options.gateway,
  });
}

beforeEach(async () => setUp());
afterEach(async () => {
  await cluster.stop();
  await world.stop();
});

async function exec(body: Record<string, unknown>, token = world.token) {
  const { response, done } = await gateway.exec({
    connection: undefined,
    path: '/v1/exec',
    method: 'POST',
    query: {},
    headers: { authorization: [`Bearer ${token}`], 'content-type': ['application/json'], 'user-agent': ['airlock-cli/test'] },
    body: Buffer.from(typeof body === 'string' ? body : JSON.stringify({ namespace: 'prod', pod: 'web-0', ...body })),
  });
  let text = '';
  if (typeof response.body === 'string') text = response.body;
  else for await (const chunk of response.body) text += (chunk as Buffer).toString('utf8');
  await done;
  const requestId = response.headers['x-airlock-request-id']!;
  const record = await world.records.get(requestId);
  const transcriptBody = record?.transcriptKey ? world.transcripts.objects.get(record.transcriptKey) : undefined;
  return {
    status: response.statusCode,
    headers: response.headers,
    text,
    lines: () =>
      text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Line),
    record,
    transcript: transcriptBody ? (JSON.parse(transcriptBody) as { request: Record<string, unknown>; response: Record<string, unknown> }) : undefined,
  };
}

describe('POST /v1/exec runs the command and streams its output', () => {
  it('stdout and exit 0 in NDJSON; Airlock opened the exec stream with the connection credential, v5, no TTY, the command as asked', async () => {
    const sent = await exec({ command: ['echo', 'hello', 'two words'], container: 'app' });
    expect(sent.status).toBe(200);
    expect(sent.headers['content-type']).toBe('application/x-ndjson');
    expect(sent.lines()).toEqual([{ stream: 'stdout', data: 'hello two words\n' }, { exit: { code: 0 } }]);
    const [handshake] = cluster.handshakes;
    expect(handshake!.path).toBe('/api/v1/namespaces/prod/pods/web-0/exec');
    expect(handshake!.query.getAll('command')).toEqual(['echo', 'hello', 'two words']);
    expect(Object.fromEntries([...handshake!.query].filter(([name]) => name !== 'command'))).toEqual({ container: 'app', stdout: 'true', stderr: 'true' });
    expect(handshake!.protocol).toBe('v5.channel.k8s.io');
    expect(handshake!.headers.authorization).toBe('Bearer the-connection-credential');
    expect(handshake!.headers['audit-id']).toBe(sent.record!.id);
    expect(sent.record).toMatchObject({ decision: 'allowed', phase: 'complete', status: 200, method: 'GET', verb: 'exec', resource: 'pods', subresource: 'exec', namespace: 'prod', name: 'web-0' });
    expect(sent.record!.query).toBe('command=echo&command=hello&command=two+words&container=app&stdout=true&stderr=true');
    expect(sent.transcript!.request).toMatchObject({ command: "echo hello 'two words'", container: 'app' });
    expect(sent.transcript!.response).toMatchObject({ status: 200, exec: { stdout: 'hello two words\n', stderr: '', exit: { code: 0 } } });
  });

  it('a non-zero exit: stderr and the code from the error channel', async () => {
    const sent = await exec({ command: ['fail', '3'] });
    expect(sent.lines()).toEqual([{ stream: 'stderr', data: 'failing\n' }, { exit: { code: 3 } }]);
    expect(sent.transcript!.response).toMatchObject({ exec: { stderr: 'failing\n', exit: { code: 3 } } });
  });

  it('stdin from the request reaches the command, and EOF after it', async () => {
    const sent = await exec({ command: ['cat'], stdin: 'line one\nline two\n' });
    expect(sent.lines()).toEqual([{ stream: 'stdout', data: 'line one\nline two\n' }, { exit: { code: 0 } }]);
    expect(cluster.handshakes[0]!.query.get('stdin')).toBe('true');
    expect(sent.transcript!.request).toMatchObject({ command: 'cat', stdin: 'line one\nline two\n' });
  });

  it('a command that cannot run ends with its Status as an error line, not an exit', async () => {
    const sent = await exec({ command: ['broken'] });
    expect(sent.lines()).toEqual([{ error: expect.objectContaining({ status: 'Failure', reason: 'InternalError', message: 'exec: "nope": executable file not found' }) }]);
  });

  it("the API server's own refusal (no such pod) comes back as it answered", async () => {
    const sent = await exec({ pod: 'missing', command: ['echo', 'x'] });
    expect(sent.status).toBe(404);
    expect(JSON.parse(sent.text)).toMatchObject({ kind: 'Status', reason: 'NotFound' });
    expect(sent.record).toMatchObject({ decision: 'allowed', status: 404 });
  });

  it('output and credentials in it are redacted in the transcript, never in what the agent gets', async () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJl';
    const sent = await exec({ command: ['say', `token=${jwt}`, 'password=hunter2'] });
    expect(sent.lines()[0]).toEqual({ stream: 'stdout', data: `token=${jwt} password=hunter2` });
    const stored = JSON.stringify(sent.transcript);
    expect(stored).not.toContain(jwt);
    expect(stored).not.toContain('hunter2');
    expect(sent.transcript!.response).toMatchObject({ exec: { stdout: 'token=[REDACTED] password=[REDACTED]' } });
  });
});

describe('bounds', () => {
  it('the timeout ends the command with an exec_timeout error line', async () => {
    const sent = await exec({ command: ['hang'], timeoutSeconds: 1 });
    const lines = sent.lines();
    expect(lines[0]).toEqual({ stream: 'stdout', data: 'started\n' });
    expect(lines.at(-1)!.error!.details!.causes![0]!.reason).toBe('exec_timeout');
    expect(sent.transcript!.response).toMatchObject({ exec: { stdout: 'started\n', error: { details: { causes: [{ reason: 'exec_timeout' }] } } } });
  });

  it('output past the limit is cut there and ended with exec_output_too_large', async () => {
    await cluster.stop();
    await world.stop();
    await setUp({ gateway: { execMaxOutputBytes: 10_000 } });
    const sent = await exec({ command: ['flood', '50000'] });
    const lines = sent.lines();
    const written = lines.filter((line) => line.stream === 'stdout').reduce((total, line) => total + line.data!.length, 0);
    expect(written).toBe(10_000);
    expect(lines.at(-1)!.error!.details!.causes![0]!.reason).toBe('exec_output_too_large');
  });

  it("the window's end ends a running command; the record says window-ended", async () => {
    await cluster.stop();
    await world.stop();
    await setUp({ windowSeconds: 2 });
    const sent = await exec({ command: ['hang'], timeoutSeconds: 60 });
    expect(sent.lines().at(-1)!.error!.details!.causes![0]!.reason).toBe('window_expired');
    expect(sent.record).toMatchObject({ streamEnd: 'window-ended' });
  });

  it('a revoke ends a running command within a recheck', async () => {
    const running = exec({ command: ['hang'], timeoutSeconds: 60 });
    await expect.poll(() => cluster.handshakes.length).toBe(1);
    await world.state.transitionGrant(world.grant.id, ['active'], { status: 'revoked' });
    const sent = await running;
    expect(sent.lines().at(-1)!.error!.details!.causes![0]!.reason).toBe('window_revoked');
    await expect.poll(() => cluster.open).toBe(0);
  });
});

describe('every control', () => {
  it('a command the policy does not list is held for a one-time approval bound to that exact command, and passes once', async () => {
    const held = await exec({ command: ['echo-not', 'listed'] });
    expect(held.status).toBe(403);
    expect(causeOf(held.text)).toBe('approval_required');
    const approvalId = (JSON.parse(held.text) as { details: { name: string } }).details.name;
    const approval = await world.state.getApproval(approvalId);
    expect(approval).toMatchObject({ status: 'pending', summary: 'GET pods/exec/web-0 in prod (exec): echo-not listed' });
    expect(approval!.preview!.lines).toContain('Command:  echo-not listed');
    expect(held.record).toMatchObject({ decision: 'held', approvalId });
    expect(cluster.handshakes).toHaveLength(0);

    await decide({ state: world.state, records: world.records, workflows, log: world.log, now: Date.now }, approvalId, 'oncall@example.com', 'approve');
    // Another command is not what was approved.
    expect(causeOf((await exec({ command: ['echo-not', 'other'] })).text)).toBe('approval_required');
    const passed = await exec({ command: ['echo-not', 'listed'] });
    expect(passed.status).toBe(200);
    expect(passed.record).toMatchObject({ decision: 'allowed', approvalId });
    // Spent: the same command again needs a new approval.
    const again = await exec({ command: ['echo-not', 'listed'] });
    expect(causeOf(again.text)).toBe('approval_required');
    expect((JSON.parse(again.text) as { details: { name: string } }).details.name).not.toBe(approvalId);
  });

  it('stdin is part of what is approved', async () => {
    const held = await exec({ command: ['tee', '/tmp/x'], stdin: 'one' });
    const approvalId = (JSON.parse(held.text) as { details: { name: string } }).details.name;
    await decide({ state: world.state, records: world.records, workflows, log: world.log, now: Date.now }, approvalId, 'oncall@example.com', 'approve');
    expect(causeOf((await exec({ command: ['tee', '/tmp/x'], stdin: 'two' })).text)).toBe('approval_required');
  });

  it('the approver sees the pod, container, command and stdin; stdin that cannot be shown whole means no Approve', async () => {
    const shown = await exec({ command: ['psql', '-U', 'app'], container: 'db', stdin: 'SELECT 1;\n' });
    const approval = await world.state.getApproval((JSON.parse(shown.text) as { details: { name: string } }).details.name);
    const preview = JSON.parse(world.transcripts.objects.get(approval!.preview!.key!)!) as Record<string, unknown>;
    expect(preview).toMatchObject({ problems: [], exec: { pod: 'prod/web-0', container: 'db', command: 'psql -U app', stdin: 'SELECT 1;\n' } });
    const tooLong = await exec({ command: ['psql'], stdin: 'x'.repeat(20_000) });
    const blind = await world.state.getApproval((JSON.parse(tooLong.text) as { details: { name: string } }).details.name);
    expect(blind!.preview!.problems).toEqual(['the standard input is 20000 bytes; at most 16384 can be shown to an approver']);
  });

  it('exec where the policy does not allow it is refused before anything is opened', async () => {
    const sent = await exec({ namespace: 'kube-system', command: ['echo', 'x'] });
    expect(sent.status).toBe(403);
    expect(causeOf(sent.text)).toBe('forbidden_by_policy');
    expect(sent.record).toMatchObject({ decision: 'denied', namespace: 'kube-system' });
    expect(cluster.handshakes).toHaveLength(0);
  });

  it('refused outside the window', async () => {
    await world.state.transitionGrant(world.grant.id, ['active'], { status: 'expired' });
    const sent = await exec({ command: ['echo', 'x'] });
    expect(sent.status).toBeGreaterThanOrEqual(400);
    expect(sent.record).toMatchObject({ decision: 'denied' });
    expect(cluster.handshakes).toHaveLength(0);
  });

  it('without a valid token nothing happens', async () => {
    const sent = await exec({ command: ['echo', 'x'] }, 'not-a-token');
    expect(sent.status).toBe(401);
    expect(cluster.handshakes).toHaveLength(0);
  });

  it('a token of another connection, named in the body, is refused', async () => {
    const sent = await exec({ connection: 'staging', command: ['echo', 'x'] });
    expect(sent.status).toBe(403);
    expect(causeOf(sent.text)).toBe('wrong_connection');
  });

  it('nothing is opened before the record is written', async () => {
    world.records.faults.fail('begin', new Error('table unavailable'));
    const sent = await exec({ command: ['echo', 'x'] });
    expect(sent.status).toBe(503);
    expect(causeOf(sent.text)).toBe('recorder_unavailable');
    expect(cluster.handshakes).toHaveLength(0);
  });

  it.each([
    { what: 'not JSON', body: '{' as unknown as Record<string, unknown>, cause: 'invalid_json' },
    { what: 'no command', body: { command: [] }, cause: 'invalid_request' },
    { what: 'a bad pod name', body: { pod: '../x', command: ['ls'] }, cause: 'invalid_request' },
    { what: 'an unknown field', body: { command: ['ls'], tty: true }, cause: 'invalid_request' },
    { what: 'a timeout over 15 minutes', body: { command: ['ls'], timeoutSeconds: 3600 }, cause: 'invalid_request' },
  ])('bad input ($what) is a clear 400, and nothing is opened', async ({ body, cause }) => {
    const sent = await exec(body);
    expect(sent.status).toBe(400);
    expect(causeOf(sent.text)).toBe(cause);
    expect(cluster.handshakes).toHaveLength(0);
  });

  it('a plan token is refused: a command has no dry run', async () => {
    const { token } = await world.tokens.issue({
      agentId: world.agent.id,
      agentName: world.agent.name,
      connection: world.connection.name,
      grantId: world.grant.id,
      windowExpiresAt: Date.now() + 600_000,
      plan: { planId: 'pln_x', mode: 'plan' },
    });
    const sent = await exec({ command: ['echo', 'x'] }, token);
    expect(sent.status).toBe(403);
    expect(causeOf(sent.text)).toBe('not_plannable');
    expect(cluster.handshakes).toHaveLength(0);
  });

  it("an API server whose certificate the connection's CA did not sign is not reached (502)", async () => {
    const other = await FakeExecUpstream.start();
    await world.state.putConnection({ ...world.connection, server: cluster.url, caPem: other.ca.certPem }, 'replace');
    const sent = await exec({ command: ['echo', 'x'] });
    await other.stop();
    expect(sent.status).toBe(502);
    expect(causeOf(sent.text)).toBe('upstream_unavailable');
    expect(cluster.handshakes).toHaveLength(0);
  });
});

describe('kubectl exec through /k8s', () => {
  it('keeps its 501, now naming airlock exec', async () => {
    const sent = await world.send({ path: '/api/v1/namespaces/prod/pods/web-0/exec', query: { command: ['ls'], stdout: ['true'] }, headers: { upgrade: ['websocket'] } });
    expect(sent.status).toBe(501);
    const message = (JSON.parse(await sent.text()) as { message: string }).message;
    expect(message).toContain('airlock exec --connection NAME -n prod web-0 -- COMMAND');
  });
});

describe('exitCodeOf', () => {
  it.each([
    [{ status: 'Success' }, 0],
    [{ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '42' }] } }, 42],
    [{ status: 'Failure', reason: 'InternalError', message: 'x' }, undefined],
    [{ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: 'x' }] } }, undefined],
    [null, undefined],
  ])('%j -> %s', (status, code) => {
    expect(exitCodeOf(status)).toBe(code);
  });
});
