// A request approval is spent only in the window it was asked in, and a cancel
// (revoke, disable, the window's end) and a consume cannot both win. The state
// store here is an in-memory one with the same conditional-write contract as
// DynamoDB's (the e2e file runs the race against the local stack's store).
import { describe, expect, it } from 'vitest';
import type { Grant } from '../../lambdas/core/model.ts';
import type { HeldRequest } from '../../lambdas/proxy/gateway.ts';
import { cancelApproval, cancelRequestApprovals, decide } from '../../lambdas/core/lifecycle.ts';
import { T0 as NOW, lifecycleWorld, refusal } from '../support/lifecycle-world.ts';

function setup() {
  const world = lifecycleWorld();
  return {
    memory: world.state,
    events: world.records.events,
    get stopped() {
      return world.workflows.stopped.map((stop) => stop.executionArn);
    },
    gate: world.gate,
    services: world.deps,
  };
}

/** The agent, the connection and the requests are the same in every setup. */
const shapes = lifecycleWorld();
const { agent, connection } = shapes;

function grant(id: string): Grant {
  return {
    id,
    agentId: agent.id,
    agentName: agent.name,
    connection: connection.name,
    status: 'active',
    reason: 'test',
    durationSeconds: 1800,
    requestedAt: NOW - 1000,
    activatedAt: NOW - 1000,
    expiresAt: NOW + 1_800_000,
    policyVersion: 'v1',
  };
}

function heldDelete(window: Grant, requestId = 'req_1', pod = 'web'): HeldRequest {
  return shapes.held(window, { requestId, path: `/api/v1/namespaces/prod/pods/${pod}` });
}

/** Holds the delete in `window` and approves it; returns the approval id. */
async function approvedIn(env: ReturnType<typeof setup>, window: Grant, pod = 'web'): Promise<string> {
  const held = await refusal(env.gate.authorize(heldDelete(window, 'req_1', pod)));
  const id = held.details!.approvalId as string;
  await env.memory.updateApproval(id, { status: ['pending'] }, { status: 'approved', decidedAt: NOW, decisions: [{ approver: 'oncall@example.com', decision: 'approve', at: NOW }] });
  return id;
}

describe('a request approval is bound to the window it was asked in', () => {
  it('stores the window on the approval and is spent by a request of that window', async () => {
    const env = setup();
    const windowA = grant('gr_A');
    const id = await approvedIn(env, windowA);
    expect(env.memory.approvals.get(id)).toMatchObject({ kind: 'request', grantId: 'gr_A' });
    await expect(env.gate.authorize(heldDelete(windowA, 'req_2'))).resolves.toBe(id);
    expect(env.memory.approvals.get(id)).toMatchObject({ status: 'consumed', consumedBy: 'req_2' });
  });

  it('is never spent by the same request in another window: held again, the old one cancelled and why', async () => {
    const env = setup();
    const id = await approvedIn(env, grant('gr_A'));
    const error = await refusal(env.gate.authorize(heldDelete(grant('gr_B'), 'req_2')));
    expect(error.status).toBe(403);
    expect(error.code).toBe('approval_required');
    expect(error.details!.approvalId).not.toBe(id);
    expect(error.message).toContain(`approval ${id} of this request was cancelled`);
    expect(error.message).toContain('asked in window gr_A');
    expect(env.memory.approvals.get(id)).toMatchObject({ status: 'cancelled', cancelReason: expect.stringContaining('window gr_B, which needs its own approval') });
    expect(env.memory.approvals.get(error.details!.approvalId as string)).toMatchObject({ status: 'pending', grantId: 'gr_B' });
    expect(env.events.map((event) => event.type)).toContain('approval.cancelled');
  });

  it('an approval without a window (made before the binding) is not spent either', async () => {
    const env = setup();
    const windowA = grant('gr_A');
    const id = await approvedIn(env, windowA);
    const { grantId: _dropped, ...legacy } = env.memory.approvals.get(id)!;
    env.memory.approvals.set(id, legacy);
    const error = await refusal(env.gate.authorize(heldDelete(windowA, 'req_2')));
    expect(error.details!.approvalId).not.toBe(id);
    expect(env.memory.approvals.get(id)!.status).toBe('cancelled');
  });
});

