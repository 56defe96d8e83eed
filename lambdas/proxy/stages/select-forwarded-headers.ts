// The request headers that may reach the cluster, each whole. Everything else —
// Authorization, Impersonate-*, X-Remote-*, cookies — is dropped; a value longer
// than the record can hold is refused (431), never cut.
import { MAX_HEADER_VALUE_LENGTH } from '../../core/kube-request.ts';
import { selfReviewOf } from '../../core/self-reviews.ts';
import { AirlockError } from '../../core/status.ts';
import type { Headed, Parsed } from './context.ts';

const FORWARDED_REQUEST_HEADERS = ['accept', 'content-type', 'user-agent', 'kubectl-command', 'kubectl-session'];

export function selectForwardedHeaders(parsed: Parsed): Headed {
  const forwardedHeaders: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = parsed.request.headers[name]?.[0];
    if (value === undefined) continue;
    if (value.length > MAX_HEADER_VALUE_LENGTH) {
      throw new AirlockError(431, 'header_too_long', `the ${name} header is ${value.length} characters long; the limit is ${MAX_HEADER_VALUE_LENGTH}, so nothing was forwarded`);
    }
    forwardedHeaders[name] = value;
  }
  // Airlock reads the cluster's answer to a rules review (to keep only what the policy allows): it asks for JSON.
  if (selfReviewOf(parsed.kube) === 'rules') forwardedHeaders.accept = 'application/json';
  return { ...parsed, forwardedHeaders, record: { ...parsed.record, forwardedHeaders } };
}
