// In-memory implementations of the core's ports, for fast unit tests of the
// gateway, the approval gate and the window lifecycle: no emulator, no cluster.
// They keep the contracts the DynamoDB/S3 adapters keep (conditional writes,
// newest-first listings, write-once transcripts, the same domain errors), and
// every method can be made to fail on demand, so each fail-closed row can be
// driven in milliseconds.
import type { Agent, Approval, AuditEvent, ChainHead, Connection, Grant, GrantStatus, McpTask, McpTaskStatus, Plan, PlanChange, PlanStatus, RequestRecord } from '../../lambdas/core/model.ts';
import type { Log, Notifier, Page, ProxyContext, RecordQuery, RecordStore, StateStore, TranscriptStore, Workflows } from '../../lambdas/core/ports.ts';
import { AlreadyExistsError, DependencyUnavailableError, InvalidCursorError, NotFoundError } from '../../lambdas/core/errors.ts';

/** Makes chosen methods of a port throw (or hang) until cleared: `faults.fail('begin')`. */
export class Faults<Method extends string> {
  private readonly failing = new Map<Method, () => Promise<never>>();
  private readonly dependency: DependencyUnavailableError['dependency'];

  constructor(dependency: DependencyUnavailableError['dependency']) {
    this.dependency = dependency;
  }

  /** By default the error an adapter throws when its service is down. */
  fail(method: Method, error: Error = new DependencyUnavailableError(this.dependency, `${method} unavailable`)): void {
    this.failing.set(method, () => Promise.reject(error));
  }

  /** Never answers (a hung dependency). */
  hang(method: Method): void {
    this.failing.set(method, () => new Promise<never>(() => undefined));
  }

  clear(method?: Method): void {
    if (method) this.failing.delete(method);
    else this.failing.clear();
  }

  /** Rejects (or hangs) when `method` is made to fail. */
  async check(method: Method): Promise<void> {
    const fault = this.failing.get(method);
    if (fault) await fault();
  }
}

const copy = <T>(value: T): T => structuredClone(value);

export class MemoryStateStore implements StateStore {
  readonly faults = new Faults<keyof StateStore>('state store');
  readonly agents = new Map<string, Agent>();
  readonly connections = new Map<string, Connection>();
  readonly grants = new Map<string, Grant>();
  readonly approvals = new Map<string, Approval>();
  private readonly fingerprints = new Map<string, string>();
  readonly plans = new Map<string, Plan>();
  readonly mcpTasks = new Map<string, McpTask>();
  /** `${planId} ${fingerprint}` -> the request that spent it. */
  readonly spent = new Map<string, string>();

  async createAgent(agent: Agent): Promise<void> {
    await this.faults.check('createAgent');
    if ([...this.agents.values()].some((existing) => existing.name === agent.name)) throw new AlreadyExistsError('agent name', agent.name);
    if (agent.principalArn && [...this.agents.values()].some((existing) => existing.principalArn === agent.principalArn)) {
      throw new AlreadyExistsError('principal', agent.principalArn);
    }
    if (this.agents.has(agent.id)) throw new AlreadyExistsError('agent', agent.id);
    this.agents.set(agent.id, copy(agent));
  }

  async getAgent(id: string): Promise<Agent | undefined> {
    await this.faults.check('getAgent');
    return copy(this.agents.get(id));
  }

  async getAgentByName(name: string): Promise<Agent | undefined> {
    await this.faults.check('getAgentByName');
    return copy([...this.agents.values()].find((agent) => agent.name === name));
  }

  async getAgentByPrincipal(principalArn: string): Promise<Agent | undefined> {
    await this.faults.check('getAgentByPrincipal');
    return copy([...this.agents.values()].find((agent) => agent.principalArn === principalArn));
  }

  async listAgents(): Promise<Agent[]> {
    await this.faults.check('listAgents');
    return copy([...this.agents.values()].sort((a, b) => a.name.localeCompare(b.name)));
  }

  async disableAgent(id: string, at: number): Promise<Agent> {
    await this.faults.check('disableAgent');
    const agent = this.agents.get(id);
    if (!agent) throw new NotFoundError('agent', id);
    Object.assign(agent, { status: 'disabled', disabledAt: at, revokedBefore: at });
    return copy(agent);
  }

  async enableAgent(id: string): Promise<Agent | undefined> {
    await this.faults.check('enableAgent');
    const agent = this.agents.get(id);
    if (!agent || agent.status !== 'disabled') return undefined;
    agent.status = 'enabled';
    return copy(agent);
  }

  async setAgentRevokedBefore(id: string, at: number): Promise<void> {
    await this.faults.check('setAgentRevokedBefore');
    const agent = this.agents.get(id);
    if (!agent) throw new NotFoundError('agent', id);
    agent.revokedBefore = at;
  }

