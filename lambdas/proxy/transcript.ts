// The transcript of one request: what was asked and what came back, with
// credentials and Secret values redacted (core/redaction.ts). Written to the
// transcript store beside the record (stages/complete-record.ts).
import type { RequestRecord } from '../core/model.ts';
import { redactBody, redactHeaders, type RedactionContext } from '../core/redaction.ts';
import type { ProxyRequest } from './gateway.ts';

/** The response as the transcript keeps it. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  /** The first bytes of the body (the capture limit). */
  captured: Buffer;
  /** Whether `captured` is the whole body. */
  complete: boolean;
  bytes: number;
  contentType: string;
}

export function buildTranscript(record: RequestRecord, request: ProxyRequest, answer: Answer, durationMs: number, note?: string): string {
  const context: RedactionContext = { secretsResource: record.resource === 'secrets', logText: record.resource === 'pods' && record.subresource === 'log' };
  return JSON.stringify({
    id: record.id,
    time: new Date(record.time).toISOString(),
    agent: record.agent,
    agentId: record.agentId,
    connection: record.connection,
    decision: record.decision,
    reason: record.reason,
    ...(note ? { note } : {}),
    ...(record.streamEnd ? { streamEnd: { how: record.streamEnd, reason: record.streamEndReason } } : {}),
    request: {
      method: record.method,
      path: record.path,
      query: record.query,
      headers: redactHeaders(flattenHeaders(request.headers)),
      ...(record.forwardedHeaders ? { forwarded: record.forwardedHeaders } : {}),
      body: redactBody(request.body, true, request.body.length, request.headers['content-type']?.[0] ?? '', context).body,
      bytes: request.body.length,
    },
    response: {
      status: answer.status,
      headers: answer.headers,
      body: redactBody(answer.captured, answer.complete, answer.bytes, answer.contentType, context).body,
      bytes: answer.bytes,
    },
    durationMs,
  });
}

function flattenHeaders(headers: Record<string, string[]>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, values]) => [name, values.join(', ')]));
}
