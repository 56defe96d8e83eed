// OCSF API Activity events (audit-export.ts) as Parquet, the way Amazon Security
// Lake custom sources take them: one event class per source, nested columns in
// OCSF's own shape, files under region=/accountId=/eventDay= partitions.
// The writer is hyparquet-writer; this file only says what the columns are.
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { SchemaElement } from 'hyparquet-writer';
import { startOfDay } from './audit-chain.ts';
import { toOcsfApiActivity } from './audit-export.ts';
import type { RequestRecord } from './model.ts';
import type { RecordStore } from './ports.ts';

type Leaf = 'string' | 'int32' | 'int64' | 'timestamp';
type Field = Leaf | { [name: string]: Field } | { list: Field };

const NAME = { name: 'string' } as const;

/** Every column toOcsfApiActivity writes, with its Parquet type. */
const OCSF_API_ACTIVITY_FIELDS: Record<string, Field> = {
  class_uid: 'int32',
  class_name: 'string',
  category_uid: 'int32',
  category_name: 'string',
  activity_id: 'int32',
  activity_name: 'string',
  type_uid: 'int64',
  type_name: 'string',
  severity_id: 'int32',
  severity: 'string',
  time: 'timestamp',
  start_time: 'timestamp',
  end_time: 'timestamp',
  duration: 'int64',
  status_id: 'int32',
  status: 'string',
  status_code: 'string',
  status_detail: 'string',
  message: 'string',
  metadata: { version: 'string', uid: 'string', correlation_uid: 'string', log_name: 'string', product: { name: 'string', vendor_name: 'string', feature: NAME }, logged_time: 'timestamp' },
  actor: { user: { name: 'string', uid: 'string', type: 'string', type_id: 'int32' }, session: { uid: 'string' } },
  api: { operation: 'string', request: { uid: 'string' }, response: { code: 'int32', error: 'string', error_message: 'string' }, service: { name: 'string', uid: 'string' }, group: NAME },
  http_request: { http_method: 'string', url: { path: 'string', query_string: 'string' }, user_agent: 'string' },
  src_endpoint: { ip: 'string', name: 'string' },
  resources: { list: { type: 'string', name: 'string', namespace: 'string', group: NAME } },
  cloud: { provider: 'string', region: 'string', account: { uid: 'string' } },
  unmapped: { airlock_decision: 'string', airlock_connection: 'string', airlock_approval: 'string', airlock_transcript: 'string' },
};

function isList(field: Field): field is { list: Field } {
  return typeof field === 'object' && 'list' in field && Object.keys(field).length === 1;
}

function schemaOf(name: string, field: Field, required = false): SchemaElement[] {
  const repetition_type = required ? 'REQUIRED' : 'OPTIONAL';
  if (field === 'string') return [{ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type }];
  if (field === 'int32') return [{ name, type: 'INT32', repetition_type }];
  if (field === 'int64') return [{ name, type: 'INT64', repetition_type }];
  if (field === 'timestamp') return [{ name, type: 'INT64', converted_type: 'TIMESTAMP_MILLIS', repetition_type }];
  if (isList(field)) return [{ name, repetition_type, converted_type: 'LIST', num_children: 1 }, { name: 'list', repetition_type: 'REPEATED', num_children: 1 }, ...schemaOf('element', field.list)];
  const children = Object.entries(field);
  return [{ name, repetition_type, num_children: children.length }, ...children.flatMap(([child, type]) => schemaOf(child, type))];
}

/** A value in the form the writer takes for its column type; null when absent. */
function valueOf(field: Field, value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (field === 'string') return typeof value === 'string' ? value : JSON.stringify(value);
  if (field === 'int32') return Number(value);
  if (field === 'int64') return BigInt(Math.trunc(Number(value)));
  if (field === 'timestamp') return new Date(Number(value));
  if (isList(field)) return Array.isArray(value) ? value.map((item) => valueOf(field.list, item)) : null;
  const record = value as Record<string, unknown>;
  return Object.fromEntries(Object.entries(field).map(([child, type]) => [child, valueOf(type, record[child])]));
}

/** One Parquet file of OCSF API Activity events (snappy, the writer's default). */
export function ocsfParquet(events: Record<string, unknown>[]): Uint8Array {
  const fields = Object.entries(OCSF_API_ACTIVITY_FIELDS);
  const buffer = parquetWriteBuffer({
    columnData: fields.map(([name, field]) => ({ name, data: events.map((event) => valueOf(field, event[name])) as never })),
    schema: [{ name: 'root', num_children: fields.length }, ...fields.flatMap(([name, field]) => schemaOf(name, field, name === 'class_uid' || name === 'time'))],
    createdBy: 'airlock',
  });
  return new Uint8Array(buffer);
}

/** The object key of one file under a Security Lake custom source location: {prefix}region=/accountId=/eventDay=yyyymmdd/{name}. */
export function securityLakeKey(prefix: string, where: { region: string; accountId: string }, eventDay: number, name: string): string {
  const day = new Date(eventDay).toISOString().slice(0, 10).replaceAll('-', '');
  const base = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
  return `${base}region=${where.region}/accountId=${where.accountId}/eventDay=${day}/${name}`;
}

export interface SecurityLakeExport {
  records: RecordStore;
  /** Writes one object under the custom source's location. */
  put(key: string, body: Uint8Array): Promise<void>;
  prefix: string;
  region: string;
  accountId: string;
  /** 'AWS' on AWS. */
  cloudProvider: string;
  /** How long one run covers. */
  periodMs: number;
  /** How far behind now the period ends, so requests still streaming are complete when exported. */
  lagMs: number;
  now: number;
}

/**
 * Exports the last whole period (ending `lagMs` before now) as OCSF Parquet, one
 * file per event day; the key names the period, so a repeated run rewrites the same file.
 */
export async function exportPeriodToSecurityLake(input: SecurityLakeExport): Promise<{ from: number; to: number; events: number; keys: string[] }> {
  const to = Math.floor((input.now - input.lagMs) / input.periodMs) * input.periodMs;
  const from = to - input.periodMs;
  const records: RequestRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await input.records.query({ since: from, limit: 1000, cursor });
    records.push(...page.items.filter((record) => record.time < to));
    cursor = page.cursor;
  } while (cursor);
  const byDay = new Map<number, RequestRecord[]>();
  for (const record of records.sort((a, b) => a.time - b.time)) {
    const day = startOfDay(record.time);
    byDay.set(day, [...(byDay.get(day) ?? []), record]);
  }
  const keys: string[] = [];
  for (const [day, items] of byDay) {
    const name = `airlock-${new Date(from).toISOString().replace(/[-:.]/g, '')}.parquet`;
    const key = securityLakeKey(input.prefix, input, day, name);
    await input.put(key, ocsfParquet(items.map((record) => toOcsfApiActivity(record, { cloudProvider: input.cloudProvider, region: input.region, accountId: input.accountId }))));
    keys.push(key);
  }
  return { from, to, events: records.length, keys };
}
