// A refusal at any stage: the agent gets a Kubernetes Status; the record is
// completed with the decision (refusals.ts) — the begun record when it was
// written, else a new one — and a transcript, like any request. Once the record
// says "allowed" (the cluster could not be reached), it stays allowed and the
// failure is its outcome.
import type { RequestRecord } from '../../core/model.ts';
import { asAirlockError, AirlockError } from '../../core/status.ts';
import { errorText } from '../../core/errors.ts';
import { recordedDecision, recordedReason, statusResponse } from '../refusals.ts';
import type { Answer } from '../transcript.ts';
import { completeRecord } from './complete-record.ts';
import type { GatewayResult } from '../gateway.ts';
import type { Known, ResolvedOptions } from './context.ts';

export function refuse(known: Known, error: unknown, options: ResolvedOptions): GatewayResult {
  const refusal = asAirlockError(error);
  const { record, request } = known;
  if (!(error instanceof AirlockError)) options.log.error('unexpected error in the proxy path', { requestId: record.id, error: errorText(error) });
  const response = statusResponse(refusal, record.id);
  const answer: Answer = { status: refusal.status, headers: {}, captured: Buffer.from(response.body), complete: true, bytes: Buffer.byteLength(response.body), contentType: 'application/json' };
  if (record.decision === 'allowed') return { response, done: completeRecord(record, request, answer, options, refusal.message) };
  const approvalId = typeof refusal.details?.approvalId === 'string' ? refusal.details.approvalId : record.approvalId;
  const refused: RequestRecord = { ...record, decision: recordedDecision(refusal), reason: recordedReason(refusal), approvalId };
  const done = recordRefusal(known, refused, refusal.code, options).then((recorded) => (recorded ? completeRecord(refused, request, answer, options) : undefined));
  return { response, done };
}

/** Whether the refusal has a record to complete: the one begun beside the state read, or a new one. */
async function recordRefusal(known: Known, refused: RequestRecord, code: string, options: ResolvedOptions): Promise<boolean> {
  if ('begun' in known && (await known.begun).written) return true;
  try {
    await options.records.begin(refused);
    return true;
  } catch (error) {
    options.log.error('could not record a refusal', { requestId: refused.id, code, error: errorText(error) });
    return false;
  }
}
