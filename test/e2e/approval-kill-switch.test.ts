// Issue 9 §3: the kill switch also disarms approvals. A held request approved
// in one window must not be spent after `airlock revoke`, `agents disable`, a
// connection revoke or the end of that window; approvers see it as cancelled
// and why, and a late click changes nothing. Real kubectl through the local
// stack, the cluster read with the admin kubeconfig to prove nothing changed.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cancelApproval } from '../../lambdas/core/lifecycle.ts';
import { kubectl } from '../support/kubectl.ts';
import { EXAMPLE_POLICY, pageStatus, startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');
const APPROVER = 'oncall@example.com';
const CONNECTION = 'prod-cluster';

const admin = (args: string[]) => kubectl(args, { kubeconfig: cluster!.adminKubeconfig });
const configMapExists = async (name: string) => (await admin(['get', 'configmap', name, '-n', 'prod', '-o', 'name'])).code === 0;
const heldApproval = (stderr: string) => /airlock approvals wait (apr_[A-Za-z0-9_-]{22})/.exec(stderr)?.[1];

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What every case shares: an agent with a window and a kubeconfig, and a ConfigMap it wants to delete. */
function harness(getEnv: () => TestStack) {
  const created: string[] = [];
  return {
    created,
    async openWindow(agent: TestAgent): Promise<string> {
      const window = await agent.cli(['--json', 'access', 'request', '--connection', CONNECTION, '--duration', '30m', '--reason', 'tidy up old config', '--ticket', 'CHG-9']);
      expect(window.code, window.stderr).toBe(0);
      return (JSON.parse(window.stdout) as { id: string }).id;
    },
    async target(name: string): Promise<string> {
      expect((await admin(['create', 'configmap', name, '-n', 'prod', '--from-literal=keep=me'])).code).toBe(0);
      created.push(name);
      return name;
    },
    /** The agent asks for the delete (held) and the approver approves it on the page. */
    async heldAndApproved(kubeconfig: string, name: string): Promise<string> {
      const held = await kubectl(['delete', 'configmap', name, '-n', 'prod'], { kubeconfig });
      expect(held.code).not.toBe(0);
      expect(held.stderr).toContain('needs a one-time human approval');
      const approvalId = heldApproval(held.stderr)!;
      expect(approvalId).toBeDefined();
      const env = getEnv();
      const decided = await env.decide(await env.approvalLink(approvalId, APPROVER), 'approve');
      expect(pageStatus(decided.body)).toContain('Approved');
      expect(await env.stack.services.state.getApproval(approvalId)).toMatchObject({ status: 'approved' });
      return approvalId;
    },
    /** The same delete in a later window: held again under a new approval, saying the old one was cancelled and why. */
    async retryIsRefused(kubeconfig: string, name: string, approvalId: string, why: string): Promise<void> {
      const retry = await kubectl(['delete', 'configmap', name, '-n', 'prod'], { kubeconfig });
      expect(retry.code, retry.stdout).not.toBe(0);
      expect(retry.stderr).toContain('Error from server (Forbidden)');
      expect(retry.stderr).toContain(`approval ${approvalId} of this request was cancelled`);
      expect(retry.stderr).toContain(why);
      const again = heldApproval(retry.stderr);
      expect(again).toBeDefined();
      expect(again).not.toBe(approvalId);
      expect(await configMapExists(name)).toBe(true);
    },
    /** The approver's page and the agent's CLI both say cancelled, and why. */
    async showsCancelled(agent: TestAgent | undefined, approvalId: string, why: string): Promise<void> {
      const env = getEnv();
      const approval = (await env.stack.services.state.getApproval(approvalId))!;
      expect(approval).toMatchObject({ status: 'cancelled', cancelReason: expect.stringContaining(why), cancelledAt: expect.any(Number) });
      const link = await env.approvalLink(approvalId, APPROVER);
      const page = await env.https('GET', new URL(link).pathname + new URL(link).search);
      expect(page.status).toBe(200);
      expect(pageStatus(page.body)).toContain('This request was cancelled');
      expect(pageStatus(page.body)).toContain(why);
      expect(page.body).not.toContain('name="form"'); // nothing left to decide
      if (agent) {
        const waited = await agent.cli(['approvals', 'wait', approvalId, '--timeout', '0']);
        expect(waited.code).toBe(1);
        expect(waited.stdout).toContain('cancelled:');
        expect(waited.stdout).toContain(why);
      }
    },
  };
}

describe.skipIf(!cluster)('approvals die with the kill switch (real kubectl, real apiserver)', () => {
  let env: TestStack;
  const h = harness(() => env);
  const suffix = Date.now().toString(36);

  beforeAll(async () => {
    env = await startTestStack();
    await env.createConnection(CONNECTION, { cluster: cluster!, policy: EXAMPLE_POLICY });
  });
  afterAll(async () => {
    await env?.stop();
    for (const name of h.created) await admin(['delete', 'configmap', name, '-n', 'prod', '--ignore-not-found']);
  });

  it('an approval granted before `airlock revoke --agent` is not spent in the next window', async () => {
    const agent = await env.createAgent('revoked-agent');
    const windowA = await h.openWindow(agent);
    const kubeconfig = await agent.kubeconfig(CONNECTION);
    const name = await h.target(`ks-revoke-${suffix}`);
    const approvalId = await h.heldAndApproved(kubeconfig, name);
    expect((await env.stack.services.state.getApproval(approvalId))!.grantId).toBe(windowA);

    const revoked = await env.cli(['revoke', '--agent', 'revoked-agent']);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain('1 held request approval(s) cancelled');

    const windowB = await h.openWindow(agent);
    expect(windowB).not.toBe(windowA);
    await h.retryIsRefused(kubeconfig, name, approvalId, 'the agent was revoked by admin at');
    await h.showsCancelled(agent, approvalId, 'the agent was revoked by admin at');
    const events = JSON.parse((await env.cli(['--json', 'audit', 'list', '--events', '--agent', 'revoked-agent'])).stdout) as {
      items: { type: string; subject: string; detail?: { reason?: string } }[];
    };
    expect(events.items).toContainEqual(
      expect.objectContaining({ type: 'approval.cancelled', subject: approvalId, detail: expect.objectContaining({ reason: expect.stringContaining('revoked by admin') }) }),
    );
  });

  it('an approval granted before `agents disable` is not spent after `agents enable` in a new window', async () => {
    const agent = await env.createAgent('disabled-agent');
    await h.openWindow(agent);
    const kubeconfig = await agent.kubeconfig(CONNECTION);
    const name = await h.target(`ks-disable-${suffix}`);
    const approvalId = await h.heldAndApproved(kubeconfig, name);

    const disabled = await env.cli(['agents', 'disable', 'disabled-agent']);
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(disabled.stdout).toContain('1 held request approval(s) cancelled');
    const whileDisabled = await kubectl(['delete', 'configmap', name, '-n', 'prod'], { kubeconfig });
    expect(whileDisabled.code).not.toBe(0);
    expect(await configMapExists(name)).toBe(true);

    const enabled = await env.cli(['agents', 'enable', 'disabled-agent']);
    expect(enabled.code, enabled.stderr).toBe(0);
    expect(enabled.stdout).toContain('agent disabled-agent enabled');
    const again = await env.cli(['agents', 'enable', 'disabled-agent']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('already enabled; nothing was changed');

    await h.openWindow(agent);
    await h.retryIsRefused(kubeconfig, name, approvalId, 'the agent was disabled by admin at');
    await h.showsCancelled(agent, approvalId, 'the agent was disabled by admin at');
  });

  it('an approval granted before `airlock revoke --connection` is not spent in the next window', async () => {
    const agent = await env.createAgent('connection-agent');
    await h.openWindow(agent);
    const kubeconfig = await agent.kubeconfig(CONNECTION);
    const name = await h.target(`ks-connection-${suffix}`);
    const approvalId = await h.heldAndApproved(kubeconfig, name);

    const revoked = await env.cli(['revoke', '--connection', CONNECTION]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toMatch(/[1-9]\d* held request approval\(s\) cancelled/); // the earlier cases' re-held requests too

    await h.openWindow(agent);
    await h.retryIsRefused(kubeconfig, name, approvalId, `connection ${CONNECTION} was revoked by admin at`);
    await h.showsCancelled(agent, approvalId, `connection ${CONNECTION} was revoked by admin at`);
  });

  it('a pending approval cancelled by a revoke: the approver clicking approve afterwards is told so, and nothing changes', async () => {
    const agent = await env.createAgent('pending-agent');
    await h.openWindow(agent);
    const kubeconfig = await agent.kubeconfig(CONNECTION);
    const name = await h.target(`ks-pending-${suffix}`);
    const held = await kubectl(['delete', 'configmap', name, '-n', 'prod'], { kubeconfig });
    const approvalId = heldApproval(held.stderr)!;
    expect(approvalId).toBeDefined();

    // The approver opens the page while it is pending ...
    const link = new URL(await env.approvalLink(approvalId, APPROVER));
    const page = await env.https('GET', link.pathname + link.search);
    const form = /name="form" value="([^"]+)"/.exec(page.body)?.[1];
    expect(form).toBeDefined();
    const executionArn = (await env.stack.services.state.getApproval(approvalId))!.executionArn!;
    expect(env.stack.stepFunctions.describe(executionArn)?.status).toBe('RUNNING');

    // ... the admin pulls the kill switch ...
    expect((await env.cli(['revoke', '--agent', 'pending-agent'])).code).toBe(0);
    await until('the approval workflow stopped', async () => (env.stack.stepFunctions.describe(executionArn)?.status === 'ABORTED' ? true : undefined));

    // ... and then the approver clicks Approve on the page still open.
    const clicked = await env.https('POST', link.pathname, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ sig: link.searchParams.get('sig')!, form: form!, decision: 'approve' }).toString(),
    });
    expect(clicked.status).toBe(409);
    expect(clicked.body).toContain('Nothing was changed');
    expect(pageStatus(clicked.body)).toContain('this request was cancelled at');
    expect(pageStatus(clicked.body)).toContain('the agent was revoked by admin');
    expect(pageStatus(clicked.body)).toContain('your decision changes nothing and was not recorded');
    expect(await env.stack.services.state.getApproval(approvalId)).toMatchObject({ status: 'cancelled', decisions: [] });
    await h.showsCancelled(agent, approvalId, 'the agent was revoked by admin at');

    // A new window and the same delete: held again, never spent.
    await h.openWindow(agent);
    await h.retryIsRefused(kubeconfig, name, approvalId, 'the agent was revoked by admin at');
    const events = JSON.parse((await env.cli(['--json', 'audit', 'list', '--events', '--agent', 'pending-agent'])).stdout) as { items: { type: string; subject: string }[] };
    expect(events.items.filter((event) => event.subject === approvalId).map((event) => event.type)).not.toContain('approval.approve');
  });

  it('cancel and consume of one approval at the same moment on the real state store: exactly one wins', async () => {
    const services = env.stack.services;
    const agent = await env.createAgent('race-agent');
    await h.openWindow(agent);
    const kubeconfig = await agent.kubeconfig(CONNECTION);
    const name = await h.target(`ks-race-${suffix}`);
    const approvalId = await h.heldAndApproved(kubeconfig, name);
    // The gate's consume and the sweep's cancel, each a conditional write on the approval's status.
    const [consumed, cancelled] = await Promise.all([
      services.state.updateApproval(approvalId, { status: ['approved'] }, { status: 'consumed', consumedAt: Date.now(), consumedBy: 'req_race' }),
      cancelApproval(services, approvalId, 'the agent was revoked (race test)', 'admin'),
    ]);
    expect([consumed, cancelled].filter((outcome) => outcome !== undefined)).toHaveLength(1);
    expect((await services.state.getApproval(approvalId))!.status).toBe(consumed ? 'consumed' : 'cancelled');
  });
});

