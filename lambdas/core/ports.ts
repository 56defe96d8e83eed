// The small interfaces the core needs from the outside world. Adapters
// (DynamoDB, S3, Step Functions, SNS, STS) implement them; nothing here knows AWS.
import type { Agent, Approval, AuditEvent, ChainHead, Connection, Grant, GrantStatus, McpTask, McpTaskStatus, Plan, PlanChange, PlanStatus, RequestRecord } from './model.ts';

/** Where the core reports what it carries on without (Powertools' Logger on Lambda). */
export interface Log {
  warn(message: string, fields: Record<string, unknown>): void;
  error(message: string, fields: Record<string, unknown>): void;
}

export interface ProxyContext {
  agent: Agent | undefined;
  connection: Connection | undefined;
  grant: Grant | undefined;
}

/** Agents, connections, grants and approvals. Every state change is a conditional write. */
export interface StateStore {
  createAgent(agent: Agent): Promise<void>;
  getAgent(id: string): Promise<Agent | undefined>;
  getAgentByName(name: string): Promise<Agent | undefined>;
  getAgentByPrincipal(principalArn: string): Promise<Agent | undefined>;
  listAgents(): Promise<Agent[]>;
  /** Disables (and revokes) an agent; returns the updated agent. */
  disableAgent(id: string, at: number): Promise<Agent>;
  /** Enables a disabled agent again (its revokedBefore stays: windows from before stay void). Undefined when it was not disabled. */
  enableAgent(id: string): Promise<Agent | undefined>;
  setAgentRevokedBefore(id: string, at: number): Promise<void>;

  putConnection(connection: Connection, mode: 'create' | 'replace'): Promise<void>;
  getConnection(name: string): Promise<Connection | undefined>;
  listConnections(): Promise<Connection[]>;
  setConnectionRevokedBefore(name: string, at: number): Promise<void>;

  createGrant(grant: Grant): Promise<void>;
  getGrant(id: string): Promise<Grant | undefined>;
  /** Conditional transition: applies `changes` only if the grant is in one of `from`. Returns the new grant or undefined if the condition failed. */
  transitionGrant(id: string, from: GrantStatus[], changes: Partial<Grant>): Promise<Grant | undefined>;
  listGrants(filter: { agentId?: string; connection?: string }): Promise<Grant[]>;

  /** Agent, connection and grant in one read: the proxy's per-request state check. */
  getProxyContext(agentId: string, connection: string, grantId: string): Promise<ProxyContext>;

  createApproval(approval: Approval): Promise<void>;
  getApproval(id: string): Promise<Approval | undefined>;
  /** Conditional update guarded by the approval's current status (and optional extra checks). */
  updateApproval(id: string, expect: { status: Approval['status'][]; decisionsCount?: number }, changes: Partial<Approval>): Promise<Approval | undefined>;
  /** The approval currently bound to a request fingerprint, if any. */
  getApprovalIdForFingerprint(fingerprint: string): Promise<string | undefined>;
  bindFingerprint(fingerprint: string, approvalId: string, previousApprovalId: string | undefined, expiresAt: number): Promise<boolean>;
  /** Newest first, by agent or by connection (an index: may lag a just-created approval by a moment). */
  listApprovals(filter: { agentId?: string; connection?: string; status?: Approval['status'] }): Promise<Approval[]>;

  createPlan(plan: Plan): Promise<void>;
  getPlan(id: string): Promise<Plan | undefined>;
  /** Conditional on the plan's status; undefined when it was in none of `from`. */
  updatePlan(id: string, from: PlanStatus[], changes: Partial<Plan>): Promise<Plan | undefined>;
  /** Appends a change while the plan is open (and has fewer than `max`); false otherwise. */
  addPlanChange(id: string, change: PlanChange, max: number): Promise<boolean>;
  /** Marks one planned change spent by a request: true for exactly one caller (a conditional write). */
  spendPlanChange(id: string, fingerprint: string, requestId: string): Promise<boolean>;
  /** Newest first, by agent or by connection (an index: may lag a just-created plan). */
  listPlans(filter: { agentId?: string; connection?: string }): Promise<Plan[]>;

  createMcpTask(task: McpTask): Promise<void>;
  getMcpTask(id: string): Promise<McpTask | undefined>;
  /**
   * Conditional on the task's status being in `expect.status`, and, with `leaseFreeAt`, on no run
   * holding it at that time, or, with `runId`, on that run holding it. Undefined when a condition failed.
   */
  updateMcpTask(id: string, expect: { status: McpTaskStatus[]; leaseFreeAt?: number; runId?: string }, changes: Partial<McpTask>): Promise<McpTask | undefined>;
}

