// The things Airlock keeps state about. Times are epoch milliseconds.
import type { Policy } from './policy.ts';
import type { WindowActivity } from './preview.ts';

/** A non-human identity: one AI agent. */
export interface Agent {
  id: string;
  name: string;
  status: 'enabled' | 'disabled';
  /** scrypt hash of the agent key (never the key itself). */
  secretHash?: string;
  /** IAM principal ARN for agents that authenticate with SigV4 on AWS. */
  principalArn?: string;
  createdAt: number;
  disabledAt?: number;
  /** Grants created before this instant are void (kill switch). */
  revokedBefore?: number;
}

export type ConnectionCredential = { type: 'token'; token: string } | { type: 'eks'; clusterName: string; region: string; roleArn: string };

/** A cluster agents may reach, with the policy that scopes them. */
export interface Connection {
  name: string;
  server: string;
  /** PEM bundle the upstream's serving certificate must chain to. */
  caPem: string;
  credential: ConnectionCredential;
  policy: Policy;
  policyVersion: string;
  createdAt: number;
  updatedAt: number;
  /** Grants created before this instant are void (kill switch). */
  revokedBefore?: number;
}

export type GrantStatus = 'pending' | 'active' | 'denied' | 'expired' | 'revoked';

/** A just-in-time access window for one agent on one connection. */
export interface Grant {
  id: string;
  agentId: string;
  agentName: string;
  connection: string;
  status: GrantStatus;
  reason: string;
  ticket?: string;
  durationSeconds: number;
  requestedAt: number;
  activatedAt?: number;
  expiresAt?: number;
  endedAt?: number;
  endReason?: string;
  approvalId?: string;
  executionArn?: string;
  policyVersion: string;
}

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'consumed' | 'cancelled';

export interface ApprovalDecision {
  approver: string;
  decision: 'approve' | 'deny';
  at: number;
}

/** A human decision on a window or on one exact request. */
export interface Approval {
  id: string;
  kind: 'window' | 'request' | 'plan';
  status: ApprovalStatus;
  agentId: string;
  agentName: string;
  connection: string;
  /** What is asked for, in words an approver reads. */
  summary: string;
  reason?: string;
  ticket?: string;
  /** The policy rule that asked for approval. */
  rule: string;
  approvers: string[];
  minApprovals: number;
  decisions: ApprovalDecision[];
  /** Approvers already emailed (so a resumed workflow does not email twice). */
  notified: string[];
  createdAt: number;
  /** Pending: the decision deadline. Approved: the deadline for using it (decidedAt + timeoutSeconds). */
  expiresAt: number;
  /** The policy's approvalTimeout at the time of the request. */
  timeoutSeconds: number;
  /** request approvals: fingerprint of the exact request */
  fingerprint?: string;
  /** request approvals: the request line, for the approver */
  request?: { method: string; path: string; query: string; bodySha256: string; mediaType?: string; bodyPreview?: string };
  /** plan approvals: the plan and the exact changes it approves (a copy, so the page shows what is bound). */
  plan?: { id: string; command: string; changes: PlanChange[]; /** The window's activity when the plan closed, shown once for all its changes. */ window?: WindowActivity };
  /**
   * request approvals: what the request would do (core/preview.ts), worked out when it was held.
   * The whole preview is in the transcript store under `key` (an approval item stays well under
   * DynamoDB's 400 KB); `problems` (non-empty: it cannot be approved) and the email's `lines` are here.
   */
  preview?: { key?: string; problems: string[]; lines: string[] };
  /**
   * window approvals: the grant it activates. request approvals: the window it
   * was asked in; it can be spent only by a request of that same window.
   */
  grantId?: string;
  executionArn?: string;
  taskToken?: string;
  decidedAt?: number;
  consumedAt?: number;
  consumedBy?: string;
  /** Set with status `cancelled`: when, and why (revoke, disable, the window's end), in words an approver reads. */
  cancelledAt?: number;
  cancelReason?: string;
  policyVersion: string;
}

/**
 * One mutating request seen under `airlock plan`: forwarded with dryRun=All
 * (nothing changed) and bound by its fingerprint (core/approvals.ts, the query
 * without dryRun) so that `airlock apply` can send exactly it, once.
 */
export interface PlanChange {
  fingerprint: string;
  method: string;
  path: string;
  /** The canonical query, without dryRun. */
  query: string;
  /** In words an approver reads: "POST configmaps in default (create)". */
  summary: string;
  bodySha256: string;
  mediaType?: string;
  /** The API server's answer to the dry run (its object is in the preview, diffed against the live one). */
  dryRun: { status: number };
  /**
   * What it would do (core/preview.ts), as for a held request: the whole preview is in the transcript
   * store under `key`; `problems` non-empty (or no preview) means the approver cannot see it, and a
   * plan with such a change the policy holds cannot be approved.
   */
  preview?: { key?: string; problems: string[]; lines: string[] };
  /** Whether the policy held it (needs this approval); a change the policy allows passes without one. */
  held?: boolean;
  /** The dry-run request's record. */
  requestId: string;
  at: number;
}

/**
 * open: `airlock plan` is collecting; closed: its approval is pending or
 * approved; applying: `airlock apply` has spent the approval and its changes
 * pass once each until expiresAt; cancelled: kill switch, window end, denial.
 */
export type PlanStatus = 'open' | 'closed' | 'applying' | 'cancelled';

