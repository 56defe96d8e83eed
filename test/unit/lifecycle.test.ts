// The window and approval lifecycle (core/lifecycle.ts) through the in-memory
// ports: every transition, its audit event, its conditions, and what happens
// when the recorder or the workflows are down. No cluster, no emulator.
import { describe, expect, it } from 'vitest';
import type { Approval } from '../../lambdas/core/model.ts';
import {
  activateWindow,
  awaitDecision,
  cancelApproval,
  decide,
  disableAgent,
  endPendingWindow,
  expireWindow,
  requestWindow,
  revokeAgent,
  revokeConnection,
  revokeWindow,
  settleApproval,
  windowPhase,
} from '../../lambdas/core/lifecycle.ts';
import { T0, lifecycleWorld, refusal, type LifecycleWorld } from '../support/lifecycle-world.ts';

const ask = { duration: '30m', reason: 'fix the rollout', ticket: 'OPS-1' };

/** Holds a request in `grantId` and returns its approval id. */
async function heldIn(world: LifecycleWorld, grantId: string, path = '/api/v1/namespaces/prod/pods/web'): Promise<string> {
  const grant = world.state.grants.get(grantId) ?? world.activeWindow(grantId);
  const error = await refusal(world.gate.authorize(world.held(grant, { path })));
  return error.details!.approvalId as string;
}

async function approve(world: LifecycleWorld, approvalId: string): Promise<Approval> {
  return (await decide(world.deps, approvalId, 'oncall@example.com', 'approve')).approval;
}

describe('a window without approval', () => {
  it('is recorded, then active at once for its duration, and its workflow started', async () => {
    const world = lifecycleWorld();
    const grant = await requestWindow(world.deps, world.agent, world.connection, ask);
    expect(grant).toMatchObject({ status: 'active', activatedAt: T0, expiresAt: T0 + 1_800_000, ticket: 'OPS-1', executionArn: `execution:window:${grant.id}` });
    expect(world.eventTypes()).toEqual(['window.requested', 'window.activated']);
    expect(world.records.events[0]!.detail).toEqual({ duration: '30m', reason: 'fix the rollout', ticket: 'OPS-1' });
    expect(world.workflows.started).toEqual([{ kind: 'window', id: grant.id }]);
  });

  it('is refused when the duration is not allowed, before anything is recorded', async () => {
    const world = lifecycleWorld({ maxWindowSeconds: 600 });
    expect((await refusal(requestWindow(world.deps, world.agent, world.connection, ask))).code).toBe('window_too_long');
    expect(world.records.events).toEqual([]);
    expect(world.state.grants.size).toBe(0);
  });

  it('recorder down: refused, and no window exists (fail closed)', async () => {
    const world = lifecycleWorld();
    world.records.faults.fail('putEvent');
    const error = await refusal(requestWindow(world.deps, world.agent, world.connection, ask));
    expect(error).toMatchObject({ status: 503, code: 'recorder_unavailable' });
    expect(world.state.grants.size).toBe(0);
  });

  it('stays active when its workflow cannot start: the gateway ends it by the clock', async () => {
    const world = lifecycleWorld();
    world.workflows.faults.fail('startWindow');
    const grant = await requestWindow(world.deps, world.agent, world.connection, ask);
    expect(grant.status).toBe('active');
    expect(grant.executionArn).toBeUndefined();
  });
});