export interface RecordQuery {
  agent?: string;
  connection?: string;
  since?: number;
  limit?: number;
  /** Opaque continuation from a previous page. */
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  /** Present when more items match. */
  cursor?: string;
}

/** The write-ahead request log and the audit events. */
export interface RecordStore {
  /** Must succeed before anything is forwarded. */
  begin(record: RequestRecord): Promise<void>;
  complete(id: string, changes: Partial<RequestRecord>): Promise<void>;
  get(id: string): Promise<RequestRecord | undefined>;
  query(query: RecordQuery): Promise<Page<RequestRecord>>;
  putEvent(event: AuditEvent): Promise<void>;
  queryEvents(query: RecordQuery): Promise<Page<AuditEvent>>;
  /** Records whose transcript is spooled in the record (S3 was unavailable). */
  listSpooled(limit: number): Promise<RequestRecord[]>;
  /** The transcript reached S3: drop the spool and mark the record complete. */
  markTranscriptStored(id: string): Promise<void>;
  /** The newest link of a chain partition (core/audit-chain.ts); undefined before its first record. */
  chainHead(partition: string): Promise<ChainHead | undefined>;
  /** Moves the head from `from` to `to` only if it is still `from` (a conditional write); false when another record took that place. */
  advanceChain(partition: string, from: ChainHead | undefined, to: ChainHead): Promise<boolean>;
  /** The heads of the partitions of the days from `since` on. */
  listChainHeads(since: number): Promise<ChainHead[]>;
}

export interface TranscriptStore {
  /** Stores a transcript unless one is already stored under `key` (never replaced); resolves either way. */
  put(key: string, body: string): Promise<void>;
  get(key: string): Promise<string | undefined>;
}

/** The state machines (Step Functions). */
export interface Workflows {
  /** Starts the access-window workflow for a pending grant; returns the execution id. */
  startWindow(grantId: string): Promise<string>;
  /** Starts the approval workflow for one held request; returns the execution id. */
  startApproval(approvalId: string): Promise<string>;
  /** Stops an execution (revocation); a finished or unknown execution is not an error. */
  stop(executionArn: string, cause: string): Promise<void>;
  /** Resumes a workflow waiting on a human decision. */
  sendSuccess(taskToken: string, output: Record<string, unknown>): Promise<void>;
  sendFailure(taskToken: string, error: string, cause: string): Promise<void>;
}

/** Messages to people (SNS on AWS; the outbox locally). */
export interface Notifier {
  /** One message for one approver; delivery is routed by the `approver` attribute. */
  toApprover(approver: string, subject: string, text: string, attributes: Record<string, string>): Promise<void>;
  /** An event for anyone subscribed to Airlock's notifications (window ended, ...). */
  event(type: string, subject: string, text: string, attributes: Record<string, string>): Promise<void>;
}

/** Who a request to the cluster is for: the agent and the window it was admitted under. */
export interface AgentSession {
  agentId: string;
  agentName: string;
  grantId: string;
}

/** The credential the cluster accepts; it exists only inside the gateway. */
export interface UpstreamCredential {
  /** Value of the Authorization header sent upstream (for EKS 'Bearer k8s-aws-v1....'). */
  authorization: string;
  /** Epoch ms after which Airlock no longer uses this credential (for EKS one minute before it stops working). */
  expiresAt: number;
}

export interface EksConnectionTarget {
  connectionName: string;
  clusterName: string;
  region: string;
  roleArn: string;
}

/** Per-agent EKS credentials (STS AssumeRole + an EKS token). */
export interface EksCredentialSource {
  credentialFor(session: AgentSession, target: EksConnectionTarget): Promise<UpstreamCredential>;
}

/** One request Airlock itself sends to a connection's cluster (an approval preview's dry run or read). */
export interface ClusterCall {
  session: AgentSession;
  connection: Connection;
  method: string;
  path: string;
  query: string;
  contentType?: string;
  body: Buffer;
  /** What it addresses, for the record (as the gateway's parser says it). */
  target: { verb: string; apiGroup: string; resource: string; subresource: string; namespace: string; name: string };
  /** Why Airlock sends it, for the record: "approval preview of req_…: dry run". */
  purpose: string;
}

export interface ClusterAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** Reads the cluster for an approval preview; every call is recorded like a forwarded request. */
export interface ClusterReader {
  send(call: ClusterCall): Promise<ClusterAnswer>;
}
