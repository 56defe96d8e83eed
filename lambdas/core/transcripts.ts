// Where a transcript lives, and how it is kept inside its record while S3 is unavailable.
import { gunzipSync, gzipSync } from 'node:zlib';
import { NAME_PATTERN } from './ids.ts';

/** Largest spooled transcript kept in a record (DynamoDB items are limited to 400 KB). */
const SPOOL_LIMIT_BYTES = 300 * 1024;

/** gzip+base64 of a transcript, or of a note saying how much did not fit. */
export function spool(body: string): string {
  const packed = gzipSync(body).toString('base64');
  if (packed.length <= SPOOL_LIMIT_BYTES) return packed;
  return gzipSync(JSON.stringify({ note: `transcript of ${body.length} bytes too large to keep in the record while S3 was unavailable` })).toString('base64');
}

export function unspool(packed: string): string {
  return gunzipSync(Buffer.from(packed, 'base64')).toString('utf8');
}

/** Predictable, sortable transcript keys: transcripts/{connection}/{yyyy}/{mm}/{dd}/{id}.json */
export function transcriptKeyFor(record: { id: string; connection: string; time: number }): string {
  const day = new Date(record.time).toISOString().slice(0, 10).replaceAll('-', '/');
  const connection = NAME_PATTERN.test(record.connection) ? record.connection : '_invalid';
  return `transcripts/${connection}/${day}/${record.id}.json`;
}