export interface Plan {
  id: string;
  agentId: string;
  agentName: string;
  connection: string;
  /** The window it was made in: only that window's tokens plan or apply it. */
  grantId: string;
  status: PlanStatus;
  reason: string;
  ticket?: string;
  /** The command the agent ran, for the approver (core/redaction.ts redactCommandLine). */
  command: string;
  changes: PlanChange[];
  createdAt: number;
  closedAt?: number;
  approvalId?: string;
  /** applying: the end of the approval's use deadline; no change passes after it. */
  expiresAt?: number;
  appliedAt?: number;
  cancelledAt?: number;
  cancelReason?: string;
  policyVersion: string;
}

/**
 * An MCP task (the Tasks extension): a tool call that was held for approval and
 * runs once the approval is decided, when the agent next polls it. `working`
 * until then; `completed` holds the tool's result (a refusal is a completed
 * tool error, as MCP says); `cancelled` by the agent. Its arguments and result
 * are sealed (JWE, A256GCM) with a key that only the task id the agent holds
 * carries (lambdas/mcp/tasks.ts): Airlock's stores never hold them readable.
 */
export type McpTaskStatus = 'working' | 'completed' | 'failed' | 'cancelled';

export interface McpTask {
  /** The public part of the task id (`tsk_...`); the key part is never stored. */
  id: string;
  agentId: string;
  tool: string;
  /** The call it continues: the records of its run name the same call. */
  callId: string;
  connection?: string;
  /** The approval it waits for (a run held again names the new one). */
  approvalId: string;
  status: McpTaskStatus;
  statusMessage?: string;
  sealedArguments: string;
  sealedResult?: string;
  /** A run claims the task until this time (0: unclaimed), so two polls never run it twice. */
  runLeaseUntil: number;
  runId?: string;
  createdAt: number;
  updatedAt: number;
  /** After this the task is gone (its approval's use deadline and an hour to read the result). */
  expiresAt: number;
}

/** `pending`: written ahead, checks still running (a record left pending means the gateway stopped mid-request). */
export type Decision = 'pending' | 'allowed' | 'denied' | 'held' | 'error';

/**
 * How a forwarded response ended: the API server finished it ('complete'), the
 * agent hung up, the upstream broke, or Airlock ended it because the window
 * ended, the access was revoked, the agent was disabled, or the state could not
 * be read to check any of that (fail closed).
 */
export type StreamEnd = 'complete' | 'client-closed' | 'upstream-closed' | 'window-ended' | 'revoked' | 'agent-disabled' | 'state-unavailable';

/** One request through the proxy, written before anything is forwarded. */
export interface RequestRecord {
  id: string;
  time: number;
  agentId: string;
  agent: string;
  connection: string;
  method: string;
  /** Whole: exactly the path forwarded (the parser refuses longer than MAX_PATH_LENGTH). */
  path: string;
  /** Whole: exactly the query forwarded, after Airlock's own changes (timeoutSeconds capped to the window, a log read's default bounds). */
  query: string;
  /** A log read Airlock bounded with its defaults: what it added, e.g. "limitBytes=262144, tailLines=1000" (core/log-bounds.ts). */
  logBound?: string;
  verb: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  decision: Decision;
  /** Why: the rule, the refusal code, the approval. */
  reason: string;
  grantId?: string;
  approvalId?: string;
  /** A request made under `airlock plan` (sent as a dry run) or `airlock apply`. */
  planId?: string;
  policyVersion?: string;
  phase: 'started' | 'complete' | 'incomplete';
  status?: number;
  requestBytes?: number;
  responseBytes?: number;
  durationMs?: number;
  transcriptKey?: string;
  /** Set when the transcript could not be written after the request was forwarded. */
  transcriptError?: string;
  /** The transcript, gzip+base64, kept here while S3 was unavailable (moved by `airlock audit repair`). */
  transcriptSpool?: string;
  userAgent?: string;
  sourceIp?: string;
  /** Made for an MCP tool call (/mcp): the tool and the call's id (one call may make several requests). */
  mcpTool?: string;
  mcpCallId?: string;
  /** The request headers sent to the cluster, whole (Authorization and Audit-ID aside). */
  forwardedHeaders?: Record<string, string>;
  /** How the forwarded response ended, and why (absent on refusals: nothing was streamed). */
  streamEnd?: StreamEnd;
  streamEndReason?: string;
  /** 'sha256:' + hex of the transcript as written (core/audit-chain.ts). */
  transcriptSha256?: string;
  /** Where the completed record sits in its partition's hash chain (core/audit-chain.ts). */
  chain?: ChainLink;
}

/**
 * A record's place in the hash chain of its partition (connection, agent, UTC day):
 * `seq` counts from 1 with no gaps, `hash` covers `prev` (the previous record's hash)
 * and the record's audited fields, its transcript's SHA-256 among them.
 */
/** The newest link of a chain partition, kept beside the records. */
export interface ChainHead {
  partition: string;
  seq: number;
  hash: string;
  /** When it last moved. */
  time: number;
}

export interface ChainLink {
  partition: string;
  seq: number;
  prev: string;
  hash: string;
}

/** A state change worth an audit line (window requested, approved by X, expired, ...). */
export interface AuditEvent {
  id: string;
  time: number;
  type: string;
  agent?: string;
  agentId?: string;
  connection?: string;
  subject: string;
  actor: string;
  detail?: Record<string, string | number | boolean>;
}
