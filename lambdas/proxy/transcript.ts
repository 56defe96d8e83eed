// The transcript of one request: what was asked and what came back, with
// credentials and Secret values redacted (core/redaction.ts). Written to the
// transcript store beside the record (stages/complete-record.ts).
import type { RequestRecord } from '../core/model.ts';
import { commandLine } from '../core/kube-request.ts';
import { redactBody, redactCommandLine, redactHeaders, redactText, type RedactionContext } from '../core/redaction.ts';
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
  const exec = record.verb === 'exec' && record.subresource === 'exec';
  const framedExec = exec && answer.status === 200 && answer.contentType === 'application/x-ndjson';
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
      // An exec's query is its command line: kept as `command`, redacted like any command line an approver reads.
      ...(exec ? execRequest(record.query, request.body) : { query: record.query }),
      headers: redactHeaders(flattenHeaders(request.headers)),
      ...(record.forwardedHeaders ? { forwarded: record.forwardedHeaders } : {}),
      ...(exec ? {} : { body: redactBody(request.body, true, request.body.length, request.headers['content-type']?.[0] ?? '', context).body }),
      bytes: request.body.length,
    },
    response: {
      status: answer.status,
      headers: answer.headers,
      ...(framedExec ? { exec: execOutput(answer) } : { body: redactBody(answer.captured, answer.complete, answer.bytes, answer.contentType, context).body }),
      bytes: answer.bytes,
    },
    durationMs,
  });
}

function flattenHeaders(headers: Record<string, string[]>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, values]) => [name, values.join(', ')]));
}

/** An exec as the transcript keeps it: the command line, the container and stdin (redacted text). */
function execRequest(query: string, stdin: Buffer): Record<string, unknown> {
  const params = new URLSearchParams(query);
  return {
    command: redactCommandLine(commandLine(params.getAll('command'))),
    ...(params.get('container') ? { container: params.get('container') } : {}),
    ...(params.get('stdin') === 'true' ? { stdin: redactText(stdin.toString('utf8')) } : {}),
  };
}

/**
 * What the command wrote (stdout and stderr each whole, then redacted) and how it ended, from the
 * framed answer as far as it was captured; `truncated` when the capture limit cut it.
 */
function execOutput(answer: Answer): Record<string, unknown> {
  const text = { stdout: '', stderr: '' };
  let end: unknown;
  const lines = answer.captured.toString('utf8').split('\n');
  // A cut last line cannot be read.
  if (!answer.complete) lines.pop();
  for (const line of lines) {
    if (!line) continue;
    let event: { stream?: unknown; data?: unknown; exit?: unknown; error?: unknown };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      continue;
    }
    if ((event.stream === 'stdout' || event.stream === 'stderr') && typeof event.data === 'string') text[event.stream] += event.data;
    else if (event.exit !== undefined) end = { exit: event.exit };
    else if (event.error !== undefined) end = { error: event.error };
  }
  return {
    stdout: redactText(text.stdout),
    stderr: redactText(text.stderr),
    ...(typeof end === 'object' && end !== null ? end : {}),
    ...(answer.complete ? {} : { truncated: true }),
  };
}
