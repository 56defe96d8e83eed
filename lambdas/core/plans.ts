// Plan, approve once, apply (`airlock plan` / `airlock apply`): what a planned
// change is bound to. A change is the exact request — the approval
// fingerprint (core/approvals.ts) over agent, connection, method, path, query,
// body hash, media type and policy version — with dryRun left out of the query:
// the plan sends it with dryRun=All, the apply without, and both are the same
// change. The transitions are the lifecycle's (core/lifecycle.ts).
import { mediaType, requestFingerprint } from './approvals.ts';

/**
 * A plan holds at most this many changes: the plan and its approval are one
 * state item each (DynamoDB: 400 KB), and each change carries the email's
 * lines of its preview (the whole preview is in the transcript store).
 * A bigger change set is several plans.
 */
export const MAX_PLAN_CHANGES = 50;
/** The email's lines of one change's preview kept on the plan item: at most this many, each at most PLAN_PREVIEW_LINE_CHARS. */
export const PLAN_PREVIEW_LINES = 12;
export const PLAN_PREVIEW_LINE_CHARS = 200;

/** Verbs that change nothing: under a plan they pass as usual (the policy still applies). */
const READ_VERBS = new Set(['get', 'list', 'watch']);

export function isMutatingVerb(verb: string): boolean {
  return !READ_VERBS.has(verb);
}

/** The canonical query less any dryRun parameter: what a change is bound to. */
export function withoutDryRun(query: string): string {
  return query
    .split('&')
    .filter((part) => part !== '' && !/^dryRun(=|$)/.test(part))
    .join('&');
}

/** The query a planned request is forwarded with: the API server validates and admits it, and persists nothing. */
export function withDryRun(query: string): string {
  const rest = withoutDryRun(query);
  return rest ? `${rest}&dryRun=All` : 'dryRun=All';
}

export function planChangeFingerprint(input: {
  agentId: string;
  connection: string;
  method: string;
  path: string;
  query: string;
  bodySha256: string;
  contentType: string | undefined;
  policyVersion: string;
}): string {
  return requestFingerprint({
    agentId: input.agentId,
    connection: input.connection,
    method: input.method,
    path: input.path,
    query: withoutDryRun(input.query),
    bodySha256: input.bodySha256,
    mediaType: mediaType(input.contentType),
    policyVersion: input.policyVersion,
  });
}
