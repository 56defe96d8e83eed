// Tamper evidence for the records. Each completed record is a link of a hash
// chain: its partition is (connection, agent, writer, UTC day) — the writer is
// the process (a Lambda instance serves one request at a time), so no two
// processes ever append to one chain and an agent's concurrent requests never
// race each other across instances; within a process, appends to a partition
// take turns in a queue. The head is still moved by a conditional write (read
// the head, write seq+1 only if it is still what was read), so a clash could
// never fork a chain. The link's hash covers the previous link's
// hash and the record's audited fields, the transcript's SHA-256 among them.
// `verifyChains` recomputes all of it: a deleted record is a gap in the
// sequence, an edited one a hash that no longer matches, a replaced transcript
// a digest that differs.
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { canonicalJson } from './canonical-json.ts';
import type { ChainHead, ChainLink, RequestRecord } from './model.ts';
import type { RecordStore } from './ports.ts';

/** The `prev` of a partition's first link. */
export const CHAIN_START = `sha256:${'0'.repeat(64)}`;

/** Attempts to take the next place in a partition before the record is left unchained (verify reports it). */
const APPEND_ATTEMPTS = 40;

/** What the chain vouches for: everything an auditor reads in a record except its bookkeeping (phase, spool). */
const AUDITED_FIELDS = [
  'id',
  'time',
  'agentId',
  'agent',
  'connection',
  'method',
  'path',
  'query',
  'verb',
  'apiGroup',
  'resource',
  'subresource',
  'namespace',
  'name',
  'decision',
  'reason',
  'grantId',
  'approvalId',
  'planId',
  'policyVersion',
  'status',
  'requestBytes',
  'responseBytes',
  'durationMs',
  'transcriptKey',
  'transcriptSha256',
  'userAgent',
  'sourceIp',
  'forwardedHeaders',
  'streamEnd',
  'streamEndReason',
] as const satisfies readonly (keyof RequestRecord)[];

export type AuditedFields = Pick<RequestRecord, (typeof AUDITED_FIELDS)[number]>;

export function sha256Text(text: string): string {
  return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}

/** This process's writer id: its chains are its own. */
const WRITER = `w${randomBytes(6).toString('base64url')}`;

/** connection/agentId/writer/yyyy-mm-dd: one chain per agent per connection per writing process per day. */
export function chainPartition(record: Pick<RequestRecord, 'connection' | 'agentId' | 'time'>, writer = WRITER): string {
  return `${record.connection}/${record.agentId}/${writer}/${new Date(record.time).toISOString().slice(0, 10)}`;
}

/** Whether a partition name is one of the record's own (its connection, agent and day; any writer). */
export function partitionOwns(partition: string, record: Pick<RequestRecord, 'connection' | 'agentId' | 'time'>): boolean {
  const [connection, agentId, writer, day, ...rest] = partition.split('/');
  return rest.length === 0 && writer !== undefined && connection === record.connection && agentId === record.agentId && day === new Date(record.time).toISOString().slice(0, 10);
}

export function auditedFields(record: RequestRecord): Partial<AuditedFields> {
  const picked: Record<string, unknown> = {};
  for (const field of AUDITED_FIELDS) if (record[field] !== undefined) picked[field] = record[field];
  return picked as Partial<AuditedFields>;
}

export function linkHash(prev: string, record: RequestRecord): string {
  return sha256Text(`${prev}\n${canonicalJson(auditedFields(record))}`);
}

/** Appends waiting per partition of this process, and the partitions being written now. */
const waiting = new Map<string, { record: RequestRecord; resolve: (link: ChainLink) => void; reject: (error: unknown) => void }[]>();
const writing = new Set<string>();
/** The head this process last wrote per partition (it is the partition's only writer): no read before each move. */
const knownHeads = new Map<string, ChainHead>();
const KNOWN_HEADS_MAX = 10_000;

/**
 * Takes the next place in the record's partition. Runs when the request is over
 * (the agent already has its answer). This process is the partition's only
 * writer: its appends are batched (what arrives while a batch is written goes
 * in the next) and each batch moves the head once, conditionally, from the head
 * it wrote last — one round trip per batch, a read only after a restart.
 */