describe.skipIf(!cluster)('an approval does not outlive the window it was asked in', () => {
  let env: TestStack;
  const h = harness(() => env);
  const suffix = Date.now().toString(36);
  // Windows end 20 s after they open (the access-window workflow's wait, shortened).
  const WINDOW_MS = 20_000;

  beforeAll(async () => {
    env = await startTestStack({ waitOverrides: { WaitUntilExpiry: WINDOW_MS } });
    await env.createConnection(CONNECTION, { cluster: cluster!, policy: EXAMPLE_POLICY });
  });
  afterAll(async () => {
    await env?.stop();
    for (const name of h.created) await admin(['delete', 'configmap', name, '-n', 'prod', '--ignore-not-found']);
  });

  it('approved in window A, A ends: the approval is cancelled and cannot be spent in window B', async () => {
    const agent = await env.createAgent('expiring-agent');
    const windowA = await h.openWindow(agent);
    const kubeconfig = await agent.kubeconfig(CONNECTION);
    const name = await h.target(`ks-expiry-${suffix}`);
    const approvalId = await h.heldAndApproved(kubeconfig, name);

    await until('window A ended', async () => ((await env.stack.services.state.getGrant(windowA))?.status === 'expired' ? true : undefined), WINDOW_MS + 15_000);
    const why = `the window ${windowA} it was asked in ended at`;
    await until('the approval cancelled', async () => ((await env.stack.services.state.getApproval(approvalId))?.status === 'cancelled' ? true : undefined));

    const windowB = await h.openWindow(agent);
    expect(windowB).not.toBe(windowA);
    await h.retryIsRefused(kubeconfig, name, approvalId, why);
    await h.showsCancelled(agent, approvalId, why);
  }, 90_000);
});
