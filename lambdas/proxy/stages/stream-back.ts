// The response streams back to the agent under the stream guard
// (../stream-guard.ts): it ends at the window's end, within one recheck of a
// revoke or a disable, or when the state cannot be re-read. What passes is
// captured for the transcript; when it ends, the record is completed.
import { AirlockError, kubernetesStatus } from '../../core/status.ts';
import { EXEC_CONTENT_TYPE } from './open-exec.ts';
import { assertWindowOpen } from '../../core/windows.ts';
import { CaptureStream } from '../capture.ts';
import { logBoundWarning } from '../../core/log-bounds.ts';
import { guardStream } from '../stream-guard.ts';
import { completeRecord } from './complete-record.ts';
import type { GatewayResult } from '../gateway.ts';
import type { Forwarded, ResolvedOptions } from './context.ts';

/** Response headers passed back to the agent. */
const FORWARDED_RESPONSE_HEADERS = [
  'content-type',
  'cache-control',
  'warning',
  'audit-id',
  'retry-after',
  'x-content-type-options',
  'x-kubernetes-pf-flowschema-uid',
  'x-kubernetes-pf-prioritylevel-uid',
];

export function streamBack(forwarded: Forwarded, options: ResolvedOptions): GatewayResult {
  const { upstream, kube, agent, connection, grant, windowEndsAt, bound, record, request } = forwarded;
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_RESPONSE_HEADERS) {
    const value = upstream.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  headers['x-airlock-request-id'] = record.id;
  if (bound.logBound) headers.warning = [headers.warning, logBoundWarning(bound.logBound)].filter(Boolean).join(', ');
  const contentType = headers['content-type'] ?? '';

  const capture = new CaptureStream(options.transcriptCaptureBytes);
  // POST /v1/exec's framing: whole lines, and Airlock's end is its {"error": Status} line.
  const execFramed = kube.verb === 'exec' && upstream.statusCode === 200 && contentType === EXEC_CONTENT_TYPE;
  const ended = guardStream({
    upstream,
    output: capture,
    jsonWatch: execFramed || (kube.verb === 'watch' && upstream.statusCode === 200 && contentType.startsWith('application/json')),
    ...(execFramed ? { endLine: (error: AirlockError) => ({ error: kubernetesStatus(error) }) } : {}),
    windowEndsAt,
    // Only a watch's timeoutSeconds ends it at the window's end; a capped `timeout` ends a request that finishes anyway.
    capped: bound.capped && kube.verb === 'watch',
    now: options.now,
    recheck: async () => {
      const context = await options.state.getProxyContext(agent.id, connection.name, grant.id);
      assertWindowOpen(context, { agentId: agent.id, connection: connection.name }, options.now());
    },
    recheckMs: options.streamRecheckMs,
    recheckTimeoutMs: options.streamRecheckTimeoutMs,
    windowEnded: () =>
      new AirlockError(
        410,
        'window_expired',
        `access window ${grant.id} ended at ${new Date(windowEndsAt).toISOString()} (Airlock ended this stream); request a new one: airlock access request --connection ${connection.name} --duration 30m --reason "..."`,
      ),
  });
  const done = ended.then((outcome) =>
    completeRecord(
      { ...record, streamEnd: outcome.how, streamEndReason: outcome.reason },
      request,
      {
        status: upstream.statusCode ?? 0,
        headers,
        captured: capture.captured(),
        complete: !capture.truncated && outcome.how === 'complete',
        bytes: capture.bytes,
        contentType,
      },
      options,
    ),
  );
  return { response: { statusCode: upstream.statusCode ?? 502, headers, body: capture }, done };
}
