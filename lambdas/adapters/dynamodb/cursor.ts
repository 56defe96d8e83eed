// The records' page cursor: which partition (index key) was being read and
// DynamoDB's LastEvaluatedKey there, as opaque base64url JSON.
import { InvalidCursorError } from '../../core/errors.ts';
import type { Item } from './expressions.ts';

export interface CursorPosition {
  /** Index into the query's list of partitions. */
  partition: number;
  /** Where DynamoDB stopped in that partition; absent: at its start. */
  key?: Item;
}

export function encodeCursor(position: CursorPosition): string {
  return Buffer.from(JSON.stringify({ p: position.partition, ...(position.key ? { k: position.key } : {}) })).toString('base64url');
}

/** The position a cursor from a previous page points at; InvalidCursorError for anything else. */
export function decodeCursor(cursor: string, partitions: number): CursorPosition {
  try {
    const decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { p: number; k?: Item };
    if (!Number.isInteger(decoded.p) || decoded.p < 0 || decoded.p >= partitions) throw new Error('bad partition');
    return { partition: decoded.p, key: decoded.k };
  } catch (error) {
    throw new InvalidCursorError({ cause: error });
  }
}