  async putConnection(connection: Connection, mode: 'create' | 'replace'): Promise<void> {
    await this.faults.check('putConnection');
    if (mode === 'create' && this.connections.has(connection.name)) throw new AlreadyExistsError('connection', connection.name);
    this.connections.set(connection.name, copy(connection));
  }

  async getConnection(name: string): Promise<Connection | undefined> {
    await this.faults.check('getConnection');
    return copy(this.connections.get(name));
  }

  async listConnections(): Promise<Connection[]> {
    await this.faults.check('listConnections');
    return copy([...this.connections.values()].sort((a, b) => a.name.localeCompare(b.name)));
  }

  async setConnectionRevokedBefore(name: string, at: number): Promise<void> {
    await this.faults.check('setConnectionRevokedBefore');
    const connection = this.connections.get(name);
    if (!connection) throw new NotFoundError('connection', name);
    connection.revokedBefore = at;
  }

  async createGrant(grant: Grant): Promise<void> {
    await this.faults.check('createGrant');
    if (this.grants.has(grant.id)) throw new AlreadyExistsError('grant', grant.id);
    this.grants.set(grant.id, copy(grant));
  }

  async getGrant(id: string): Promise<Grant | undefined> {
    await this.faults.check('getGrant');
    return copy(this.grants.get(id));
  }

  async transitionGrant(id: string, from: GrantStatus[], changes: Partial<Grant>): Promise<Grant | undefined> {
    await this.faults.check('transitionGrant');
    const grant = this.grants.get(id);
    if (!grant || !from.includes(grant.status)) return undefined;
    Object.assign(grant, definedOnly(changes));
    return copy(grant);
  }

  async listGrants(filter: { agentId?: string; connection?: string }): Promise<Grant[]> {
    await this.faults.check('listGrants');
    return copy(
      [...this.grants.values()]
        .filter((grant) => (!filter.agentId || grant.agentId === filter.agentId) && (!filter.connection || grant.connection === filter.connection))
        .sort((a, b) => b.requestedAt - a.requestedAt),
    );
  }

  async getProxyContext(agentId: string, connection: string, grantId: string): Promise<ProxyContext> {
    await this.faults.check('getProxyContext');
    return copy({ agent: this.agents.get(agentId), connection: this.connections.get(connection), grant: this.grants.get(grantId) });
  }

  async createApproval(approval: Approval): Promise<void> {
    await this.faults.check('createApproval');
    if (this.approvals.has(approval.id)) throw new AlreadyExistsError('approval', approval.id);
    this.approvals.set(approval.id, copy(approval));
  }

  async getApproval(id: string): Promise<Approval | undefined> {
    await this.faults.check('getApproval');
    return copy(this.approvals.get(id));
  }

  async updateApproval(id: string, expect: { status: Approval['status'][]; decisionsCount?: number }, changes: Partial<Approval>): Promise<Approval | undefined> {
    await this.faults.check('updateApproval');
    const approval = this.approvals.get(id);
    if (!approval || !expect.status.includes(approval.status)) return undefined;
    if (expect.decisionsCount !== undefined && (approval.decisions?.length ?? 0) !== expect.decisionsCount) return undefined;
    Object.assign(approval, definedOnly(changes));
    return copy(approval);
  }

  async getApprovalIdForFingerprint(fingerprint: string): Promise<string | undefined> {
    await this.faults.check('getApprovalIdForFingerprint');
    return this.fingerprints.get(fingerprint);
  }

  async bindFingerprint(fingerprint: string, approvalId: string, previousApprovalId: string | undefined, _expiresAt: number): Promise<boolean> {
    await this.faults.check('bindFingerprint');
    if (this.fingerprints.get(fingerprint) !== previousApprovalId) return false;
    this.fingerprints.set(fingerprint, approvalId);
    return true;
  }

  async listApprovals(filter: { agentId?: string; connection?: string; status?: Approval['status'] }): Promise<Approval[]> {
    await this.faults.check('listApprovals');
    // Like the DynamoDB indexes: without an agent or connection there is nothing to list.
    if (!filter.agentId && !filter.connection) return [];
    return copy(
      [...this.approvals.values()]
        .filter(
          (approval) =>
            (!filter.agentId || approval.agentId === filter.agentId) && (!filter.connection || approval.connection === filter.connection) && (!filter.status || approval.status === filter.status),
        )
        .sort((a, b) => b.createdAt - a.createdAt),
    );
  }

  async createPlan(plan: Plan): Promise<void> {
    await this.faults.check('createPlan');
    if (this.plans.has(plan.id)) throw new AlreadyExistsError('plan', plan.id);
    this.plans.set(plan.id, copy(plan));
  }

