// The write-ahead record goes out now, beside the state read: the request is
// forwarded only once both have succeeded (awaitRecord), so it is never
// unrecorded, and the two round trips overlap. It says "pending"; its decision
// is filled in when the request completes or is refused.
import type { Begun, Headed, ResolvedOptions, RecordBegun } from './context.ts';

export function beginRecord(headed: Headed, options: ResolvedOptions): Begun {
  const begun = options.records.begin(headed.record).then(
    (): RecordBegun => ({ written: true }),
    (error: unknown): RecordBegun => ({ written: false, error: error ?? new Error('record not written') }),
  );
  return { ...headed, begun };
}
