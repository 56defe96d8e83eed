// Scope: the policy on the request and on everything it does — every verb the
// API server authorizes it as, and every effect it has (core/effects.ts):
// deny > approve > allow > default deny. The record of a denied request gives
// the policy's reason (carried in the refusal's details).
import { checksOf, sentAsYaml } from '../../core/effects.ts';
import { describeKubeRequest } from '../../core/kube-request.ts';
import { evaluateRequest } from '../../core/policy.ts';
import { selfReviewOf } from '../../core/self-reviews.ts';
import { AirlockError } from '../../core/status.ts';
import { loadYaml } from '../lazy.ts';
import type { Admitted, Scoped } from './context.ts';

export async function scope(admitted: Admitted): Promise<Scoped> {
  const { request, kube, connection } = admitted;
  // can-i and whoami ask what the agent may do: answered from the policy (answer-self-review.ts), never refused for asking.
  const selfReview = selfReviewOf(kube);
  if (selfReview) return { ...admitted, selfReview, decision: { effect: 'allow', ruleIndex: -1, reason: `${selfReview} self review, answered for the agent` } };
  const contentType = request.headers['content-type']?.[0];
  const parseYaml = request.body.length && sentAsYaml(contentType) ? (await loadYaml()).parse : undefined;
  const decision = evaluateRequest(connection.policy, checksOf(kube, { contentType, body: request.body, parseYaml }));
  if (decision.effect === 'deny') {
    throw new AirlockError(403, 'forbidden_by_policy', `${describeKubeRequest(kube)} is not allowed on "${connection.name}": ${decision.reason}`, { policyReason: decision.reason });
  }
  return { ...admitted, decision };
}
