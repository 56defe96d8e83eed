// DynamoDB adapters: the state table (agents, connections, grants, approvals)
// and the records table (the write-ahead request log and audit events).
// Conditional single-item writes only — no transactions, no TTL-based
// correctness (dynalite has neither); expiry is always checked by time.
import {
  ConditionalCheckFailedException,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type { Agent, Approval, AuditEvent, Connection, Grant, GrantStatus, RequestRecord } from '../core/model.ts';
import type { Page, ProxyContext, RecordQuery, RecordStore, StateStore } from '../core/ports.ts';
import { AirlockError } from '../core/status.ts';

type Item = Record<string, unknown>;

export interface TableNames {
  state: string;
  records: string;
}

/** Table shapes, shared by the local stack (CreateTable) and the CDK construct. */
export function stateTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'gsi1pk', AttributeType: 'S' },
      { AttributeName: 'gsi1sk', AttributeType: 'S' },
      { AttributeName: 'gsi2pk', AttributeType: 'S' },
      { AttributeName: 'gsi2sk', AttributeType: 'S' },
      { AttributeName: 'typepk', AttributeType: 'S' },
      { AttributeName: 'typesk', AttributeType: 'S' },
    ],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [
      gsi('byAgent', 'gsi1pk', 'gsi1sk'),
      gsi('byConnection', 'gsi2pk', 'gsi2sk'),
      gsi('byType', 'typepk', 'typesk'),
    ],
  };
}

export function recordsTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'id', AttributeType: 'S' },
      { AttributeName: 'agent', AttributeType: 'S' },
      { AttributeName: 'connection', AttributeType: 'S' },
      { AttributeName: 'day', AttributeType: 'S' },
      { AttributeName: 'time', AttributeType: 'N' },
    ],
    KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [gsi('byAgent', 'agent', 'time'), gsi('byConnection', 'connection', 'time'), gsi('byDay', 'day', 'time')],
  };
}