  async getPlan(id: string): Promise<Plan | undefined> {
    await this.faults.check('getPlan');
    return copy(this.plans.get(id));
  }

  async updatePlan(id: string, from: PlanStatus[], changes: Partial<Plan>): Promise<Plan | undefined> {
    await this.faults.check('updatePlan');
    const plan = this.plans.get(id);
    if (!plan || !from.includes(plan.status)) return undefined;
    Object.assign(plan, definedOnly(changes));
    return copy(plan);
  }

  async addPlanChange(id: string, change: PlanChange, max: number): Promise<boolean> {
    await this.faults.check('addPlanChange');
    const plan = this.plans.get(id);
    if (!plan || plan.status !== 'open' || plan.changes.length >= max) return false;
    plan.changes.push(copy(change));
    return true;
  }

  async spendPlanChange(id: string, fingerprint: string, requestId: string): Promise<boolean> {
    await this.faults.check('spendPlanChange');
    const key = `${id} ${fingerprint}`;
    if (this.spent.has(key)) return false;
    this.spent.set(key, requestId);
    return true;
  }

  async listPlans(filter: { agentId?: string; connection?: string }): Promise<Plan[]> {
    await this.faults.check('listPlans');
    if (!filter.agentId && !filter.connection) return [];
    return copy(
      [...this.plans.values()]
        .filter((plan) => (!filter.agentId || plan.agentId === filter.agentId) && (!filter.connection || plan.connection === filter.connection))
        .sort((a, b) => b.createdAt - a.createdAt),
    );
  }

  async createMcpTask(task: McpTask): Promise<void> {
    await this.faults.check('createMcpTask');
    if (this.mcpTasks.has(task.id)) throw new AlreadyExistsError('MCP task', task.id);
    this.mcpTasks.set(task.id, copy(task));
  }

  async getMcpTask(id: string): Promise<McpTask | undefined> {
    await this.faults.check('getMcpTask');
    return copy(this.mcpTasks.get(id));
  }

  async updateMcpTask(id: string, expect: { status: McpTaskStatus[]; leaseFreeAt?: number; runId?: string }, changes: Partial<McpTask>): Promise<McpTask | undefined> {
    await this.faults.check('updateMcpTask');
    const task = this.mcpTasks.get(id);
    if (!task || !expect.status.includes(task.status)) return undefined;
    if (expect.leaseFreeAt !== undefined && !(task.runLeaseUntil < expect.leaseFreeAt)) return undefined;
    if (expect.runId !== undefined && task.runId !== expect.runId) return undefined;
    Object.assign(task, definedOnly(changes));
    return copy(task);
  }
}

export class MemoryRecordStore implements RecordStore {
  readonly faults = new Faults<keyof RecordStore>('record store');
  readonly records = new Map<string, RequestRecord>();
  readonly events: AuditEvent[] = [];

  async begin(record: RequestRecord): Promise<void> {
    await this.faults.check('begin');
    if (this.records.has(record.id)) throw new AlreadyExistsError('request record', record.id);
    this.records.set(record.id, copy(record));
  }

  async complete(id: string, changes: Partial<RequestRecord>): Promise<void> {
    await this.faults.check('complete');
    const record = this.records.get(id);
    if (!record) throw new NotFoundError('request record', id);
    Object.assign(record, definedOnly(changes));
  }

  async get(id: string): Promise<RequestRecord | undefined> {
    await this.faults.check('get');
    return copy(this.records.get(id));
  }

  async query(query: RecordQuery): Promise<Page<RequestRecord>> {
    await this.faults.check('query');
    return page([...this.records.values()], query);
  }

  async putEvent(event: AuditEvent): Promise<void> {
    await this.faults.check('putEvent');
    if (this.events.some((existing) => existing.id === event.id)) throw new AlreadyExistsError('audit event', event.id);
    this.events.push(copy(event));
  }

  async queryEvents(query: RecordQuery): Promise<Page<AuditEvent>> {
    await this.faults.check('queryEvents');
    return page(this.events, query);
  }

  async listSpooled(limit: number): Promise<RequestRecord[]> {
    await this.faults.check('listSpooled');
    return copy([...this.records.values()].filter((record) => record.transcriptSpool !== undefined).slice(0, limit));
  }

  readonly heads = new Map<string, ChainHead>();

  async chainHead(partition: string): Promise<ChainHead | undefined> {
    await this.faults.check('chainHead');
    return copy(this.heads.get(partition));
  }

  async advanceChain(partition: string, from: ChainHead | undefined, to: ChainHead): Promise<boolean> {
    await this.faults.check('advanceChain');
    const current = this.heads.get(partition);
    if (current?.seq !== from?.seq || current?.hash !== from?.hash) return false;
    this.heads.set(partition, copy(to));
    return true;
  }

