// What the request path knows after each stage. Every stage takes the context
// of the one before and returns a wider one; `record` is always the request's
// record as far as it is known, so a refusal at any point records exactly what
// was learnt before it (refuse.ts).
//
// A new stage (plan matching, MCP, ...) is a file here: a function from the
// context it needs to the one it adds (or to void, for a check that only
// refuses), called in its place in Gateway.handle; its context joins `Known`.
import type { IncomingMessage } from 'node:http';
import type { Agent, Connection, Grant, RequestRecord } from '../../core/model.ts';
import type { KubeRequest } from '../../core/kube-request.ts';
import type { PolicyDecision } from '../../core/policy.ts';
import type { SelfReview } from '../../core/self-reviews.ts';
import type { TokenClaims } from '../../core/tokens.ts';
import type { Plan } from '../../core/model.ts';
import type { LogReadLimits } from '../../core/log-bounds.ts';
// The gateway's public types (what callers pass and get) live in gateway.ts; these are the path's own.
import type { GatewayOptions, ProxyRequest } from '../gateway.ts';

/** The options with every default filled in: what each stage is given beside its context. */
export type ResolvedOptions = GatewayOptions &
  Required<Pick<GatewayOptions, 'now' | 'maxRequestBodyBytes' | 'transcriptCaptureBytes' | 'streamRecheckMs' | 'streamRecheckTimeoutMs' | 'execMaxOutputBytes'>> & { logReadLimits: LogReadLimits };

/** receive: an id and a clock for the request; nothing checked yet. */
export interface Received {
  request: ProxyRequest;
  record: RequestRecord;
}

/** authenticate: the token is valid for this connection. */
export interface Authenticated extends Received {
  claims: TokenClaims;
}

/** parse: what the request asks of the API server. */
export interface Parsed extends Authenticated {
  kube: KubeRequest;
}

/** selectHeaders: the request headers that will reach the cluster, each whole. */
export interface Headed extends Parsed {
  forwardedHeaders: Record<string, string>;
}

/** How the write-ahead record's first write ended. */
export type RecordBegun = { written: true } | { written: false; error: unknown };

/** beginRecord: the write-ahead record is on its way (it settles beside the state read). */
export interface Begun extends Headed {
  begun: Promise<RecordBegun>;
}

/** readState: agent enabled, window open, read now; and the query with the window's deadline. */
export interface Admitted extends Begun {
  agent: Agent;
  connection: Connection;
  grant: Grant;
  windowEndsAt: number;
  /**
   * The query to forward: timeoutSeconds / timeout capped to the window (core/windows.ts), and a
   * log read's default bounds added (core/log-bounds.ts; `logBound` says which).
   */
  bound: { query: string; capped: boolean; logBound?: string };
}

/** scope: the policy allows the request and every effect, or asks for approval. */
export interface Scoped extends Admitted {
  decision: PolicyDecision;
  /** can-i / whoami: answered for the agent (answerSelfReview), not checked as a create. */
  selfReview?: SelfReview;
}

/** approve: a risky request spent its one-time approval. */
export interface Approved extends Scoped {
  approvalId: string | undefined;
}

/** plan: the request carries a plan token (stages/plan.ts); it passes as planned, not through the approval gate. */
export interface Planned extends Approved {
  planned: {
    plan: Plan;
    mode: 'plan' | 'apply';
    /** Mutating requests only: the change it is (the query without dryRun). */
    fingerprint: string | undefined;
    bodySha256?: string;
    /** plan mode: the body the agent sent (a DELETE's is forwarded with dryRun added). */
    body?: Buffer;
  };
}

/** awaitRecord: the record is written, with the query as forwarded; it says "allowed". */
export interface Recorded extends Approved {
  record: RequestRecord & { decision: 'allowed' };
}

/** forward: the cluster answered (its response head has arrived). */
export interface Forwarded extends Recorded {
  upstream: IncomingMessage;
}

/** Any point the path can stop at. */
export type Known = Received | Authenticated | Parsed | Headed | Begun | Admitted | Scoped | Approved | Planned | Recorded | Forwarded;