function gsi(IndexName: string, hash: string, range: string) {
  return {
    IndexName,
    KeySchema: [
      { AttributeName: hash, KeyType: 'HASH' as const },
      { AttributeName: range, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: 'ALL' as const },
  };
}

function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

const KEY_FIELDS = ['pk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', 'typepk', 'typesk', 'entity', 'ttl'];

function strip<T>(item: Item | undefined): T | undefined {
  if (!item) return undefined;
  const copy: Item = { ...item };
  for (const field of KEY_FIELDS) delete copy[field];
  return copy as T;
}

const pad = (n: number) => String(n).padStart(15, '0');

/** Builds "SET #a = :a, ..." for a partial object, skipping undefined values. */
function setExpression(changes: Item, prefix = 'c'): { expression: string; names: Record<string, string>; values: Item } {
  const names: Record<string, string> = {};
  const values: Item = {};
  const parts: string[] = [];
  Object.entries(changes).forEach(([key, value], index) => {
    if (value === undefined) return;
    names[`#${prefix}${index}`] = key;
    values[`:${prefix}${index}`] = value;
    parts.push(`#${prefix}${index} = :${prefix}${index}`);
  });
  return { expression: parts.length ? `SET ${parts.join(', ')}` : '', names, values };
}

function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

export class DynamoStateStore implements StateStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(client: DynamoDBClient, tableName: string) {
    this.doc = documentClient(client);
    this.table = tableName;
  }

  private async get<T>(pk: string): Promise<T | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { pk }, ConsistentRead: true }));
    return strip<T>(out.Item);
  }

  private async putNew(item: Item): Promise<boolean> {
    try {
      await this.doc.send(new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  private async update<T>(pk: string, changes: Item, condition: string, conditionValues: Item = {}, conditionNames: Record<string, string> = {}): Promise<T | undefined> {
    const set = setExpression(changes);
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk },
          UpdateExpression: set.expression,
          ConditionExpression: condition,
          ExpressionAttributeNames: { ...set.names, ...conditionNames },
          ExpressionAttributeValues: { ...set.values, ...conditionValues },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return strip<T>(out.Attributes);
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  private async queryAll(input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    const items: Item[] = [];
    let ExclusiveStartKey: Item | undefined;
    do {
      const out = await this.doc.send(new QueryCommand({ TableName: this.table, ...input, ExclusiveStartKey }));
      items.push(...(out.Items ?? []));
      ExclusiveStartKey = out.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return items;
  }

  // -- agents

  async createAgent(agent: Agent): Promise<void> {
    // Name (and principal) uniqueness by claim items written first; a claim
    // left behind by a failed create only blocks reuse of that name.
    if (!(await this.putNew({ pk: `AGENTNAME#${agent.name}`, entity: 'claim', agentId: agent.id }))) {
      throw new AirlockError(409, 'agent_exists', `an agent named "${agent.name}" already exists`);
    }
    if (agent.principalArn && !(await this.putNew({ pk: `PRINCIPAL#${agent.principalArn}`, entity: 'claim', agentId: agent.id }))) {
      throw new AirlockError(409, 'principal_taken', `principal ${agent.principalArn} already belongs to an agent`);
    }
    if (!(await this.putNew({ ...agent, pk: `AGENT#${agent.id}`, entity: 'agent', typepk: 'agent', typesk: agent.name }))) {
      throw new AirlockError(409, 'agent_exists', `agent id ${agent.id} already exists`);
    }
  }

  getAgent(id: string): Promise<Agent | undefined> {
    return this.get<Agent>(`AGENT#${id}`);
  }

  async getAgentByName(name: string): Promise<Agent | undefined> {
    const claim = await this.get<{ agentId: string }>(`AGENTNAME#${name}`);
    return claim ? this.getAgent(claim.agentId) : undefined;
  }

  async getAgentByPrincipal(principalArn: string): Promise<Agent | undefined> {
    const claim = await this.get<{ agentId: string }>(`PRINCIPAL#${principalArn}`);
    return claim ? this.getAgent(claim.agentId) : undefined;
  }

  async listAgents(): Promise<Agent[]> {
    const items = await this.queryAll({ IndexName: 'byType', KeyConditionExpression: 'typepk = :t', ExpressionAttributeValues: { ':t': 'agent' } });
    return items.map((item) => strip<Agent>(item)!);
  }

  async disableAgent(id: string, at: number): Promise<Agent> {
    const agent = await this.update<Agent>(`AGENT#${id}`, { status: 'disabled', disabledAt: at, revokedBefore: at }, 'attribute_exists(pk)');
    if (!agent) throw new AirlockError(404, 'agent_not_found', `no agent ${id}`);
    return agent;
  }

  enableAgent(id: string): Promise<Agent | undefined> {
    return this.update<Agent>(`AGENT#${id}`, { status: 'enabled' }, 'attribute_exists(pk) AND #status = :disabled', { ':disabled': 'disabled' }, { '#status': 'status' });
  }

  async setAgentRevokedBefore(id: string, at: number): Promise<void> {
    const agent = await this.update<Agent>(`AGENT#${id}`, { revokedBefore: at }, 'attribute_exists(pk)');
    if (!agent) throw new AirlockError(404, 'agent_not_found', `no agent ${id}`);
  }

  // -- connections

  async putConnection(connection: Connection, mode: 'create' | 'replace'): Promise<void> {
    const item = { ...connection, pk: `CONN#${connection.name}`, entity: 'connection', typepk: 'connection', typesk: connection.name };
    if (mode === 'create') {
      if (!(await this.putNew(item))) throw new AirlockError(409, 'connection_exists', `a connection named "${connection.name}" already exists`);
      return;
    }
    await this.doc.send(new PutCommand({ TableName: this.table, Item: item }));
  }

  getConnection(name: string): Promise<Connection | undefined> {
    return this.get<Connection>(`CONN#${name}`);
  }

  async listConnections(): Promise<Connection[]> {
    const items = await this.queryAll({ IndexName: 'byType', KeyConditionExpression: 'typepk = :t', ExpressionAttributeValues: { ':t': 'connection' } });
    return items.map((item) => strip<Connection>(item)!);
  }

  async setConnectionRevokedBefore(name: string, at: number): Promise<void> {
    const updated = await this.update<Connection>(`CONN#${name}`, { revokedBefore: at }, 'attribute_exists(pk)');
    if (!updated) throw new AirlockError(404, 'connection_not_found', `no connection named "${name}"`);
  }

  // -- grants

  async createGrant(grant: Grant): Promise<void> {
    const item = {
      ...grant,
      pk: `GRANT#${grant.id}`,
      entity: 'grant',
      gsi1pk: `AGENT#${grant.agentId}`,
      gsi1sk: `GRANT#${pad(grant.requestedAt)}`,
      gsi2pk: `CONN#${grant.connection}`,
      gsi2sk: `GRANT#${pad(grant.requestedAt)}`,
    };
    if (!(await this.putNew(item))) throw new AirlockError(409, 'grant_exists', `grant ${grant.id} exists`);
  }

  getGrant(id: string): Promise<Grant | undefined> {
    return this.get<Grant>(`GRANT#${id}`);
  }

  transitionGrant(id: string, from: GrantStatus[], changes: Partial<Grant>): Promise<Grant | undefined> {
    const values: Item = {};
    from.forEach((status, index) => (values[`:from${index}`] = status));
    return this.update<Grant>(
      `GRANT#${id}`,
      changes,
      `attribute_exists(pk) AND #status IN (${from.map((_, index) => `:from${index}`).join(', ')})`,
      values,
      { '#status': 'status' },
    );
  }

  async listGrants(filter: { agentId?: string; connection?: string }): Promise<Grant[]> {
    const [index, key, value] = filter.agentId
      ? ['byAgent', 'gsi1pk', `AGENT#${filter.agentId}`]
      : ['byConnection', 'gsi2pk', `CONN#${filter.connection ?? ''}`];
    const items = await this.queryAll({
      IndexName: index,
      KeyConditionExpression: `${key} = :k AND begins_with(${key === 'gsi1pk' ? 'gsi1sk' : 'gsi2sk'}, :p)`,
      ExpressionAttributeValues: { ':k': value, ':p': 'GRANT#' },
      ScanIndexForward: false,
    });
    return items
      .map((item) => strip<Grant>(item)!)
      .filter((grant) => (!filter.connection || grant.connection === filter.connection) && (!filter.agentId || grant.agentId === filter.agentId));
  }

  async getProxyContext(agentId: string, connection: string, grantId: string): Promise<ProxyContext> {
    let keys: Item[] = [{ pk: `AGENT#${agentId}` }, { pk: `CONN#${connection}` }, { pk: `GRANT#${grantId}` }];
    const found: Item[] = [];
    for (let attempt = 0; keys.length > 0; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 10 * 2 ** attempt));
      if (attempt > 4) throw new Error('state store did not answer all keys');
      const out = await this.doc.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys, ConsistentRead: true } } }));
      found.push(...(out.Responses?.[this.table] ?? []));
      keys = (out.UnprocessedKeys?.[this.table]?.Keys as Item[] | undefined) ?? [];
    }
    const byKey = new Map(found.map((item) => [item.pk as string, item]));
    return {
      agent: strip<Agent>(byKey.get(`AGENT#${agentId}`)),
      connection: strip<Connection>(byKey.get(`CONN#${connection}`)),
      grant: strip<Grant>(byKey.get(`GRANT#${grantId}`)),
    };
  }

  // -- approvals

  async createApproval(approval: Approval): Promise<void> {
    const item = {
      ...approval,
      pk: `APPROVAL#${approval.id}`,
      entity: 'approval',
      gsi1pk: `AGENT#${approval.agentId}`,
      gsi1sk: `APPROVAL#${pad(approval.createdAt)}`,
      gsi2pk: `CONN#${approval.connection}`,
      gsi2sk: `APPROVAL#${pad(approval.createdAt)}`,
    };
    if (!(await this.putNew(item))) throw new AirlockError(409, 'approval_exists', `approval ${approval.id} exists`);
  }

  getApproval(id: string): Promise<Approval | undefined> {
    return this.get<Approval>(`APPROVAL#${id}`);
  }

  updateApproval(id: string, expect: { status: Approval['status'][]; decisionsCount?: number }, changes: Partial<Approval>): Promise<Approval | undefined> {
    const values: Item = {};
    expect.status.forEach((status, index) => (values[`:from${index}`] = status));
    let condition = `attribute_exists(pk) AND #status IN (${expect.status.map((_, index) => `:from${index}`).join(', ')})`;
    const names: Record<string, string> = { '#status': 'status' };
    if (expect.decisionsCount !== undefined) {
      condition += ' AND size(#decisions) = :count';
      names['#decisions'] = 'decisions';
      values[':count'] = expect.decisionsCount;
    }
    return this.update<Approval>(`APPROVAL#${id}`, changes, condition, values, names);
  }

  async getApprovalIdForFingerprint(fingerprint: string): Promise<string | undefined> {
    const binding = await this.get<{ approvalId: string }>(`FP#${fingerprint}`);
    return binding?.approvalId;
  }

  async bindFingerprint(fingerprint: string, approvalId: string, previousApprovalId: string | undefined, expiresAt: number): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: `FP#${fingerprint}`, entity: 'fingerprint', approvalId, expiresAt, ttl: Math.ceil(expiresAt / 1000) + 86_400 },
          ...(previousApprovalId
            ? { ConditionExpression: 'approvalId = :previous', ExpressionAttributeValues: { ':previous': previousApprovalId } }
            : { ConditionExpression: 'attribute_not_exists(pk)' }),
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async listApprovals(filter: { agentId?: string; connection?: string; status?: Approval['status'] }): Promise<Approval[]> {
    const [index, key, sortKey, value] = filter.agentId
      ? ['byAgent', 'gsi1pk', 'gsi1sk', `AGENT#${filter.agentId}`]
      : filter.connection
        ? ['byConnection', 'gsi2pk', 'gsi2sk', `CONN#${filter.connection}`]
        : [];
    const items = index
      ? await this.queryAll({
          IndexName: index,
          KeyConditionExpression: `${key} = :k AND begins_with(${sortKey}, :p)`,
          ExpressionAttributeValues: { ':k': value, ':p': 'APPROVAL#' },
          ScanIndexForward: false,
        })
      : [];
    return items
      .map((item) => strip<Approval>(item)!)
      .filter(
        (approval) =>
          (!filter.status || approval.status === filter.status) &&
          (!filter.connection || approval.connection === filter.connection) &&
          (!filter.agentId || approval.agentId === filter.agentId),
      );
  }
}