  async listChainHeads(since: number): Promise<ChainHead[]> {
    await this.faults.check('listChainHeads');
    return copy([...this.heads.values()].filter((head) => head.time >= since));
  }

  async markTranscriptStored(id: string): Promise<void> {
    await this.faults.check('markTranscriptStored');
    const record = this.records.get(id);
    if (!record || record.transcriptSpool === undefined) throw new NotFoundError('spooled transcript', id);
    delete record.transcriptSpool;
    delete record.transcriptError;
    record.phase = 'complete';
  }
}

/** Newest first; the cursor is the offset (opaque to callers, as DynamoDB's is). */
function page<T extends { time: number; agent?: string; connection?: string }>(items: T[], query: RecordQuery): Page<T> {
  const matching = items
    .filter((item) => (!query.agent || item.agent === query.agent) && (!query.connection || item.connection === query.connection) && item.time >= (query.since ?? 0))
    .sort((a, b) => b.time - a.time);
  const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000);
  const start = query.cursor ? Number.parseInt(Buffer.from(query.cursor, 'base64url').toString('utf8'), 10) : 0;
  if (!Number.isInteger(start) || start < 0) throw new InvalidCursorError();
  const slice = matching.slice(start, start + limit);
  const next = start + limit < matching.length ? Buffer.from(String(start + limit)).toString('base64url') : undefined;
  return { items: copy(slice), ...(next ? { cursor: next } : {}) };
}

/** Write-once, like the S3 adapter with If-None-Match: a second put of a key keeps the first and resolves. */
export class MemoryTranscriptStore implements TranscriptStore {
  readonly faults = new Faults<keyof TranscriptStore>('transcript store');
  readonly objects = new Map<string, string>();

  async put(key: string, body: string): Promise<void> {
    await this.faults.check('put');
    if (!this.objects.has(key)) this.objects.set(key, body);
  }

  async get(key: string): Promise<string | undefined> {
    await this.faults.check('get');
    return this.objects.get(key);
  }
}

/** Records what was started, stopped and resumed. */
export class MemoryWorkflows implements Workflows {
  readonly faults = new Faults<keyof Workflows>('workflows');
  readonly started: { kind: 'window' | 'approval'; id: string }[] = [];
  readonly stopped: { executionArn: string; cause: string }[] = [];
  readonly resumed: { taskToken: string; outcome: 'success' | 'failure'; detail: unknown }[] = [];

  async startWindow(grantId: string): Promise<string> {
    await this.faults.check('startWindow');
    this.started.push({ kind: 'window', id: grantId });
    return `execution:window:${grantId}`;
  }

  async startApproval(approvalId: string): Promise<string> {
    await this.faults.check('startApproval');
    this.started.push({ kind: 'approval', id: approvalId });
    return `execution:approval:${approvalId}`;
  }

  async stop(executionArn: string, cause: string): Promise<void> {
    await this.faults.check('stop');
    this.stopped.push({ executionArn, cause });
  }

  async sendSuccess(taskToken: string, output: Record<string, unknown>): Promise<void> {
    await this.faults.check('sendSuccess');
    this.resumed.push({ taskToken, outcome: 'success', detail: output });
  }

  async sendFailure(taskToken: string, error: string, cause: string): Promise<void> {
    await this.faults.check('sendFailure');
    this.resumed.push({ taskToken, outcome: 'failure', detail: { error, cause } });
  }
}

export class MemoryNotifier implements Notifier {
  readonly faults = new Faults<keyof Notifier>('notifier');
  readonly sent: { to: string; subject: string; text: string; attributes: Record<string, string> }[] = [];

  async toApprover(approver: string, subject: string, text: string, attributes: Record<string, string>): Promise<void> {
    await this.faults.check('toApprover');
    this.sent.push({ to: approver, subject, text, attributes });
  }

  async event(type: string, subject: string, text: string, attributes: Record<string, string>): Promise<void> {
    await this.faults.check('event');
    this.sent.push({ to: `event:${type}`, subject, text, attributes });
  }
}

/** Keeps what the core logs, to assert on (and to keep test output quiet). */
export class MemoryLog implements Log {
  readonly lines: { level: 'warn' | 'error'; message: string; fields: Record<string, unknown> }[] = [];

  warn(message: string, fields: Record<string, unknown>): void {
    this.lines.push({ level: 'warn', message, fields });
  }

  error(message: string, fields: Record<string, unknown>): void {
    this.lines.push({ level: 'error', message, fields });
  }
}

function definedOnly<T extends object>(changes: T): Partial<T> {
  return Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined)) as Partial<T>;
}
