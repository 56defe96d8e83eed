// POST /v1/exec in place of forward: Airlock opens the exec stream to the API
// server itself (../exec-client.ts) with the connection's credential, over TLS
// verified against the connection's CA, and the framed output goes back like
// any response (streamBack: the stream guard, capture, record, transcript).
// The API server's own refusal (no such pod, forbidden) goes back as it came.
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { errorText } from '../../core/errors.ts';
import { AirlockError } from '../../core/status.ts';
import type { Forwarded, Recorded, ResolvedOptions } from './context.ts';
import type { ExecAsk } from './read-exec.ts';

/** The framing of POST /v1/exec's answer (exec-client.ts): one JSON object a line. */
export const EXEC_CONTENT_TYPE = 'application/x-ndjson';

export async function openExec(recorded: Recorded, ask: ExecAsk, options: ResolvedOptions): Promise<Forwarded> {
  const { kube, agent, connection, grant, record } = recorded;
  if (!options.executor) throw new AirlockError(501, 'exec_not_configured', 'this gateway cannot open exec streams');
  let opened;
  try {
    const credential = await options.upstreamAuth.credentialFor({ agentId: agent.id, agentName: agent.name, grantId: grant.id }, connection);
    opened = await options.executor.open({
      server: connection.server,
      caPem: connection.caPem,
      pathAndQuery: `${kube.path}?${record.query}`,
      headers: { ...recorded.forwardedHeaders, 'audit-id': record.id, authorization: credential.authorization },
      stdin: ask.stdin,
      timeoutMs: ask.timeoutMs,
      maxOutputBytes: options.execMaxOutputBytes,
    });
  } catch (error) {
    // The executor's own refusal (it could not be loaded: proxy/lazy.ts) says what it is.
    if (error instanceof AirlockError) throw error;
    throw new AirlockError(502, 'upstream_unavailable', `the cluster behind "${connection.name}" could not be reached: ${errorText(error, { name: false })}`);
  }
  if (opened.upgraded) return { ...recorded, upstream: asResponse(opened.output, 200, { 'content-type': EXEC_CONTENT_TYPE }) };
  const answer = new PassThrough();
  answer.end(opened.body);
  return { ...recorded, upstream: asResponse(answer, opened.status, opened.headers) };
}

/** A stream with a status and headers, as streamBack reads the API server's responses. */
function asResponse(body: Readable, statusCode: number, headers: Record<string, string>): IncomingMessage {
  return Object.assign(body, { statusCode, headers }) as unknown as IncomingMessage;
}
