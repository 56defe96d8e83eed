// The approval gate (proxy/approval-gate.ts) through the in-memory ports: a
// request held for approval passes once, only exactly as approved, only in the
// window it was asked in, and never without its record.
import { describe, expect, it } from 'vitest';
import { decide } from '../../lambdas/core/lifecycle.ts';
import type { HeldRequest } from '../../lambdas/proxy/gateway.ts';
import { T0, lifecycleWorld, refusal, type LifecycleWorld } from '../support/lifecycle-world.ts';

/** Holds `held` and approves it; returns the approval id. */
async function approved(world: LifecycleWorld, held: HeldRequest): Promise<string> {
  const id = (await refusal(world.gate.authorize(held))).details!.approvalId as string;
  await decide(world.deps, id, 'oncall@example.com', 'approve');
  return id;
}

const patch = (world: LifecycleWorld, overrides: Parameters<LifecycleWorld['held']>[1] = {}) =>
  world.held(world.state.grants.get('gr_A') ?? world.activeWindow('gr_A'), {
    method: 'PATCH',
    path: '/apis/apps/v1/namespaces/prod/deployments/web',
    body: '{"spec":{"replicas":0}}',
    contentType: 'application/merge-patch+json',
    ...overrides,
  });

describe('held -> approved -> consumed once', () => {
  it('holds the request: one pending approval for exactly it, recorded first, its workflow started, the agent told what to run', async () => {
    const world = lifecycleWorld();
    const held = patch(world);
    const error = await refusal(world.gate.authorize(held));
    const id = error.details!.approvalId as string;
    expect(error.status).toBe(403);
    expect(error.code).toBe('approval_required');
    expect(error.message).toBe(
      `PATCH deployments/web.apps in prod (patch) needs a one-time human approval and was held for approval; an approver has been emailed: run \`airlock approvals wait ${id}\`, then retry the same command (approval expires ${new Date(T0 + 900_000).toISOString()})`,
    );
    expect(world.state.approvals.get(id)).toMatchObject({
      kind: 'request',
      status: 'pending',
      agentId: 'agt_bot',
      summary: 'PATCH deployments/web.apps in prod (patch)',
      reason: 'fix the rollout',
      rule: 'rule 1: approve delete, patch',
      grantId: 'gr_A',
      policyVersion: 'v1',
      executionArn: `execution:approval:${id}`,
      request: {
        method: 'PATCH',
        path: '/apis/apps/v1/namespaces/prod/deployments/web',
        query: '',
        bodySha256: held.bodySha256,
        mediaType: 'application/merge-patch+json',
        bodyPreview: '{"spec":{"replicas":0}}',
      },
    });
    expect(world.records.events[0]).toMatchObject({ type: 'approval.requested', subject: id, actor: 'bot', detail: { request: 'req_1', rule: 'rule 1: approve delete, patch' } });
    expect(world.workflows.started).toEqual([{ kind: 'approval', id }]);
  });

  it('the approver reads what the request does: resource, subresource, name, group, namespace or cluster-wide, verb', async () => {
    const world = lifecycleWorld();
    const window = world.activeWindow('gr_A');
    const summaries: string[] = [];
    for (const path of ['/api/v1/nodes/n1', '/api/v1/namespaces/prod/pods/web/status', '/apis/apps/v1/namespaces/prod/deployments']) {
      const id = (await refusal(world.gate.authorize(world.held(window, { path })))).details!.approvalId as string;
      summaries.push(world.state.approvals.get(id)!.summary);
    }
    expect(summaries).toEqual(['DELETE nodes/n1 (cluster-wide) (delete)', 'DELETE pods/status/web in prod (delete)', 'DELETE deployments.apps in prod (deletecollection)']);
  });

  it('the same request while pending names the same approval; once approved it passes once, then needs a new approval', async () => {
    const world = lifecycleWorld();
    const id = (await refusal(world.gate.authorize(patch(world)))).details!.approvalId as string;
    const waiting = await refusal(world.gate.authorize(patch(world, { requestId: 'req_2' })));
    expect(waiting.details!.approvalId).toBe(id);
    expect(waiting.message).toContain('is waiting for approval');
    expect(world.state.approvals.size).toBe(1);

    await decide(world.deps, id, 'oncall@example.com', 'approve');
    await expect(world.gate.authorize(patch(world, { requestId: 'req_3' }))).resolves.toBe(id);
    expect(world.state.approvals.get(id)).toMatchObject({ status: 'consumed', consumedBy: 'req_3', consumedAt: T0 });
    expect(world.records.events.at(-1)).toMatchObject({ type: 'approval.consumed', subject: id, detail: { request: 'req_3' } });

    const again = await refusal(world.gate.authorize(patch(world, { requestId: 'req_4' })));
    expect(again.details!.approvalId).not.toBe(id);
    expect(again.message).toContain('was held for approval');
  });

  it('two requests racing for one approval: one passes, the other is held again', async () => {
    const world = lifecycleWorld();
    const id = await approved(world, patch(world));
    const outcomes = await Promise.allSettled([world.gate.authorize(patch(world, { requestId: 'req_a' })), world.gate.authorize(patch(world, { requestId: 'req_b' }))]);
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toEqual([{ status: 'fulfilled', value: id }]);
  });

  it('an approval not used in time is not spent: the request is held again', async () => {
    const world = lifecycleWorld();
    const id = await approved(world, patch(world));
    world.advance(900_000);
    const error = await refusal(world.gate.authorize(patch(world, { requestId: 'req_2' })));
    expect(error.details!.approvalId).not.toBe(id);
    expect(world.state.approvals.get(id)!.status).toBe('approved');
  });

  it('the same request held twice at the same moment: both wait for one approval', async () => {
    const world = lifecycleWorld();
    const [first, second] = await Promise.all([refusal(world.gate.authorize(patch(world))), refusal(world.gate.authorize(patch(world, { requestId: 'req_2' })))]);
    expect(second.details!.approvalId).toBe(first.details!.approvalId);
    const statuses = [...world.state.approvals.values()].map((approval) => approval.status).sort();
    expect(statuses).toEqual(['cancelled', 'pending']);
  });
});