describe('a window that needs approval: request -> pending -> approved/denied/timeout -> active -> expired/revoked', () => {
  const required = { windowApproval: 'required' as const };

  it('is pending with one window approval built from the policy', async () => {
    const world = lifecycleWorld(required);
    const grant = await requestWindow(world.deps, world.agent, world.connection, ask);
    expect(grant.status).toBe('pending');
    const approval = world.state.approvals.get(grant.approvalId!)!;
    expect(approval).toMatchObject({
      kind: 'window',
      status: 'pending',
      agentId: 'agt_bot',
      agentName: 'bot',
      connection: 'prod-cluster',
      summary: 'access window on prod-cluster for 30m',
      reason: 'fix the rollout',
      ticket: 'OPS-1',
      rule: 'windowApproval: required',
      approvers: ['oncall@example.com'],
      minApprovals: 1,
      createdAt: T0,
      expiresAt: T0 + 900_000,
      timeoutSeconds: 900,
      grantId: grant.id,
      policyVersion: 'v1',
    });
    expect(approval.fingerprint).toBeUndefined();
    expect(approval.request).toBeUndefined();
    expect(await windowPhase(world.deps, grant.id)).toEqual({ phase: 'approve', approvalId: approval.id, approvalTimeoutSeconds: 900 });
  });

  it('approved -> active -> expired, and its held requests are cancelled at the end', async () => {
    const world = lifecycleWorld(required);
    const grant = await requestWindow(world.deps, world.agent, world.connection, ask);
    expect((await decide(world.deps, grant.approvalId!, 'oncall@example.com', 'approve')).status).toBe('approved');
    expect(await windowPhase(world.deps, grant.id)).toEqual({ phase: 'activate' });
    world.advance(5000);
    const active = (await activateWindow(world.deps, grant.id, 'workflow'))!;
    expect(active).toMatchObject({ status: 'active', activatedAt: T0 + 5000, expiresAt: T0 + 5000 + 1_800_000 });
    expect(await activateWindow(world.deps, grant.id, 'workflow')).toBeUndefined(); // once
    expect(await windowPhase(world.deps, grant.id)).toEqual({ phase: 'active', expiresAt: new Date(T0 + 5000 + 1_800_000).toISOString() });

    const held = await heldIn(world, grant.id);
    world.advance(1_800_000);
    expect(await windowPhase(world.deps, grant.id)).toEqual({ phase: 'expire' });
    await expireWindow(world.deps, grant.id);
    expect(world.state.grants.get(grant.id)).toMatchObject({ status: 'expired', endReason: 'window ended' });
    expect(world.state.approvals.get(held)).toMatchObject({ status: 'cancelled', cancelReason: `the window ${grant.id} it was asked in ended at ${new Date(world.now()).toISOString()}` });
    expect(world.notifier.sent.at(-1)).toMatchObject({ to: 'event:window.expired', subject: '[Airlock] Window of bot on prod-cluster ended' });
    expect(world.eventTypes()).toEqual(expect.arrayContaining(['window.requested', 'approval.approve', 'window.activated', 'approval.requested', 'window.expired', 'approval.cancelled']));
    // Only from active: a second expiry changes nothing.
    const before = world.records.events.length;
    await expireWindow(world.deps, grant.id);
    expect(world.records.events.length).toBe(before);
    expect(await windowPhase(world.deps, grant.id)).toEqual({ phase: 'ended' });
  });

  it('denied -> the window ends denied, the decision stands', async () => {
    const world = lifecycleWorld(required);
    const grant = await requestWindow(world.deps, world.agent, world.connection, ask);
    expect((await decide(world.deps, grant.approvalId!, 'oncall@example.com', 'deny')).status).toBe('denied');
    expect(await windowPhase(world.deps, grant.id)).toEqual({ phase: 'ended' });
    expect(world.state.grants.get(grant.id)).toMatchObject({ status: 'denied', endReason: 'approval denied' });
    expect(world.state.approvals.get(grant.approvalId!)!.status).toBe('denied');
    expect(world.notifier.sent.at(-1)!.to).toBe('event:window.denied');
    expect(await activateWindow(world.deps, grant.id, 'workflow')).toBeUndefined();
  });

  it('timeout -> the window ends and the approval expires; a late decision changes nothing', async () => {
    const world = lifecycleWorld(required);
    const grant = await requestWindow(world.deps, world.agent, world.connection, ask);
    world.advance(900_000);
    expect(await windowPhase(world.deps, grant.id)).toEqual({ phase: 'ended' });
    expect(world.state.grants.get(grant.id)).toMatchObject({ status: 'denied', endReason: 'approval timed out' });
    expect(world.state.approvals.get(grant.approvalId!)!.status).toBe('expired');
    expect((await refusal(decide(world.deps, grant.approvalId!, 'oncall@example.com', 'approve'))).code).toBe('already_decided');
  });

  it('a decision at the deadline, before the workflow noticed, is refused as expired', async () => {
    const world = lifecycleWorld(required);
    const grant = await requestWindow(world.deps, world.agent, world.connection, ask);
    world.advance(900_000);
    expect(await refusal(decide(world.deps, grant.approvalId!, 'oncall@example.com', 'approve'))).toMatchObject({ status: 410, code: 'approval_expired' });
  });

  it('is refused when approvals are not configured, and when its workflow cannot start (the window ends failed)', async () => {
    const world = lifecycleWorld(required);
    const unconfigured = { ...world.deps, workflows: undefined };
    expect(await refusal(requestWindow(unconfigured, world.agent, world.connection, ask))).toMatchObject({ status: 501, code: 'approval_unavailable' });
    world.workflows.faults.fail('startWindow');
    expect(await refusal(requestWindow(world.deps, world.agent, world.connection, ask))).toMatchObject({ status: 503, code: 'workflows_unavailable' });
    const [grant] = await world.state.listGrants({ agentId: world.agent.id });
    expect(grant).toMatchObject({ status: 'denied', endReason: 'workflow failed (closed)' });
    expect(world.state.approvals.get(grant!.approvalId!)!.status).toBe('expired');
  });

  it('revoked while pending: its approval is cancelled with the reason and its workflow stopped', async () => {
    const world = lifecycleWorld(required);
    const grant = await requestWindow(world.deps, world.agent, world.connection, ask);
    expect(await revokeWindow(world.deps, grant, 'admin', 'revoked by admin')).toBe(true);
    expect(world.state.grants.get(grant.id)).toMatchObject({ status: 'revoked', endReason: 'revoked by admin' });
    expect(world.state.approvals.get(grant.approvalId!)).toMatchObject({
      status: 'cancelled',
      cancelReason: `the window ${grant.id} was closed by admin at ${new Date(T0).toISOString()} (revoked by admin)`,
    });
    expect(world.workflows.stopped).toContainEqual({ executionArn: `execution:window:${grant.id}`, cause: 'window revoked: revoked by admin' });
    expect(await revokeWindow(world.deps, grant, 'admin', 'again')).toBe(false);
    expect((await refusal(decide(world.deps, grant.approvalId!, 'oncall@example.com', 'approve'))).code).toBe('approval_cancelled');
  });

  it('endPendingWindow and settleApproval never override a decision taken', async () => {
    const world = lifecycleWorld(required);
    const grant = await requestWindow(world.deps, world.agent, world.connection, ask);
    await approve(world, grant.approvalId!);
    expect(await settleApproval(world.deps, grant.approvalId!, 'expired', 'workflow')).toBeUndefined();
    await activateWindow(world.deps, grant.id, 'workflow');
    await endPendingWindow(world.deps, grant.id, 'timed-out');
    expect(world.state.grants.get(grant.id)!.status).toBe('active');
    expect(world.state.approvals.get(grant.approvalId!)!.status).toBe('approved');
  });
});

