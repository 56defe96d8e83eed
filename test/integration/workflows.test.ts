// The two state machines (our ASL files) running end to end on the local
// runner, with SNS emails to the outbox and decisions on the approval page:
// approve, deny, timeout, expiry, revocation, and what a restart does.
import { readdirSync } from 'node:fs';
import aslValidator from 'asl-validator';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../lambdas/core/ids.ts';
import { STATE_MACHINES } from '../../local/stack.ts';
import { pageStatus, startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';

const NO_CLUSTER = 'https://127.0.0.1:9';
const policy = (extra: string) =>
  `approvers: [alice@example.com, bob@example.com]\nrules:\n  - effect: allow\n    namespaces: [prod]\n  - effect: approve\n    verbs: [delete]\n    namespaces: [prod]\n${extra}`;

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('state machine definitions', () => {
  it('are valid ASL (asl-validator), JSONPath only, explicit timeouts on every task', async () => {
    for (const file of Object.values(STATE_MACHINES)) {
      const definition = JSON.parse((await readFile(file, 'utf8')).replaceAll('${WorkflowFunctionArn}', 'arn:aws:lambda:us-east-1:123456789012:function:workflow')) as {
        QueryLanguage?: string;
        States: Record<string, { Type: string; TimeoutSeconds?: number; TimeoutSecondsPath?: string }>;
      };
      const result = aslValidator(definition);
      expect(result.errors, file).toEqual([]);
      expect(result.isValid).toBe(true);
      expect(definition.QueryLanguage ?? 'JSONPath').toBe('JSONPath');
      for (const [name, state] of Object.entries(definition.States)) {
        if (state.Type === 'Task') expect(state.TimeoutSeconds ?? state.TimeoutSecondsPath, `${file} ${name}`).toBeDefined();
      }
    }
  });
});

describe('windows and approvals on Step Functions (local)', () => {
  let env: TestStack;
  let caPem: string;

  beforeAll(async () => {
    env = await startTestStack({ waitOverrides: { WaitUntilExpiry: 1500 } });
    caPem = await readFile(env.stack.caFile, 'utf8');
    const connection = (name: string, extra: string) =>
      env.https('POST', '/v1/connections', {
        headers: { authorization: `Bearer ${env.stack.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name, server: NO_CLUSTER, caPem, token: 't', policy: policy(extra) }),
      });
    expect((await connection('approved-windows', 'windowApproval: required\n')).status).toBe(201);
    expect((await connection('two-approvers', 'windowApproval: required\nminApprovals: 2\n')).status).toBe(201);
    expect((await connection('open-windows', 'windowApproval: none\n')).status).toBe(201);
  });
  afterAll(async () => {
    await env?.stop();
  });

  async function request(agent: TestAgent, connection: string) {
    const result = await agent.cli(['--json', 'access', 'request', '--connection', connection, '--duration', '10m', '--reason', 'integration test', '--ticket', 'INC-42']);
    return JSON.parse(result.stdout) as { id: string; status: string; approvalId?: string; expiresAt?: string };
  }

  it('approval of a window activates it; each approver gets their own link', async () => {
    const agent = await env.createAgent('wf-approve');
    const window = await request(agent, 'approved-windows');
    expect(window).toMatchObject({ status: 'pending' });
    const aliceLink = await env.approvalLink(window.approvalId!, 'alice@example.com');
    const bobLink = await env.approvalLink(window.approvalId!, 'bob@example.com');
    expect(aliceLink).not.toBe(bobLink);
    const decided = await env.decide(aliceLink, 'approve');
    expect(pageStatus(decided.body)).toContain('Approved');
    const active = await until('active window', async () => {
      const status = JSON.parse((await agent.cli(['--json', 'access', 'status', window.id])).stdout) as { status: string; expiresAt?: string };
      return status.status === 'active' ? status : undefined;
    });
    expect(Date.parse(active.expiresAt!) - Date.now()).toBeLessThanOrEqual(10 * 60_000);
    // The approver is recorded by name.
    const events = JSON.parse((await env.cli(['--json', 'audit', 'list', '--events', '--agent', 'wf-approve'])).stdout) as { items: { type: string; actor: string }[] };
    expect(events.items).toContainEqual(expect.objectContaining({ type: 'approval.approve', actor: 'alice@example.com' }));
    expect(events.items.map((e) => e.type)).toEqual(expect.arrayContaining(['window.requested', 'approval.notified', 'window.activated']));
  });

  it('needs minApprovals distinct approvers', async () => {
    const agent = await env.createAgent('wf-two');
    const window = await request(agent, 'two-approvers');
    expect(pageStatus((await env.decide(await env.approvalLink(window.approvalId!, 'alice@example.com'), 'approve')).body)).toContain('1 more needed');
    const still = JSON.parse((await agent.cli(['--json', 'access', 'status', window.id])).stdout) as { status: string };
    expect(still.status).toBe('pending');
    await env.decide(await env.approvalLink(window.approvalId!, 'bob@example.com'), 'approve');
    await until('active', async () => ((JSON.parse((await agent.cli(['--json', 'access', 'status', window.id])).stdout) as { status: string }).status === 'active' ? true : undefined));
  });

  it('a denial ends the window request with a clear status (a normal outcome, not a workflow failure)', async () => {
    const agent = await env.createAgent('wf-deny');
    const window = await request(agent, 'approved-windows');
    const denied = await env.decide(await env.approvalLink(window.approvalId!, 'bob@example.com'), 'deny');
    expect(pageStatus(denied.body)).toContain('Denied');
    const grant = await until('denied', async () => {
      const g = await env.stack.services.state.getGrant(window.id);
      return g?.status === 'denied' ? g : undefined;
    });
    expect(grant.endReason).toBe('approval denied');
    const execution = await until('finished execution', async () => {
      const e = env.stack.stepFunctions.describe(grant.executionArn!);
      return e?.status === 'SUCCEEDED' ? e : undefined;
    });
    expect(JSON.parse(execution.output!)).toMatchObject({ outcome: { outcome: 'denied' } });
    // Alice's link now shows the outcome, and her decision is refused politely.
    const late = await env.decide(await env.approvalLink(window.approvalId!, 'alice@example.com'), 'approve');
    expect(pageStatus(late.body)).toContain('denied');
  });

  it('an approval that nobody decides times out: the window is refused, the link then says expired', async () => {
    const agent = await env.createAgent('wf-timeout');
    const services = env.stack.services;
    const connection = (await services.state.getConnection('approved-windows'))!;
    // A window request whose approval expires in 2 s (the policy's minimum is 1 minute).
    const now = Date.now();
    const grantId = newId('gr');
    const approvalId = newId('apr');
    await services.state.createApproval({
      id: approvalId,
      kind: 'window',
      status: 'pending',
      agentId: agent.id,
      agentName: agent.name,
      connection: connection.name,
      summary: 'access window on approved-windows for 10m',
      reason: 'timeout test',
      rule: 'windowApproval: required',
      approvers: connection.policy.approvers,
      minApprovals: 1,
      decisions: [],
      notified: [],
      createdAt: now,
      expiresAt: now + 2000,
      timeoutSeconds: 2,
      grantId,
      policyVersion: connection.policyVersion,
    });
    await services.state.createGrant({
      id: grantId,
      agentId: agent.id,
      agentName: agent.name,
      connection: connection.name,
      status: 'pending',
      reason: 'timeout test',
      durationSeconds: 600,
      requestedAt: now,
      approvalId,
      policyVersion: connection.policyVersion,
    });
    const executionArn = await services.workflows!.startWindow(grantId);
    const link = await env.approvalLink(approvalId, 'alice@example.com');
    const grant = await until('timed out', async () => {
      const g = await services.state.getGrant(grantId);
      return g?.status === 'denied' ? g : undefined;
    });
    expect(grant.endReason).toBe('approval timed out');
    expect((await services.state.getApproval(approvalId))!.status).toBe('expired');
    const execution = await until('finished execution', async () => {
      const e = env.stack.stepFunctions.describe(executionArn);
      return e?.status === 'SUCCEEDED' ? e : undefined;
    });
    expect(JSON.parse(execution.output!)).toMatchObject({ outcome: { outcome: 'approval timed out' } });
    const late = await env.decide(link, 'approve');
    expect(late.status).toBe(410);
    expect(pageStatus(late.body)).toContain('expired');
  });

  it('a window ends at expiresAt: the workflow expires it and notifies', async () => {
    const agent = await env.createAgent('wf-expiry');
    const window = await request(agent, 'open-windows');
    expect(window.status).toBe('active');
    const grant = await until('expired', async () => {
      const g = await env.stack.services.state.getGrant(window.id);
      return g?.status === 'expired' ? g : undefined;
    });
    expect(grant.endReason).toBe('window ended');
    // The expiry task writes the grant; the execution finishes its notify step a moment after.
    await until('execution succeeded', async () => (env.stack.stepFunctions.describe(grant.executionArn!)!.status === 'SUCCEEDED' ? true : undefined));
    const token = await agent.cli(['token', '--connection', 'open-windows']);
    expect(token.code).toBe(1);
  });

  it('revocation stops the running workflow and cancels a pending approval', async () => {
    const agent = await env.createAgent('wf-revoke');
    const pending = await request(agent, 'approved-windows');
    await env.approvalLink(pending.approvalId!, 'alice@example.com');
    const grant = (await env.stack.services.state.getGrant(pending.id))!;
    expect(env.stack.stepFunctions.describe(grant.executionArn!)!.status).toBe('RUNNING');
    expect((await env.cli(['revoke', '--agent', 'wf-revoke'])).code).toBe(0);
    expect(env.stack.stepFunctions.describe(grant.executionArn!)!.status).toBe('ABORTED');
    expect((await env.stack.services.state.getGrant(pending.id))!.status).toBe('revoked');
    expect((await env.stack.services.state.getApproval(pending.approvalId!))!.status).toBe('cancelled');
    const late = await env.decide(await env.approvalLink(pending.approvalId!, 'bob@example.com'), 'approve');
    expect(pageStatus(late.body)).toContain('cancelled');
    expect((await env.stack.services.state.getGrant(pending.id))!.status).toBe('revoked');
  });
});

describe('the approval page refuses bad input and changes nothing', () => {
  let env: TestStack;
  let agent: TestAgent;
  let approvalId: string;
  let link: string;
  let otherLink: string;

  beforeAll(async () => {
    env = await startTestStack();
    const caPem = await readFile(env.stack.caFile, 'utf8');
    for (const name of ['page-a', 'page-b']) {
      await env.https('POST', '/v1/connections', {
        headers: { authorization: `Bearer ${env.stack.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name, server: NO_CLUSTER, caPem, token: 't', policy: policy('windowApproval: required\n') }),
      });
    }
    agent = await env.createAgent('page-agent');
    const a = JSON.parse((await agent.cli(['--json', 'access', 'request', '--connection', 'page-a', '--duration', '10m', '--reason', 'page tests'])).stdout) as { approvalId: string };
    const b = JSON.parse((await agent.cli(['--json', 'access', 'request', '--connection', 'page-b', '--duration', '10m', '--reason', 'page tests'])).stdout) as { approvalId: string };
    approvalId = a.approvalId;
    link = await env.approvalLink(approvalId, 'alice@example.com');
    otherLink = await env.approvalLink(b.approvalId, 'alice@example.com');
  });
  afterAll(async () => {
    await env?.stop();
  });

  const pending = async () => (await env.stack.services.state.getApproval(approvalId))!;

  it('GET never decides, however often it is fetched', async () => {
    const url = new URL(link);
    for (let i = 0; i < 3; i++) expect((await env.https('GET', url.pathname + url.search)).status).toBe(200);
    expect((await pending()).status).toBe('pending');
    expect((await pending()).decisions).toEqual([]);
  });

  it('refuses a tampered, a truncated, a missing or a foreign signature', async () => {
    const url = new URL(link);
    const sig = url.searchParams.get('sig')!;
    const [header, payload, signature] = sig.split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), sub: 'mallory@example.com' })).toString('base64url');
    for (const bad of [`${header}.${forgedPayload}.${signature}`, sig.slice(0, -4), '', 'x'.repeat(3000)]) {
      const result = await env.https('GET', `${url.pathname}?sig=${encodeURIComponent(bad)}`);
      expect(result.status).toBe(403);
      expect(pageStatus(result.body)).toMatch(/not valid/);
    }
    // A valid link for approval B used on approval A's page.
    const other = new URL(otherLink);
    const crossed = await env.https('GET', `${url.pathname}?sig=${other.searchParams.get('sig')}`);
    expect(crossed.status).toBe(403);
    expect(pageStatus(crossed.body)).toContain('another approval');
    expect((await pending()).status).toBe('pending');
  });

  it('refuses a POST without the form token, with a form of another approver, or from an agent', async () => {
    const url = new URL(link);
    const sig = url.searchParams.get('sig')!;
    const post = (body: Record<string, string>, headers: Record<string, string> = {}) =>
      env.https('POST', url.pathname, { headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body).toString() });
    expect((await post({ sig, decision: 'approve' })).status).toBe(400);
    const bobLink = new URL(await env.approvalLink(approvalId, 'bob@example.com'));
    const bobPage = await env.https('GET', bobLink.pathname + bobLink.search);
    const bobForm = /name="form" value="([^"]+)"/.exec(bobPage.body)![1]!;
    expect((await post({ sig, form: bobForm, decision: 'approve' })).status).toBe(403);
    const token = await env.stack.services.tokens.issue({ agentId: agent.id, agentName: agent.name, connection: 'page-a', grantId: 'gr_x', windowExpiresAt: Date.now() + 600_000 });
    const page = await env.https('GET', url.pathname + url.search);
    const form = /name="form" value="([^"]+)"/.exec(page.body)![1]!;
    const asAgent = await post({ sig, form, decision: 'approve' }, { authorization: `Bearer ${token.token}` });
    expect(asAgent.status).toBe(403);
    expect(pageStatus(asAgent.body)).toContain('credentials are not accepted');
    expect((await env.https('POST', url.pathname, { headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(415);
    expect((await pending()).decisions).toEqual([]);
  });

  it('takes one decision per approver; a replayed POST is refused politely', async () => {
    const url = new URL(link);
    const page = await env.https('GET', url.pathname + url.search);
    const form = /name="form" value="([^"]+)"/.exec(page.body)![1]!;
    const body = new URLSearchParams({ sig: url.searchParams.get('sig')!, form, decision: 'approve' }).toString();
    const first = await env.https('POST', url.pathname, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    expect(first.status).toBe(200);
    const replay = await env.https('POST', url.pathname, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    expect(replay.status).toBe(409);
    expect(pageStatus(replay.body)).toMatch(/already (approved|decided|chose)|is already approved/);
    expect((await pending()).decisions).toHaveLength(1);
  });

  it('sends no second email after a restart, and old links still work', async () => {
    const before = readdirSync(env.stack.outboxDir).length;
    expect(before).toBeGreaterThan(0);
    await env.stop();
    env = await startTestStack({}, env.dir);
    expect(env.stack.resumed.windows).toBeGreaterThanOrEqual(1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await env.stack.mail.poll();
    expect(readdirSync(env.stack.outboxDir).length).toBe(before);
    const other = new URL(otherLink);
    const page = await env.https('GET', other.pathname + other.search);
    expect(page.status).toBe(200);
    expect(page.body).toContain('Approve</button>');
    // The resumed workflow picks up a decision made after the restart.
    expect(pageStatus((await env.decide(otherLink, 'approve')).body)).toContain('Approved');
    const grants = await env.stack.services.state.listGrants({ connection: 'page-b' });
    await until('window on page-b active', async () => ((await env.stack.services.state.getGrant(grants[0]!.id))?.status === 'active' ? true : undefined));
  });
});
