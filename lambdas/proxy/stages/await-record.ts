// The write-ahead rule: nothing is forwarded until the record begun beside the
// state read is written (else 503). The record then says "allowed" and holds
// the query as forwarded — with the window's deadline, and a log read's default
// bounds — before it goes out.
import { AirlockError } from '../../core/status.ts';
import { errorText } from '../../core/errors.ts';
import type { Approved, ResolvedOptions, Recorded } from './context.ts';

export async function awaitRecord(approved: Approved, options: ResolvedOptions): Promise<Recorded> {
  const { begun, bound, kube, decision, record } = approved;
  const outcome = await begun;
  if (!outcome.written) {
    options.log.error('write-ahead record failed; refusing', { requestId: record.id, error: errorText(outcome.error) });
    throw recorderUnavailable();
  }
  if (bound.query !== kube.query) {
    await options.records.complete(record.id, { query: bound.query, ...(bound.logBound ? { logBound: bound.logBound } : {}) }).catch((error: unknown) => {
      options.log.error('write-ahead record not updated with the forwarded query; refusing', { requestId: record.id, error: errorText(error) });
      throw recorderUnavailable();
    });
  }
  return { ...approved, record: { ...record, query: bound.query, ...(bound.logBound ? { logBound: bound.logBound } : {}), decision: 'allowed', reason: decision.reason } };
}

function recorderUnavailable(): AirlockError {
  return new AirlockError(503, 'recorder_unavailable', 'the audit recorder is unavailable, so nothing was forwarded; retry shortly');
}