describe('the kill switch closes even when the recorder is down', () => {
  it('revokes, says so in the log, and opens nothing', async () => {
    const world = lifecycleWorld();
    const grant = await requestWindow(world.deps, world.agent, world.connection, ask);
    world.records.faults.fail('putEvent');
    world.workflows.faults.fail('stop');
    expect(await revokeWindow(world.deps, grant, 'admin', 'revoked by admin')).toBe(true);
    expect(world.state.grants.get(grant.id)!.status).toBe('revoked');
    expect(world.log.lines.map((line) => line.message)).toEqual(['audit event not written after a revocation', 'could not stop the window workflow']);
  });

  it('but a window is not activated without its record', async () => {
    const world = lifecycleWorld({ windowApproval: 'required' });
    const grant = await requestWindow(world.deps, world.agent, world.connection, ask);
    await approve(world, grant.approvalId!);
    world.records.faults.fail('putEvent');
    expect((await refusal(activateWindow(world.deps, grant.id, 'workflow'))).code).toBe('recorder_unavailable');
    expect(world.state.grants.get(grant.id)!.status).toBe('pending');
  });
});

describe('decisions', () => {
  it('minApprovals: the first approval is recorded, the second approves and resumes the workflow; the deadline restarts for using it', async () => {
    const world = lifecycleWorld({ approvers: ['a@example.com', 'b@example.com'], minApprovals: 2 });
    const id = await heldIn(world, 'gr_A');
    await world.state.updateApproval(id, { status: ['pending'] }, { taskToken: 'token-1' });
    expect((await decide(world.deps, id, 'a@example.com', 'approve')).status).toBe('recorded');
    expect(await refusal(decide(world.deps, id, 'a@example.com', 'approve'))).toMatchObject({ code: 'already_decided', message: expect.stringContaining('a decision is made once') });
    world.advance(60_000);
    const outcome = await decide(world.deps, id, 'b@example.com', 'approve');
    expect(outcome.status).toBe('approved');
    expect(outcome.approval).toMatchObject({ decidedAt: T0 + 60_000, expiresAt: T0 + 60_000 + 900_000 });
    expect(world.workflows.resumed).toEqual([{ taskToken: 'token-1', outcome: 'success', detail: { decision: 'approved', by: ['a@example.com', 'b@example.com'] } }]);
    expect(world.records.events.filter((event) => event.type === 'approval.approve').map((event) => event.detail)).toEqual([{ result: 'pending' }, { result: 'approved' }]);
  });

  it('any deny denies; strangers and unknown approvals are refused', async () => {
    const world = lifecycleWorld({ approvers: ['a@example.com', 'b@example.com'], minApprovals: 2 });
    const id = await heldIn(world, 'gr_A');
    await world.state.updateApproval(id, { status: ['pending'] }, { taskToken: 'token-1' });
    expect((await refusal(decide(world.deps, id, 'mallory@example.com', 'approve'))).code).toBe('not_an_approver');
    expect((await refusal(decide(world.deps, 'apr_missing', 'a@example.com', 'approve'))).code).toBe('approval_not_found');
    expect((await decide(world.deps, id, 'b@example.com', 'deny')).status).toBe('denied');
    expect(world.workflows.resumed).toEqual([{ taskToken: 'token-1', outcome: 'failure', detail: { error: 'Airlock.Denied', cause: 'denied by b@example.com' } }]);
  });

  it('two approvers deciding at the same moment both count, and the last one approves', async () => {
    const world = lifecycleWorld({ approvers: ['a@example.com', 'b@example.com'], minApprovals: 2 });
    const id = await heldIn(world, 'gr_A');
    const outcomes = await Promise.all([decide(world.deps, id, 'a@example.com', 'approve'), decide(world.deps, id, 'b@example.com', 'approve')]);
    expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['approved', 'recorded']);
    expect(
      world.state.approvals
        .get(id)!
        .decisions.map((entry) => entry.approver)
        .sort(),
    ).toEqual(['a@example.com', 'b@example.com']);
  });

  it('a request approval whose window is gone is cancelled when an approver decides', async () => {
    const world = lifecycleWorld();
    const id = await heldIn(world, 'gr_A');
    world.state.grants.delete('gr_A');
    expect(await refusal(decide(world.deps, id, 'oncall@example.com', 'approve'))).toMatchObject({
      code: 'approval_cancelled',
      message: expect.stringContaining('the window gr_A it was asked in no longer exists'),
    });
  });

  it('recorder down: the decision is refused and not stored (fail closed)', async () => {
    const world = lifecycleWorld();
    const id = await heldIn(world, 'gr_A');
    world.records.faults.fail('putEvent');
    expect((await refusal(decide(world.deps, id, 'oncall@example.com', 'approve'))).code).toBe('recorder_unavailable');
    expect(world.state.approvals.get(id)).toMatchObject({ status: 'pending', decisions: [] });
  });

  it('a decision on a cancelled approval changes nothing, even from an approver who approved it before', async () => {
    const world = lifecycleWorld({ approvers: ['a@example.com', 'b@example.com'], minApprovals: 2 });
    const id = await heldIn(world, 'gr_A');
    await decide(world.deps, id, 'a@example.com', 'approve');
    await cancelApproval(world.deps, id, 'the agent was revoked by admin', 'admin');
    const stored = structuredClone(world.state.approvals.get(id));
    for (const [approver, decision] of [
      ['a@example.com', 'deny'],
      ['b@example.com', 'approve'],
      ['b@example.com', 'deny'],
    ] as const) {
      expect((await refusal(decide(world.deps, id, approver, decision))).code).toBe('approval_cancelled');
    }
    expect(world.state.approvals.get(id)).toEqual(stored);
  });
});

