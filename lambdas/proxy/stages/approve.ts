// A request the policy marks risky passes only with a one-time approval of this
// exact request (approval-gate.ts); without one the gate holds it and throws a
// 403 naming the approval to wait for (recorded as held). A gateway without
// approvals configured refuses such requests (403) rather than let them pass.
import { createHash } from 'node:crypto';
import { describeKubeRequest } from '../../core/kube-request.ts';
import { AirlockError } from '../../core/status.ts';
import type { Approved, ResolvedOptions, Scoped } from './context.ts';

export async function approve(scoped: Scoped, options: ResolvedOptions): Promise<Approved> {
  const { request, kube, decision, agent, connection, grant, record } = scoped;
  if (decision.effect !== 'approve') return { ...scoped, approvalId: undefined };
  if (!options.approvals) {
    throw new AirlockError(403, 'approval_required', `${describeKubeRequest(kube)} needs a human approval (${decision.reason}), and approvals are not configured on this gateway`);
  }
  const approvalId = await options.approvals.authorize({
    requestId: record.id,
    agent,
    connection,
    grant,
    kube,
    method: request.method,
    body: request.body,
    bodySha256: createHash('sha256').update(request.body).digest('hex'),
    contentType: request.headers['content-type']?.[0],
    decision,
  });
  return { ...scoped, approvalId, record: { ...record, approvalId } };
}
