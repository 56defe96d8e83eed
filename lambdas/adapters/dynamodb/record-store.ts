// The records table: the write-ahead request log and the audit events, one
// item each, listed by agent, connection or day (newest first).
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AuditEvent, ChainHead, RequestRecord } from '../../core/model.ts';
import type { Page, RecordQuery, RecordStore } from '../../core/ports.ts';
import { AlreadyExistsError, NotFoundError } from '../../core/errors.ts';
import { call, conditionalUpdate, putNew, documentClient, type CallSite, type Item } from './expressions.ts';
import { decodeCursor, encodeCursor, type CursorPosition } from './cursor.ts';
import { RECORD_INDEXES } from './tables.ts';

export interface RecordStoreOptions {
  /** Days an index item is kept (DynamoDB TTL on AWS); transcripts follow the bucket's lifecycle. */
  retentionDays?: number;
}

type RecordType = 'request' | 'event' | 'chain';

export class DynamoRecordStore implements RecordStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly site: CallSite;
  private readonly retentionSeconds: number;

  constructor(client: DynamoDBClient, tableName: string, options: RecordStoreOptions = {}) {
    this.doc = documentClient(client);
    this.table = tableName;
    this.site = { store: 'record store', table: tableName };
    this.retentionSeconds = (options.retentionDays ?? 400) * 86_400;
  }

  private ttl(time: number): number {
    return Math.floor(time / 1000) + this.retentionSeconds;
  }

  async begin(record: RequestRecord): Promise<void> {
    await putNew(
      this.doc,
      this.site,
      'id',
      { ...record, recordType: 'request' satisfies RecordType, day: dayOf(record.time), ttl: this.ttl(record.time) },
      (cause) => new AlreadyExistsError('request record', record.id, { cause }),
    );
  }

  async complete(id: string, changes: Partial<RequestRecord>): Promise<void> {
    await call(
      this.site,
      'UpdateItem',
      () => this.doc.send(new UpdateCommand(conditionalUpdate(this.table, { id }, changes, 'attribute_exists(id)'))),
      (cause) => {
        throw new NotFoundError('request record', id, { cause });
      },
    );
  }

  async get(id: string): Promise<RequestRecord | undefined> {
    const out = await call(this.site, 'GetItem', () => this.doc.send(new GetCommand({ TableName: this.table, Key: { id }, ConsistentRead: true })));
    if (!out.Item || out.Item.recordType !== ('request' satisfies RecordType)) return undefined;
    return cleanRecord<RequestRecord>(out.Item);
  }

  async query(query: RecordQuery): Promise<Page<RequestRecord>> {
    const page = await this.queryType('request', query);
    return { ...page, items: page.items.map((item) => cleanRecord<RequestRecord>(item)) };
  }

  async putEvent(event: AuditEvent): Promise<void> {
    await putNew(
      this.doc,
      this.site,
      'id',
      { ...event, recordType: 'event' satisfies RecordType, day: dayOf(event.time), ttl: this.ttl(event.time), agent: event.agent ?? '-', connection: event.connection ?? '-' },
      (cause) => new AlreadyExistsError('audit event', event.id, { cause }),
    );
  }

  async listSpooled(limit: number): Promise<RequestRecord[]> {
    // A rare admin repair after an S3 outage: a filtered scan is fine here.
    const items: Item[] = [];
    let ExclusiveStartKey: Item | undefined;
    do {
      const out = await call(this.site, 'Scan', () => this.doc.send(new ScanCommand({ TableName: this.table, FilterExpression: 'attribute_exists(transcriptSpool)', ExclusiveStartKey })));
      items.push(...(out.Items ?? []));
      ExclusiveStartKey = out.LastEvaluatedKey;
    } while (ExclusiveStartKey && items.length < limit);
    return items.slice(0, limit).map((item) => cleanRecord<RequestRecord>(item));
  }

  async markTranscriptStored(id: string): Promise<void> {
    await call(
      this.site,
      'UpdateItem',
      () =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { id },
            UpdateExpression: 'SET phase = :complete REMOVE transcriptSpool, transcriptError',
            ConditionExpression: 'attribute_exists(transcriptSpool)',
            ExpressionAttributeValues: { ':complete': 'complete' },
          }),
        ),
      (cause) => {
        throw new NotFoundError('spooled transcript', id, { cause });
      },
    );
  }

  async chainHead(partition: string): Promise<ChainHead | undefined> {
    const out = await call(this.site, 'GetItem', () => this.doc.send(new GetCommand({ TableName: this.table, Key: { id: chainHeadId(partition) }, ConsistentRead: true })));
    return out.Item?.recordType === ('chain' satisfies RecordType) ? headOf(out.Item) : undefined;
  }

  async advanceChain(partition: string, from: ChainHead | undefined, to: ChainHead): Promise<boolean> {
    // The head is listed by day (no agent or connection attribute: request listings never see it).
    const changes = { recordType: 'chain' satisfies RecordType, partition, seq: to.seq, hash: to.hash, time: to.time, day: partition.slice(-10), ttl: this.ttl(to.time) };
    const condition = from ? 'seq = :from AND #hash = :fromHash' : 'attribute_not_exists(id)';
    const extra = from ? { names: { '#hash': 'hash' }, values: { ':from': from.seq, ':fromHash': from.hash } } : {};
    return call(
      this.site,
      'UpdateItem',
      async () => {
        await this.doc.send(new UpdateCommand(conditionalUpdate(this.table, { id: chainHeadId(partition) }, changes, condition, extra)));
        return true;
      },
      () => false,
    );
  }

  async listChainHeads(since: number): Promise<ChainHead[]> {
    const heads: ChainHead[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.queryType('chain', { since, limit: 1000, cursor });
      heads.push(...page.items.map(headOf));
      cursor = page.cursor;
    } while (cursor);
    return heads;
  }

  async queryEvents(query: RecordQuery): Promise<Page<AuditEvent>> {
    const page = await this.queryType('event', query);
    return { ...page, items: page.items.map((item) => cleanRecord<AuditEvent>(item)) };
  }

  /** Newest first. The cursor carries the partition (index key) being read and DynamoDB's LastEvaluatedKey. */
  private async queryType(recordType: RecordType, query: RecordQuery): Promise<Page<Item>> {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000);
    const since = query.since ?? 0;
    const now = Date.now();
    const partitions: { index: { name: string; hash: string }; value: string }[] = query.agent
      ? [{ index: RECORD_INDEXES.byAgent, value: query.agent }]
      : query.connection
        ? [{ index: RECORD_INDEXES.byConnection, value: query.connection }]
        : daysBetween(Math.max(since, now - 31 * 86_400_000), now)
            .reverse()
            .map((day) => ({ index: RECORD_INDEXES.byDay, value: day }));
    const position: CursorPosition = query.cursor ? decodeCursor(query.cursor, partitions.length) : { partition: 0 };
    const both = query.agent !== undefined && query.connection !== undefined;
    const items: Item[] = [];
    for (let partition = position.partition; partition < partitions.length; partition++) {
      const target = partitions[partition]!;
      let ExclusiveStartKey = partition === position.partition ? position.key : undefined;
      do {
        const out = await call(this.site, 'Query', () =>
          this.doc.send(
            new QueryCommand({
              TableName: this.table,
              IndexName: target.index.name,
              KeyConditionExpression: '#k = :k AND #t >= :since',
              FilterExpression: 'recordType = :type' + (both ? ' AND #c = :c' : ''),
              ExpressionAttributeNames: { '#k': target.index.hash, '#t': 'time', ...(both ? { '#c': 'connection' } : {}) },
              ExpressionAttributeValues: { ':k': target.value, ':since': since, ':type': recordType, ...(both ? { ':c': query.connection } : {}) },
              ScanIndexForward: false,
              Limit: limit - items.length,
              ExclusiveStartKey,
            }),
          ),
        );
        items.push(...(out.Items ?? []));
        ExclusiveStartKey = out.LastEvaluatedKey;
        if (items.length >= limit) {
          const next: CursorPosition | undefined = ExclusiveStartKey ? { partition, key: ExclusiveStartKey } : partition + 1 < partitions.length ? { partition: partition + 1 } : undefined;
          return { items, ...(next ? { cursor: encodeCursor(next) } : {}) };
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

function chainHeadId(partition: string): string {
  return `chain#${partition}`;
}

function headOf(item: Item): ChainHead {
  return { partition: String(item.partition), seq: Number(item.seq), hash: String(item.hash), time: Number(item.time) };
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