export function appendToChain(records: RecordStore, record: RequestRecord, now: () => number): Promise<ChainLink> {
  const partition = chainPartition(record);
  return new Promise<ChainLink>((resolve, reject) => {
    const queue = waiting.get(partition) ?? [];
    queue.push({ record, resolve, reject });
    waiting.set(partition, queue);
    if (!writing.has(partition)) void drain(records, partition, now);
  });
}

/** Writes a partition's waiting appends, batch by batch: every append that arrived while one batch was written goes in the next. */
async function drain(records: RecordStore, partition: string, now: () => number): Promise<void> {
  writing.add(partition);
  try {
    for (let batch = waiting.get(partition); batch?.length; batch = waiting.get(partition)) {
      waiting.delete(partition);
      try {
        const links = await takePlaces(
          records,
          partition,
          batch.map((item) => item.record),
          now,
        );
        batch.forEach((item, index) => item.resolve(links[index]!));
      } catch (error) {
        for (const item of batch) item.reject(error);
      }
    }
  } finally {
    writing.delete(partition);
  }
}

/** The next places of the partition for `batch`, in order, by one conditional move of its head. */
async function takePlaces(records: RecordStore, partition: string, batch: RequestRecord[], now: () => number): Promise<ChainLink[]> {
  for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
    if (attempt > 0) await sleep(Math.random() * Math.min(50, 2 * attempt));
    const head = knownHeads.get(partition) ?? (await records.chainHead(partition));
    let prev = head?.hash ?? CHAIN_START;
    let seq = head?.seq ?? 0;
    const links = batch.map((record): ChainLink => {
      const link = { partition, seq: ++seq, prev, hash: linkHash(prev, record) };
      prev = link.hash;
      return link;
    });
    const moved: ChainHead = { partition, seq, hash: prev, time: now() };
    if (await records.advanceChain(partition, head, moved)) {
      if (knownHeads.size >= KNOWN_HEADS_MAX) knownHeads.delete(knownHeads.keys().next().value!);
      knownHeads.set(partition, moved);
      return links;
    }
    // The head is not what this process wrote last (it cannot be, unless written elsewhere): read it again.
    knownHeads.delete(partition);
  }
  throw new Error(`the chain ${partition} stayed busy for ${APPEND_ATTEMPTS} attempts`);
}

/**
 * Completes a record with its transcript's digest and its chain link, in one
 * write. When the chain cannot be joined the record is still completed, without
 * a link (verify reports it as unchained): the request stays recorded.
 */
export async function sealRecord(
  records: RecordStore,
  record: RequestRecord,
  transcript: string | undefined,
  now: () => number,
  bookkeeping: Pick<RequestRecord, 'phase' | 'transcriptError' | 'transcriptSpool'>,
): Promise<{ chainError?: string }> {
  const sealed: RequestRecord = { ...record, ...(transcript !== undefined ? { transcriptSha256: sha256Text(transcript) } : {}) };
  let chain: ChainLink | undefined;
  let chainError: string | undefined;
  try {
    chain = await appendToChain(records, sealed, now);
  } catch (error) {
    chainError = error instanceof Error ? error.message : String(error);
  }
  const { id: _id, ...fields } = auditedFields(sealed);
  await records.complete(record.id, { ...fields, ...bookkeeping, ...(chain ? { chain } : {}) });
  return chainError ? { chainError } : {};
}

export type ChainProblemKind = 'gap' | 'edited' | 'unchained' | 'transcript-missing' | 'transcript-replaced';

export interface ChainProblem {
  kind: ChainProblemKind;
  partition?: string;
  recordId?: string;
  seq?: number;
  detail: string;
}

export interface ChainReport {
  /** Start of the first UTC day checked (whole days: a chain starts at midnight). */
  since: number;
  records: number;
  partitions: number;
  transcripts: number;
  /** Records still in flight (or left by a gateway that stopped): not yet chained, not a finding. */
  unfinished: string[];
  problems: ChainProblem[];
}

export function startOfDay(time: number): number {
  const day = new Date(time);
  return Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate());
}