describe('cancel sweeps', () => {
  it('cancel pending and approved-but-unused request approvals of the scope, and leave the rest', async () => {
    const env = setup();
    const approved = await approvedIn(env, grant('gr_A'));
    const pending = (await refusal(env.gate.authorize(heldDelete(grant('gr_A'), 'req_2', 'other')))).details!.approvalId as string;
    const otherWindow = await approvedIn(env, grant('gr_C'), 'third');

    expect(await cancelRequestApprovals(env.services, { agentId: agent.id, grantId: 'gr_A' }, 'the window gr_A it was asked in ended', 'workflow')).toBe(2);
    expect(env.memory.approvals.get(approved)).toMatchObject({ status: 'cancelled', cancelReason: 'the window gr_A it was asked in ended', cancelledAt: NOW });
    expect(env.memory.approvals.get(pending)).toMatchObject({ status: 'cancelled' });
    expect(env.memory.approvals.get(otherWindow)!.status).toBe('approved');
    // The pending one's workflow (waiting on approvers) is stopped.
    expect(env.stopped).toContain(env.memory.approvals.get(pending)!.executionArn);

    expect(await cancelRequestApprovals(env.services, { connection: connection.name }, 'connection prod-cluster was revoked', 'admin')).toBe(1);
    expect(env.memory.approvals.get(otherWindow)).toMatchObject({ status: 'cancelled', cancelReason: 'connection prod-cluster was revoked' });
  });

  it('a cancelled approval is not spent in its own window either, and the refusal says why', async () => {
    const env = setup();
    const windowA = grant('gr_A');
    const id = await approvedIn(env, windowA);
    await cancelApproval(env.services, id, 'the agent was revoked by admin at 2026-01-01T12:00:00.000Z', 'admin');
    const error = await refusal(env.gate.authorize(heldDelete(windowA, 'req_2')));
    expect(error.message).toContain(`approval ${id} of this request was cancelled (the agent was revoked by admin`);
    expect(env.memory.approvals.get(id)!.status).toBe('cancelled');
  });

  it('cancel and consume at the same moment: exactly one wins', async () => {
    for (const cancelFirst of [true, false]) {
      const env = setup();
      const windowA = grant('gr_A');
      const id = await approvedIn(env, windowA);
      const cancel = () => cancelApproval(env.services, id, 'the agent was revoked', 'admin');
      const consume = () =>
        env.gate.authorize(heldDelete(windowA, 'req_2')).then(
          (spent) => spent,
          () => undefined,
        );
      const [cancelled, spent] = cancelFirst ? await Promise.all([cancel(), consume()]) : await Promise.all([consume(), cancel()]).then(([s, c]) => [c, s] as const);
      expect([cancelled !== undefined, spent !== undefined].filter(Boolean)).toHaveLength(1);
      expect(env.memory.approvals.get(id)!.status).toBe(spent ? 'consumed' : 'cancelled');
    }
  });

  it('a cancel after the approval was spent changes nothing: the record stays true', async () => {
    const env = setup();
    const windowA = grant('gr_A');
    const id = await approvedIn(env, windowA);
    await expect(env.gate.authorize(heldDelete(windowA, 'req_2'))).resolves.toBe(id);
    expect(await cancelApproval(env.services, id, 'the agent was revoked', 'admin')).toBeUndefined();
    expect(env.memory.approvals.get(id)).toMatchObject({ status: 'consumed', consumedBy: 'req_2' });
    expect(env.memory.approvals.get(id)!.cancelReason).toBeUndefined();
  });
});

describe('approvers cannot revive a cancelled approval', () => {
  it('a decision on a cancelled approval changes nothing and says why', async () => {
    const env = setup();
    const error = await refusal(env.gate.authorize(heldDelete(grant('gr_A'))));
    const id = error.details!.approvalId as string;
    await cancelApproval(env.services, id, 'the agent was revoked by admin', 'admin');
    const refused = await refusal(decide(env.services, id, 'oncall@example.com', 'approve'));
    expect(refused.code).toBe('approval_cancelled');
    expect(refused.message).toContain('cancelled at 2026-01-01T12:00:00.000Z: the agent was revoked by admin');
    expect(refused.message).toContain('changes nothing');
    expect(env.memory.approvals.get(id)).toMatchObject({ status: 'cancelled', decisions: [] });
  });

  it('a pending approval whose window has ended is cancelled when an approver decides, even if no sweep ran', async () => {
    const env = setup();
    const error = await refusal(env.gate.authorize(heldDelete(grant('gr_A'))));
    const id = error.details!.approvalId as string;
    env.memory.grants.set('gr_A', { ...grant('gr_A'), status: 'expired', endReason: 'window ended' });
    const refused = await refusal(decide(env.services, id, 'oncall@example.com', 'approve'));
    expect(refused.code).toBe('approval_cancelled');
    expect(refused.message).toContain('the window gr_A it was asked in is expired (window ended)');
    expect(env.memory.approvals.get(id)).toMatchObject({ status: 'cancelled', decisions: [] });
  });

  it('a pending approval of a live window is decided as before', async () => {
    const env = setup();
    env.memory.grants.set('gr_A', grant('gr_A'));
    const error = await refusal(env.gate.authorize(heldDelete(grant('gr_A'))));
    const outcome = await decide(env.services, error.details!.approvalId as string, 'oncall@example.com', 'approve');
    expect(outcome.status).toBe('approved');
  });
});