describe('fingerprint binding: only exactly the approved request passes', () => {
  const variants: [string, Parameters<LifecycleWorld['held']>[1]][] = [
    ['one byte of the body', { body: '{"spec":{"replicas":1}}' }],
    ['the Content-Type (strategic merge patch instead of merge patch)', { contentType: 'application/strategic-merge-patch+json' }],
    ['the policy version', { policyVersion: 'v2' }],
    ['the path', { path: '/apis/apps/v1/namespaces/prod/deployments/api' }],
  ];
  for (const [what, change] of variants) {
    it(`a different ${what} needs a new approval`, async () => {
      const world = lifecycleWorld();
      const id = await approved(world, patch(world));
      const error = await refusal(world.gate.authorize(patch(world, { requestId: 'req_2', ...change })));
      expect(error.code).toBe('approval_required');
      expect(error.details!.approvalId).not.toBe(id);
      expect(world.state.approvals.get(id)!.status).toBe('approved');
    });
  }

  it('parameters of the Content-Type are not part of it: the media type is', async () => {
    const world = lifecycleWorld();
    const id = await approved(world, patch(world));
    await expect(world.gate.authorize(patch(world, { requestId: 'req_2', contentType: 'Application/Merge-Patch+JSON; charset=utf-8' }))).resolves.toBe(id);
  });

  it('an approval is never spent by another agent', async () => {
    const world = lifecycleWorld();
    const id = await approved(world, patch(world));
    const other = patch(world, { requestId: 'req_2' });
    other.agent = { ...other.agent, id: 'agt_other', name: 'other' };
    const error = await refusal(world.gate.authorize(other));
    expect(error.details!.approvalId).not.toBe(id);
  });

  it('a secret body is previewed redacted for the approver', async () => {
    const world = lifecycleWorld();
    const held = world.held(world.activeWindow('gr_A'), {
      method: 'PATCH',
      path: '/api/v1/namespaces/prod/secrets/db',
      body: '{"data":{"password":"aHVudGVyMg=="}}',
      contentType: 'application/merge-patch+json',
    });
    const id = (await refusal(world.gate.authorize(held))).details!.approvalId as string;
    expect(world.state.approvals.get(id)!.request!.bodyPreview).not.toContain('aHVudGVyMg==');
  });
});

describe('bound to the window it was asked in', () => {
  it('a pending approval from another window is cancelled and the request held anew in this one', async () => {
    const world = lifecycleWorld();
    const first = (await refusal(world.gate.authorize(patch(world)))).details!.approvalId as string;
    const error = await refusal(world.gate.authorize({ ...patch(world, { requestId: 'req_2' }), grant: world.activeWindow('gr_B') }));
    expect(error.details!.approvalId).not.toBe(first);
    expect(world.state.approvals.get(first)).toMatchObject({ status: 'cancelled', cancelReason: expect.stringContaining('asked in window gr_A') });
    expect(world.state.approvals.get(error.details!.approvalId as string)!.grantId).toBe('gr_B');
    expect(world.workflows.stopped).toContainEqual({ executionArn: `execution:approval:${first}`, cause: 'approval cancelled' });
  });
});

describe('fail closed', () => {
  it('recorder down: refused with 503, no approval created, nothing bound', async () => {
    const world = lifecycleWorld();
    world.records.faults.fail('putEvent');
    expect(await refusal(world.gate.authorize(patch(world)))).toMatchObject({ status: 503, code: 'recorder_unavailable' });
    expect(world.state.approvals.size).toBe(0);
    world.records.faults.clear();
    const error = await refusal(world.gate.authorize(patch(world, { requestId: 'req_2' })));
    expect(error.message).toContain('was held for approval');
  });

  it('recorder down when an approved request comes: refused with 503, nothing forwarded', async () => {
    const world = lifecycleWorld();
    await approved(world, patch(world));
    world.records.faults.fail('putEvent');
    expect(await refusal(world.gate.authorize(patch(world, { requestId: 'req_2' })))).toMatchObject({ status: 503, code: 'recorder_unavailable' });
  });

  it('approval workflow cannot start: 503, and the approval is cancelled with the reason', async () => {
    const world = lifecycleWorld();
    world.workflows.faults.fail('startApproval');
    expect(await refusal(world.gate.authorize(patch(world)))).toMatchObject({ status: 503, code: 'approvals_unavailable' });
    const [approval] = world.state.approvals.values();
    expect(approval).toMatchObject({ status: 'cancelled', cancelReason: 'the approval workflow could not be started' });
  });

  it('state store down: the error is thrown, nothing passes', async () => {
    const world = lifecycleWorld();
    await approved(world, patch(world));
    world.state.faults.fail('getApprovalIdForFingerprint');
    await expect(world.gate.authorize(patch(world, { requestId: 'req_2' }))).rejects.toThrow('getApprovalIdForFingerprint unavailable');
    world.state.faults.clear();
    world.state.faults.fail('updateApproval');
    await expect(world.gate.authorize(patch(world, { requestId: 'req_3' }))).rejects.toThrow('updateApproval unavailable');
  });
});
