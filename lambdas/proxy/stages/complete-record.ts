// Complete: the transcript (redacted, transcript.ts) goes to the transcript
// store — three attempts — and the record gets status, bytes, duration, its
// phase, the transcript's SHA-256 and its hash-chain link (core/audit-chain.ts). When the store would not take the transcript, it is kept (compressed)
// in the record, marked incomplete, until `airlock audit repair`. A record that
// cannot be completed stays "started": the request is not unrecorded.
import { setImmediate as yieldToIo, setTimeout as sleep } from 'node:timers/promises';
import type { RequestRecord } from '../../core/model.ts';
import { spool, transcriptKeyFor } from '../../core/transcripts.ts';
import { sealRecord } from '../../core/audit-chain.ts';
import { errorText } from '../../core/errors.ts';
import { buildTranscript, type Answer } from '../transcript.ts';
import type { ProxyRequest } from '../gateway.ts';
import type { ResolvedOptions } from './context.ts';

const TRANSCRIPT_ATTEMPTS = 3;

export async function completeRecord(record: RequestRecord, request: ProxyRequest, answer: Answer, options: ResolvedOptions, note?: string): Promise<void> {
  const durationMs = options.now() - record.time;
  // The answer's last bytes go to the socket first: without this turn, building the transcript and
  // signing its upload (a millisecond or two of CPU) ran before the response's end was flushed.
  await yieldToIo();
  const transcriptKey = transcriptKeyFor(record);
  const transcript = buildTranscript(record, request, answer, durationMs, note);
  const transcriptError = await writeTranscript(transcriptKey, transcript, options);
  const completed: RequestRecord = { ...record, status: answer.status, requestBytes: request.body.length, responseBytes: answer.bytes, durationMs, transcriptKey };
  try {
    // The transcript's digest and the record's chain link go in the same write (core/audit-chain.ts).
    const { chainError } = await sealRecord(options.records, completed, transcript, options.now, {
      phase: transcriptError ? 'incomplete' : 'complete',
      // The store would not take it: the transcript is kept (compressed) in the record until `airlock audit repair`.
      ...(transcriptError ? { transcriptError, transcriptSpool: spool(transcript) } : {}),
    });
    if (chainError) options.log.error('record completed without its chain link', { requestId: record.id, error: chainError });
  } catch (error) {
    // The write-ahead record exists (phase "started"), so the request is not
    // unrecorded; an auditor sees it as not completed.
    options.log.error('could not complete the record', { requestId: record.id, error: errorText(error) });
  }
}

/** Undefined once written; else why not, after the last attempt. */
async function writeTranscript(key: string, body: string, options: ResolvedOptions): Promise<string | undefined> {
  let lastError: unknown;
  for (let attempt = 0; attempt < TRANSCRIPT_ATTEMPTS; attempt++) {
    if (attempt > 0) await sleep(50 * 4 ** (attempt - 1));
    try {
      await options.transcripts.put(key, body);
      return undefined;
    } catch (error) {
      // A retry after a write that did land is answered as written (the store keeps the first).
      lastError = error;
    }
  }
  options.log.error('transcript write failed', { key, error: errorText(lastError) });
  return `transcript not written: ${errorText(lastError)}`;
}
