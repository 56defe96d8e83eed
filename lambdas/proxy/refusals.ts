// What a refusal looks like: to the agent, a Kubernetes Status (so kubectl
// prints it like the API server's own errors); in the record, a decision and
// a reason.
import type { Decision } from '../core/model.ts';
import { kubernetesStatus, type AirlockError } from '../core/status.ts';

/** 'error' is for the gateway or a dependency failing; a refusal by design (403, 501 interactive) is 'denied'; an approval to wait for is 'held'. */
export function recordedDecision(refusal: AirlockError): Decision {
  if (refusal.code === 'approval_required') return 'held';
  return [500, 502, 503, 504].includes(refusal.status) ? 'error' : 'denied';
}

/** The policy's own reason for a policy refusal (the rule that denied it); the code and message for any other. */
export function recordedReason(refusal: AirlockError): string {
  const policyReason = refusal.details?.policyReason;
  if (refusal.code === 'forbidden_by_policy' && typeof policyReason === 'string') return policyReason;
  return `${refusal.code}: ${refusal.message}`;
}

export function statusResponse(error: AirlockError, requestId: string): { statusCode: number; headers: Record<string, string>; body: string } {
  const status = kubernetesStatus(error);
  return {
    statusCode: error.status,
    // The refusal also as a Warning: client-go and kubectl print Warning headers even where a client drops the
    // Status body (WebSocket exec in client-node and Python, Helm without --debug).
    headers: { 'content-type': 'application/json', 'x-airlock-request-id': requestId, 'cache-control': 'no-store', warning: warningHeader(status.message) },
    body: JSON.stringify(status),
  };
}

/** RFC 7234 warn-code 299 ("miscellaneous persistent warning"), as the API server sends its own: printable ASCII, quoted. */
export function warningHeader(message: string): string {
  const text = message
    .slice(0, 1024)
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/["\\]/g, (character) => `\\${character}`);
  return `299 - "${text}"`;
}
