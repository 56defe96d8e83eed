// The state table: agents, connections, grants (windows) and approvals.
// Conditional single-item writes only — no transactions, no TTL-based
// correctness (dynalite has neither); expiry is always checked by time.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { setTimeout } from 'node:timers/promises';
import type { Agent, Approval, Connection, Grant, GrantStatus, McpTask, McpTaskStatus, Plan, PlanChange, PlanStatus } from '../../core/model.ts';
import type { ProxyContext, StateStore } from '../../core/ports.ts';
import { AlreadyExistsError, DependencyUnavailableError, NotFoundError } from '../../core/errors.ts';
import { call, conditionalUpdate, documentClient, putNew, statusIn, type CallSite, type Item } from './expressions.ts';
import { listedPrefix, listedSortKey, stateKey, withoutKeys, type ListedKind, type TypeKey } from './keys.ts';
import { STATE_INDEXES } from './tables.ts';

/** BatchGetItem's limit. */
const BATCH_GET_MAX_KEYS = 100;

export class DynamoStateStore implements StateStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly site: CallSite;

  constructor(client: DynamoDBClient, tableName: string) {
    this.doc = documentClient(client);
    this.table = tableName;
    this.site = { store: 'state store', table: tableName };
  }

  private async get<T>(pk: string): Promise<T | undefined> {
    const out = await call(this.site, 'GetItem', () => this.doc.send(new GetCommand({ TableName: this.table, Key: { pk }, ConsistentRead: true })));
    return withoutKeys<T>(out.Item);
  }

  /** Applies `changes` if `condition` holds; undefined when it does not. */
  private async update<T>(pk: string, changes: Item, condition: string, conditionValues: Item = {}, conditionNames: Record<string, string> = {}): Promise<T | undefined> {
    const input = conditionalUpdate(this.table, { pk }, changes, condition, { names: conditionNames, values: conditionValues });
    const out = await call(
      this.site,
      'UpdateItem',
      () => this.doc.send(new UpdateCommand({ ...input, ReturnValues: 'ALL_NEW' })),
      () => undefined,
    );
    return withoutKeys<T>(out?.Attributes);
  }

  private async queryAll(input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    const items: Item[] = [];
    let ExclusiveStartKey: Item | undefined;
    do {
      const out = await call(this.site, 'Query', () => this.doc.send(new QueryCommand({ TableName: this.table, ...input, ExclusiveStartKey })));
      items.push(...(out.Items ?? []));
      ExclusiveStartKey = out.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return items;
  }

  private async listType<T>(type: TypeKey): Promise<T[]> {
    const index = STATE_INDEXES.byType;
    const items = await this.queryAll({ IndexName: index.name, KeyConditionExpression: `${index.hash} = :t`, ExpressionAttributeValues: { ':t': type } });
    return items.map((item) => withoutKeys<T>(item)!);
  }

  /** Grants or approvals of one agent (else of one connection), newest first. */
  private async listBy<T>(kind: ListedKind, filter: { agentId?: string; connection?: string }): Promise<T[]> {
    const [index, value] = filter.agentId ? [STATE_INDEXES.byAgent, stateKey.agent(filter.agentId)] : [STATE_INDEXES.byConnection, stateKey.connection(filter.connection ?? '')];
    const items = await this.queryAll({
      IndexName: index.name,
      KeyConditionExpression: `${index.hash} = :k AND begins_with(${index.range}, :p)`,
      ExpressionAttributeValues: { ':k': value, ':p': listedPrefix(kind) },
      ScanIndexForward: false,
    });
    return items.map((item) => withoutKeys<T>(item)!);
  }

  /** The index keys that list an item under its agent and its connection. */
  private static listed(kind: ListedKind, item: { agentId: string; connection: string }, time: number): Item {
    return {
      gsi1pk: stateKey.agent(item.agentId),
      gsi1sk: listedSortKey(kind, time),
      gsi2pk: stateKey.connection(item.connection),
      gsi2sk: listedSortKey(kind, time),
    };
  }

  // -- agents

  async createAgent(agent: Agent): Promise<void> {
    // Name (and principal) uniqueness by claim items written first; a claim
    // left behind by a failed create only blocks reuse of that name.
    await putNew(this.doc, this.site, 'pk', { pk: stateKey.agentName(agent.name), entity: 'claim', agentId: agent.id }, (cause) => new AlreadyExistsError('agent name', agent.name, { cause }));
    if (agent.principalArn) {
      const principalArn = agent.principalArn;
      await putNew(this.doc, this.site, 'pk', { pk: stateKey.principal(principalArn), entity: 'claim', agentId: agent.id }, (cause) => new AlreadyExistsError('principal', principalArn, { cause }));
    }
    await putNew(
      this.doc,
      this.site,
      'pk',
      { ...agent, pk: stateKey.agent(agent.id), entity: 'agent', typepk: 'agent' satisfies TypeKey, typesk: agent.name },
      (cause) => new AlreadyExistsError('agent', agent.id, { cause }),
    );
  }

  getAgent(id: string): Promise<Agent | undefined> {
    return this.get<Agent>(stateKey.agent(id));
  }

  async getAgentByName(name: string): Promise<Agent | undefined> {
    const claim = await this.get<{ agentId: string }>(stateKey.agentName(name));
    return claim ? this.getAgent(claim.agentId) : undefined;
  }

  async getAgentByPrincipal(principalArn: string): Promise<Agent | undefined> {
    const claim = await this.get<{ agentId: string }>(stateKey.principal(principalArn));
    return claim ? this.getAgent(claim.agentId) : undefined;
  }

  listAgents(): Promise<Agent[]> {
    return this.listType<Agent>('agent');
  }

  async disableAgent(id: string, at: number): Promise<Agent> {
    const agent = await this.update<Agent>(stateKey.agent(id), { status: 'disabled', disabledAt: at, revokedBefore: at }, 'attribute_exists(pk)');
    if (!agent) throw new NotFoundError('agent', id);
    return agent;
  }

  enableAgent(id: string): Promise<Agent | undefined> {
    return this.update<Agent>(stateKey.agent(id), { status: 'enabled' }, 'attribute_exists(pk) AND #status = :disabled', { ':disabled': 'disabled' }, { '#status': 'status' });
  }

  async setAgentRevokedBefore(id: string, at: number): Promise<void> {
    const agent = await this.update<Agent>(stateKey.agent(id), { revokedBefore: at }, 'attribute_exists(pk)');
    if (!agent) throw new NotFoundError('agent', id);
  }

  // -- connections

  async putConnection(connection: Connection, mode: 'create' | 'replace'): Promise<void> {
    const item = { ...connection, pk: stateKey.connection(connection.name), entity: 'connection', typepk: 'connection' satisfies TypeKey, typesk: connection.name };
    if (mode === 'create') {
      await putNew(this.doc, this.site, 'pk', item, (cause) => new AlreadyExistsError('connection', connection.name, { cause }));
      return;
    }
    await call(this.site, 'PutItem', () => this.doc.send(new PutCommand({ TableName: this.table, Item: item })));
  }

  getConnection(name: string): Promise<Connection | undefined> {
    return this.get<Connection>(stateKey.connection(name));
  }

  listConnections(): Promise<Connection[]> {
    return this.listType<Connection>('connection');
  }

  async setConnectionRevokedBefore(name: string, at: number): Promise<void> {
    const updated = await this.update<Connection>(stateKey.connection(name), { revokedBefore: at }, 'attribute_exists(pk)');
    if (!updated) throw new NotFoundError('connection', name);
  }

  // -- grants

  async createGrant(grant: Grant): Promise<void> {
    const item = { ...grant, pk: stateKey.grant(grant.id), entity: 'grant', ...DynamoStateStore.listed('grant', grant, grant.requestedAt) };
    await putNew(this.doc, this.site, 'pk', item, (cause) => new AlreadyExistsError('grant', grant.id, { cause }));
  }

  getGrant(id: string): Promise<Grant | undefined> {
    return this.get<Grant>(stateKey.grant(id));
  }

  transitionGrant(id: string, from: GrantStatus[], changes: Partial<Grant>): Promise<Grant | undefined> {
    const status = statusIn(from);
    return this.update<Grant>(stateKey.grant(id), changes, `attribute_exists(pk) AND ${status.condition}`, status.values, { '#status': 'status' });
  }

  async listGrants(filter: { agentId?: string; connection?: string }): Promise<Grant[]> {
    const grants = await this.listBy<Grant>('grant', filter);
    return grants.filter((grant) => (!filter.connection || grant.connection === filter.connection) && (!filter.agentId || grant.agentId === filter.agentId));
  }

  /**
   * One consistent read of the agent, connection and grant, made after the call: nothing is
   * remembered between requests. With no other read on its way it is sent at once (a Lambda
   * instance, one request at a time); while one is (concurrent requests in this process), the
   * reads asked for in the same turn of the event loop share one BatchGetItem — each of them
   * arrived before it was sent, so each still reads the state as it is now, and the keys they
   * share are read once.
   */
  getProxyContext(agentId: string, connection: string, grantId: string): Promise<ProxyContext> {
    const keys = { agent: stateKey.agent(agentId), connection: stateKey.connection(connection), grant: stateKey.grant(grantId) };
    return new Promise<ProxyContext>((resolve, reject) => {
      this.contextReads.push({ keys, resolve, reject });
      if (this.contextReads.length > 1) return;
      if (this.contextReadsSent === 0) void this.readContexts();
      else setImmediate(() => void this.readContexts());
    });
  }

  private contextReads: { keys: Record<keyof ProxyContext, string>; resolve: (context: ProxyContext) => void; reject: (error: unknown) => void }[] = [];
  /** BatchGetItem calls of readContexts() not yet answered. */
  private contextReadsSent = 0;

  /** Sends the waiting proxy-context reads as BatchGetItem calls of at most 100 distinct keys, and answers each. */
  private async readContexts(): Promise<void> {
    const waiting = this.contextReads;
    this.contextReads = [];
    while (waiting.length > 0) {
      const batch: typeof waiting = [];
      const keys = new Set<string>();
      while (waiting.length > 0) {
        const wanted = Object.values(waiting[0]!.keys).filter((pk) => !keys.has(pk));
        if (keys.size + wanted.length > BATCH_GET_MAX_KEYS) break;
        wanted.forEach((pk) => keys.add(pk));
        batch.push(waiting.shift()!);
      }
      this.contextReadsSent++;
      try {
        const items = await this.batchGet([...keys]);
        const handedOut = new Set<string>();
        // Each request gets its own copy of an item another request of the batch also read.
        const take = <T>(pk: string): T | undefined => {
          const item = items.get(pk);
          if (!item) return undefined;
          const copy = handedOut.has(pk) ? structuredClone(item) : item;
          handedOut.add(pk);
          return withoutKeys<T>(copy);
        };
        for (const read of batch) read.resolve({ agent: take<Agent>(read.keys.agent), connection: take<Connection>(read.keys.connection), grant: take<Grant>(read.keys.grant) });
      } catch (error) {
        for (const read of batch) read.reject(error);
      } finally {
        this.contextReadsSent--;
      }
    }
  }

  /** Consistent reads of `pks` (≤ 100), unprocessed keys retried with backoff. */
  private async batchGet(pks: string[]): Promise<Map<string, Item>> {
    let keys: Item[] = pks.map((pk) => ({ pk }));
    const found = new Map<string, Item>();
    for (let attempt = 0; keys.length > 0; attempt++) {
      if (attempt > 0) await setTimeout(10 * 2 ** attempt);
      if (attempt > 4) throw new DependencyUnavailableError('state store', `DynamoDB BatchGetItem on ${this.table} did not answer all keys`);
      const out = await call(this.site, 'BatchGetItem', () => this.doc.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys, ConsistentRead: true } } })));
      for (const item of out.Responses?.[this.table] ?? []) found.set(item.pk as string, item);
      keys = (out.UnprocessedKeys?.[this.table]?.Keys as Item[] | undefined) ?? [];
    }
    return found;
  }

  // -- approvals

  async createApproval(approval: Approval): Promise<void> {
    const item = { ...approval, pk: stateKey.approval(approval.id), entity: 'approval', ...DynamoStateStore.listed('approval', approval, approval.createdAt) };
    await putNew(this.doc, this.site, 'pk', item, (cause) => new AlreadyExistsError('approval', approval.id, { cause }));
  }

  getApproval(id: string): Promise<Approval | undefined> {
    return this.get<Approval>(stateKey.approval(id));
  }

  updateApproval(id: string, expect: { status: Approval['status'][]; decisionsCount?: number }, changes: Partial<Approval>): Promise<Approval | undefined> {
    const status = statusIn(expect.status);
    const values: Item = { ...status.values };
    let condition = `attribute_exists(pk) AND ${status.condition}`;
    const names: Record<string, string> = { '#status': 'status' };
    if (expect.decisionsCount !== undefined) {
      condition += ' AND size(#decisions) = :count';
      names['#decisions'] = 'decisions';
      values[':count'] = expect.decisionsCount;
    }
    return this.update<Approval>(stateKey.approval(id), changes, condition, values, names);
  }

  async getApprovalIdForFingerprint(fingerprint: string): Promise<string | undefined> {
    const binding = await this.get<{ approvalId: string }>(stateKey.fingerprint(fingerprint));
    return binding?.approvalId;
  }

  async bindFingerprint(fingerprint: string, approvalId: string, previousApprovalId: string | undefined, expiresAt: number): Promise<boolean> {
    return call(
      this.site,
      'PutItem',
      async () => {
        await this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk: stateKey.fingerprint(fingerprint), entity: 'fingerprint', approvalId, expiresAt, ttl: Math.ceil(expiresAt / 1000) + 86_400 },
            ...(previousApprovalId
              ? { ConditionExpression: 'approvalId = :previous', ExpressionAttributeValues: { ':previous': previousApprovalId } }
              : { ConditionExpression: 'attribute_not_exists(pk)' }),
          }),
        );
        return true;
      },
      () => false,
    );
  }

  async listApprovals(filter: { agentId?: string; connection?: string; status?: Approval['status'] }): Promise<Approval[]> {
    const approvals = filter.agentId || filter.connection ? await this.listBy<Approval>('approval', filter) : [];
    return approvals.filter(
      (approval) =>
        (!filter.status || approval.status === filter.status) && (!filter.connection || approval.connection === filter.connection) && (!filter.agentId || approval.agentId === filter.agentId),
    );
  }

  // -- plans

  async createPlan(plan: Plan): Promise<void> {
    const item = { ...plan, pk: stateKey.plan(plan.id), entity: 'plan', ...DynamoStateStore.listed('plan', plan, plan.createdAt) };
    await putNew(this.doc, this.site, 'pk', item, (cause) => new AlreadyExistsError('plan', plan.id, { cause }));
  }

  getPlan(id: string): Promise<Plan | undefined> {
    return this.get<Plan>(stateKey.plan(id));
  }

  updatePlan(id: string, from: PlanStatus[], changes: Partial<Plan>): Promise<Plan | undefined> {
    const status = statusIn(from);
    return this.update<Plan>(stateKey.plan(id), changes, `attribute_exists(pk) AND ${status.condition}`, status.values, { '#status': 'status' });
  }

  async addPlanChange(id: string, change: PlanChange, max: number): Promise<boolean> {
    // One conditional append: a plan closed a moment ago (or full) takes no more changes.
    return call(
      this.site,
      'UpdateItem',
      async () => {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: stateKey.plan(id) },
            UpdateExpression: 'SET #changes = list_append(#changes, :change)',
            ConditionExpression: 'attribute_exists(pk) AND #status = :open AND size(#changes) < :max',
            ExpressionAttributeNames: { '#changes': 'changes', '#status': 'status' },
            ExpressionAttributeValues: { ':change': [change], ':open': 'open', ':max': max },
          }),
        );
        return true;
      },
      () => false,
    );
  }

  async spendPlanChange(id: string, fingerprint: string, requestId: string): Promise<boolean> {
    return call(
      this.site,
      'PutItem',
      async () => {
        await this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk: stateKey.planSpent(id, fingerprint), entity: 'plan-spent', requestId },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
        return true;
      },
      () => false,
    );
  }

  listPlans(filter: { agentId?: string; connection?: string }): Promise<Plan[]> {
    return filter.agentId || filter.connection ? this.listBy<Plan>('plan', filter) : Promise.resolve([]);
  }

  // -- MCP tasks (expire by DynamoDB TTL an hour after their own expiry; readers check expiresAt)

  async createMcpTask(task: McpTask): Promise<void> {
    const item = { ...task, pk: stateKey.mcpTask(task.id), entity: 'mcp-task', ttl: Math.ceil(task.expiresAt / 1000) + 3600 };
    await putNew(this.doc, this.site, 'pk', item, (cause) => new AlreadyExistsError('MCP task', task.id, { cause }));
  }

  getMcpTask(id: string): Promise<McpTask | undefined> {
    return this.get<McpTask>(stateKey.mcpTask(id));
  }

  updateMcpTask(id: string, expect: { status: McpTaskStatus[]; leaseFreeAt?: number; runId?: string }, changes: Partial<McpTask>): Promise<McpTask | undefined> {
    const status = statusIn(expect.status);
    const values: Item = { ...status.values };
    const names: Record<string, string> = { '#status': 'status' };
    let condition = `attribute_exists(pk) AND ${status.condition}`;
    if (expect.leaseFreeAt !== undefined) {
      condition += ' AND #lease < :leaseFreeAt';
      names['#lease'] = 'runLeaseUntil';
      values[':leaseFreeAt'] = expect.leaseFreeAt;
    }
    if (expect.runId !== undefined) {
      condition += ' AND #runId = :runId';
      names['#runId'] = 'runId';
      values[':runId'] = expect.runId;
    }
    return this.update<McpTask>(stateKey.mcpTask(id), changes, condition, values, names);
  }
}