describe('what the workflows find', () => {
  it('a window that is gone has ended; a pending one without an approval is activated', async () => {
    const world = lifecycleWorld();
    expect(await windowPhase(world.deps, 'gr_missing')).toEqual({ phase: 'ended' });
    const grant = world.activeWindow('gr_P');
    world.state.grants.set('gr_P', { ...grant, status: 'pending' });
    expect(await windowPhase(world.deps, 'gr_P')).toEqual({ phase: 'activate' });
  });

  it('a failed notification or a workflow that cannot be stopped is logged, and the change stands', async () => {
    const world = lifecycleWorld();
    const grant = world.activeWindow('gr_A', 60);
    const id = await heldIn(world, 'gr_A');
    world.notifier.faults.fail('event');
    world.workflows.faults.fail('stop');
    world.advance(60_000);
    await expireWindow(world.deps, grant.id);
    expect(world.state.grants.get(grant.id)!.status).toBe('expired');
    expect(world.state.approvals.get(id)!.status).toBe('cancelled');
    expect(world.log.lines.map((line) => line.message)).toEqual(['could not stop the approval workflow', 'notification not sent']);
  });
});

describe('the approval workflow waits on people', () => {
  it('stores the task token, emails each approver once with their own link, and replays a decision that came first', async () => {
    const world = lifecycleWorld({ approvers: ['a@example.com', 'b@example.com'], minApprovals: 1 });
    const id = await heldIn(world, 'gr_A');
    const linkFor = async (approval: Approval, approver: string) => `https://airlock.example/approvals/${approval.id}?sig=${approver}`;
    await awaitDecision(world.deps, id, 'token-1', linkFor);
    expect(world.state.approvals.get(id)).toMatchObject({ taskToken: 'token-1', notified: ['a@example.com', 'b@example.com'] });
    expect(world.notifier.sent.map((message) => message.to)).toEqual(['a@example.com', 'b@example.com']);
    expect(world.notifier.sent[1]!.text).toContain(`https://airlock.example/approvals/${id}?sig=b@example.com`);
    // A resumed workflow does not email twice.
    await awaitDecision(world.deps, id, 'token-2', linkFor);
    expect(world.notifier.sent).toHaveLength(2);

    await decide(world.deps, id, 'a@example.com', 'approve');
    await awaitDecision(world.deps, id, 'token-3', linkFor);
    expect(world.workflows.resumed.at(-1)).toEqual({ taskToken: 'token-3', outcome: 'success', detail: { decision: 'approved' } });
    await cancelApproval(world.deps, id, 'revoked', 'admin');
    await awaitDecision(world.deps, id, 'token-4', linkFor);
    expect(world.workflows.resumed.at(-1)).toEqual({ taskToken: 'token-4', outcome: 'failure', detail: { error: 'Airlock.Denied', cause: 'approval is cancelled' } });
  });
});