export interface RecordStoreOptions {
  /** Days an index item is kept (DynamoDB TTL on AWS); transcripts follow the bucket's lifecycle. */
  retentionDays?: number;
}

export class DynamoRecordStore implements RecordStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly retentionSeconds: number;

  constructor(client: DynamoDBClient, tableName: string, options: RecordStoreOptions = {}) {
    this.doc = documentClient(client);
    this.table = tableName;
    this.retentionSeconds = (options.retentionDays ?? 400) * 86_400;
  }

  private ttl(time: number): number {
    return Math.floor(time / 1000) + this.retentionSeconds;
  }

  async begin(record: RequestRecord): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: { ...record, recordType: 'request', day: dayOf(record.time), ttl: this.ttl(record.time) },
        ConditionExpression: 'attribute_not_exists(id)',
      }),
    );
  }

  async complete(id: string, changes: Partial<RequestRecord>): Promise<void> {
    const set = setExpression(changes);
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { id },
        UpdateExpression: set.expression,
        ConditionExpression: 'attribute_exists(id)',
        ExpressionAttributeNames: set.names,
        ExpressionAttributeValues: set.values,
      }),
    );
  }

  async get(id: string): Promise<RequestRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { id }, ConsistentRead: true }));
    if (!out.Item || out.Item.recordType !== 'request') return undefined;
    return cleanRecord<RequestRecord>(out.Item);
  }

  async query(query: RecordQuery): Promise<Page<RequestRecord>> {
    const page = await this.queryType('request', query);
    return { ...page, items: page.items.map((item) => cleanRecord<RequestRecord>(item)) };
  }

  async putEvent(event: AuditEvent): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: { ...event, recordType: 'event', day: dayOf(event.time), ttl: this.ttl(event.time), agent: event.agent ?? '-', connection: event.connection ?? '-' },
        ConditionExpression: 'attribute_not_exists(id)',
      }),
    );
  }

  async listSpooled(limit: number): Promise<RequestRecord[]> {
    // A rare admin repair after an S3 outage: a filtered scan is fine here.
    const items: Item[] = [];
    let ExclusiveStartKey: Item | undefined;
    do {
      const out = await this.doc.send(new ScanCommand({ TableName: this.table, FilterExpression: 'attribute_exists(transcriptSpool)', ExclusiveStartKey }));
      items.push(...(out.Items ?? []));
      ExclusiveStartKey = out.LastEvaluatedKey;
    } while (ExclusiveStartKey && items.length < limit);
    return items.slice(0, limit).map((item) => cleanRecord<RequestRecord>(item));
  }

  async markTranscriptStored(id: string): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { id },
        UpdateExpression: 'SET phase = :complete REMOVE transcriptSpool, transcriptError',
        ConditionExpression: 'attribute_exists(transcriptSpool)',
        ExpressionAttributeValues: { ':complete': 'complete' },
      }),
    );
  }

  async queryEvents(query: RecordQuery): Promise<Page<AuditEvent>> {
    const page = await this.queryType('event', query);
    return { ...page, items: page.items.map((item) => cleanRecord<AuditEvent>(item)) };
  }

  /** Newest first. The cursor carries the partition (day) being read and DynamoDB's LastEvaluatedKey. */
  private async queryType(recordType: string, query: RecordQuery): Promise<Page<Item>> {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000);
    const since = query.since ?? 0;
    const now = Date.now();
    const partitions: { index: string; key: string; value: string }[] = query.agent
      ? [{ index: 'byAgent', key: 'agent', value: query.agent }]
      : query.connection
        ? [{ index: 'byConnection', key: 'connection', value: query.connection }]
        : daysBetween(Math.max(since, now - 31 * 86_400_000), now)
            .reverse()
            .map((day) => ({ index: 'byDay', key: 'day', value: day }));
    let position = { partition: 0, key: undefined as Item | undefined };
    if (query.cursor) {
      try {
        const decoded = JSON.parse(Buffer.from(query.cursor, 'base64url').toString('utf8')) as { p: number; k?: Item };
        if (!Number.isInteger(decoded.p) || decoded.p < 0 || decoded.p >= partitions.length) throw new Error('bad partition');
        position = { partition: decoded.p, key: decoded.k };
      } catch {
        throw new AirlockError(400, 'invalid_query', 'cursor: not a cursor from a previous page');
      }
    }
    const both = query.agent !== undefined && query.connection !== undefined;
    const items: Item[] = [];
    for (let partition = position.partition; partition < partitions.length; partition++) {
      const target = partitions[partition]!;
      let ExclusiveStartKey = partition === position.partition ? position.key : undefined;
      do {
        const out = await this.doc.send(
          new QueryCommand({
            TableName: this.table,
            IndexName: target.index,
            KeyConditionExpression: '#k = :k AND #t >= :since',
            FilterExpression: 'recordType = :type' + (both ? ' AND #c = :c' : ''),
            ExpressionAttributeNames: { '#k': target.key, '#t': 'time', ...(both ? { '#c': 'connection' } : {}) },
            ExpressionAttributeValues: { ':k': target.value, ':since': since, ':type': recordType, ...(both ? { ':c': query.connection } : {}) },
            ScanIndexForward: false,
            Limit: limit - items.length,
            ExclusiveStartKey,
          }),
        );
        items.push(...(out.Items ?? []));
        ExclusiveStartKey = out.LastEvaluatedKey;
        if (items.length >= limit) {
          const next = ExclusiveStartKey ? { p: partition, k: ExclusiveStartKey } : partition + 1 < partitions.length ? { p: partition + 1 } : undefined;
          return { items, ...(next ? { cursor: Buffer.from(JSON.stringify(next)).toString('base64url') } : {}) };
        }
      } while (ExclusiveStartKey);
    }
    return { items };
  }
}

function cleanRecord<T>(item: Item): T {
  const { recordType: _type, day: _day, ttl: _ttl, ...rest } = item;
  return rest as T;
}

function dayOf(time: number): string {
  return new Date(time).toISOString().slice(0, 10);
}

function daysBetween(from: number, to: number): string[] {
  const days: string[] = [];
  for (let t = Date.UTC(new Date(from).getUTCFullYear(), new Date(from).getUTCMonth(), new Date(from).getUTCDate()); t <= to; t += 86_400_000) {
    days.push(dayOf(t));
  }
  return days;
}