/** Recomputes every chain of the days from `since` and every transcript digest. */
export async function verifyChains(input: {
  since: number;
  records: RequestRecord[];
  heads: ChainHead[];
  readTranscript: (record: RequestRecord) => Promise<string | undefined>;
}): Promise<ChainReport> {
  const since = startOfDay(input.since);
  const sinceDay = new Date(since).toISOString().slice(0, 10);
  const problems: ChainProblem[] = [];
  const unfinished: string[] = [];
  const partitions = new Map<string, { head?: ChainHead; records: RequestRecord[] }>();
  const partitionOf = (name: string) => partitions.get(name) ?? partitions.set(name, { records: [] }).get(name)!;
  for (const head of input.heads) if (head.partition.slice(-10) >= sinceDay) partitionOf(head.partition).head = head;
  const records = input.records.filter((record) => record.time >= since);
  for (const record of records) {
    if (record.chain) partitionOf(record.chain.partition).records.push(record);
    else if (record.phase === 'started') unfinished.push(record.id);
    else problems.push({ kind: 'unchained', recordId: record.id, partition: chainPartition(record, '*'), detail: `${record.id} is completed but carries no chain link` });
  }

  for (const [partition, { head, records: linked }] of partitions) {
    const bySeq = new Map<number, RequestRecord>();
    for (const record of linked) {
      const link = record.chain!;
      if (bySeq.has(link.seq)) problems.push({ kind: 'edited', partition, seq: link.seq, recordId: record.id, detail: `two records claim place ${link.seq}` });
      bySeq.set(link.seq, record);
      if (link.partition !== partition || !partitionOwns(partition, record))
        problems.push({ kind: 'edited', partition, seq: link.seq, recordId: record.id, detail: `${record.id}: its connection, agent or time no longer match its chain` });
      else if (linkHash(link.prev, record) !== link.hash)
        problems.push({ kind: 'edited', partition, seq: link.seq, recordId: record.id, detail: `${record.id}: its fields no longer match its hash (edited)` });
    }
    const last = Math.max(head?.seq ?? 0, ...bySeq.keys());
    if (!head) problems.push({ kind: 'edited', partition, detail: `the chain's head is missing (records up to place ${last} remain)` });
    for (let seq = 1; seq <= last; seq++) {
      const record = bySeq.get(seq);
      if (!record) {
        problems.push({ kind: 'gap', partition, seq, detail: `place ${seq} of ${last} is missing (a record was deleted)` });
        continue;
      }
      const expected = seq === 1 ? CHAIN_START : bySeq.get(seq - 1)?.chain?.hash;
      if (expected !== undefined && record.chain!.prev !== expected)
        problems.push({ kind: 'edited', partition, seq, recordId: record.id, detail: `${record.id} does not follow place ${seq - 1} (the chain was rewritten)` });
    }
    if (head && bySeq.get(head.seq) && bySeq.get(head.seq)!.chain!.hash !== head.hash)
      problems.push({ kind: 'edited', partition, seq: head.seq, detail: `the head does not match the record at place ${head.seq}` });
  }

  let transcripts = 0;
  const withTranscript = records.filter((record) => record.transcriptSha256 !== undefined);
  for (let start = 0; start < withTranscript.length; start += 16) {
    await Promise.all(
      withTranscript.slice(start, start + 16).map(async (record) => {
        const text = await input.readTranscript(record);
        transcripts++;
        if (text === undefined)
          problems.push({ kind: 'transcript-missing', recordId: record.id, partition: record.chain?.partition, detail: `${record.id}: its transcript ${record.transcriptKey ?? ''} is missing` });
        else if (sha256Text(text) !== record.transcriptSha256)
          problems.push({
            kind: 'transcript-replaced',
            recordId: record.id,
            partition: record.chain?.partition,
            detail: `${record.id}: its transcript ${record.transcriptKey ?? ''} is not the one recorded`,
          });
      }),
    );
  }
  problems.sort((a, b) => (a.partition ?? '').localeCompare(b.partition ?? '') || (a.seq ?? 0) - (b.seq ?? 0));
  return { since, records: records.length, partitions: partitions.size, transcripts, unfinished, problems };
}