describe('cancel sweeps: pending and approved-but-unused request approvals die with the access they were asked in', () => {
  /** In window A: one approved, one pending, one consumed; in window B (same agent): one approved. */
  async function scene() {
    const world = lifecycleWorld();
    const windowA = world.activeWindow('gr_A');
    world.activeWindow('gr_B');
    const approved = await heldIn(world, 'gr_A', '/api/v1/namespaces/prod/pods/one');
    await approve(world, approved);
    const pending = await heldIn(world, 'gr_A', '/api/v1/namespaces/prod/pods/two');
    const consumed = await heldIn(world, 'gr_A', '/api/v1/namespaces/prod/pods/three');
    await approve(world, consumed);
    await world.gate.authorize(world.held(windowA, { requestId: 'req_spend', path: '/api/v1/namespaces/prod/pods/three' }));
    const otherWindow = await heldIn(world, 'gr_B', '/api/v1/namespaces/prod/pods/four');
    await approve(world, otherWindow);
    return { world, approved, pending, consumed, otherWindow };
  }
  const statuses = (world: LifecycleWorld, ids: string[]) => ids.map((id) => world.state.approvals.get(id)!.status);

  it('revoke agent: every window and every live approval of the agent, with the reason', async () => {
    const { world, approved, pending, consumed, otherWindow } = await scene();
    const sweep = await revokeAgent(world.deps, world.agent, 'admin');
    expect(sweep).toEqual({ windowsRevoked: 2, approvalsCancelled: 3, revokedBefore: T0 });
    expect(statuses(world, [approved, pending, consumed, otherWindow])).toEqual(['cancelled', 'cancelled', 'consumed', 'cancelled']);
    expect(world.state.approvals.get(approved)!.cancelReason).toBe(`the agent was revoked by admin at ${new Date(T0).toISOString()}`);
    expect(world.state.agents.get(world.agent.id)!.revokedBefore).toBe(T0);
    // The pending one's workflow, waiting on approvers, is stopped.
    expect(world.workflows.stopped.map((stop) => stop.executionArn)).toContain(`execution:approval:${pending}`);
  });

  it('revoke connection: the same, by connection', async () => {
    const { world, approved, pending, consumed, otherWindow } = await scene();
    const sweep = await revokeConnection(world.deps, world.connection, 'admin');
    expect(sweep).toMatchObject({ windowsRevoked: 2, approvalsCancelled: 3 });
    expect(statuses(world, [approved, pending, consumed, otherWindow])).toEqual(['cancelled', 'cancelled', 'consumed', 'cancelled']);
    expect(world.state.approvals.get(pending)!.cancelReason).toBe(`connection prod-cluster was revoked by admin at ${new Date(T0).toISOString()}`);
    expect(world.state.connections.get('prod-cluster')!.revokedBefore).toBe(T0);
  });

  it('disable: the agent is disabled, its approvals cancelled and its windows revoked', async () => {
    const { world, approved, otherWindow } = await scene();
    const sweep = await disableAgent(world.deps, world.agent, 'admin');
    expect(sweep).toMatchObject({ agent: { status: 'disabled', disabledAt: T0 }, windowsRevoked: 2, approvalsCancelled: 3 });
    expect(world.state.approvals.get(approved)!.cancelReason).toBe(`the agent was disabled by admin at ${new Date(T0).toISOString()}`);
    expect(world.state.approvals.get(otherWindow)!.status).toBe('cancelled');
    expect(world.state.grants.get('gr_A')).toMatchObject({ status: 'revoked', endReason: 'agent disabled' });
  });

  it("window end: only that window's approvals", async () => {
    const { world, approved, pending, otherWindow } = await scene();
    world.advance(1_800_000);
    await expireWindow(world.deps, 'gr_A');
    expect(statuses(world, [approved, pending, otherWindow])).toEqual(['cancelled', 'cancelled', 'approved']);
  });

  it("`access end`: the agent closes its window, and that window's approvals with it", async () => {
    const { world, approved, pending, otherWindow } = await scene();
    expect(await revokeWindow(world.deps, world.state.grants.get('gr_A')!, 'bot', 'ended by the agent')).toBe(true);
    expect(statuses(world, [approved, pending, otherWindow])).toEqual(['cancelled', 'cancelled', 'approved']);
    expect(world.state.approvals.get(approved)!.cancelReason).toBe(`the window gr_A it was asked in was closed by bot at ${new Date(T0).toISOString()} (ended by the agent)`);
  });

  it('a sweep closes even when the recorder is down', async () => {
    const { world, approved } = await scene();
    world.records.faults.fail('putEvent');
    expect(await revokeAgent(world.deps, world.agent, 'admin')).toMatchObject({ windowsRevoked: 2, approvalsCancelled: 3 });
    expect(world.state.approvals.get(approved)!.status).toBe('cancelled');
  });
});

describe('cancel vs consume', () => {
  it('of a cancel and a consume at the same moment exactly one wins, in either order', async () => {
    for (const cancelFirst of [true, false]) {
      const world = lifecycleWorld();
      const windowA = world.activeWindow('gr_A');
      const id = await heldIn(world, 'gr_A');
      await approve(world, id);
      const cancel = () => cancelApproval(world.deps, id, 'the agent was revoked', 'admin');
      const consume = () =>
        world.gate.authorize(world.held(windowA, { requestId: 'req_2' })).then(
          (spent) => spent,
          () => undefined,
        );
      const [cancelled, spent] = cancelFirst ? await Promise.all([cancel(), consume()]) : await Promise.all([consume(), cancel()]).then(([s, c]) => [c, s] as const);
      expect([cancelled !== undefined, spent !== undefined].filter(Boolean)).toHaveLength(1);
      expect(world.state.approvals.get(id)!.status).toBe(spent ? 'consumed' : 'cancelled');
      expect(world.eventTypes().filter((type) => type === 'approval.consumed' || type === 'approval.cancelled')).toHaveLength(1);
    }
  });
});
