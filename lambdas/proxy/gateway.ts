// The single path. Every agent request to /k8s/{connection}/... runs these
// steps in this order, and any step that cannot be checked refuses:
//
//   1 token      signature, type, issuer, expiry, audience = connection
//   2 state      agent enabled, window active/unexpired/unrevoked (read now)
//   3 request    parse verb/group/resource/subresource/namespace/name
//   4 scope      policy on the request and every effect (core/effects.ts):
//                deny > approve > allow > default deny
//   5 approval   risky request: one-time approval of this exact request
//   6 record     write-ahead record; if it cannot be written, refuse (503)
//   7 forward    connection credential, CA-verified TLS, agent auth and
//                Impersonate-* never forwarded; the response is streamed
//   8 complete   record status/bytes/duration, transcript (redacted) to S3
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { Agent, Connection, Grant, RequestRecord } from '../core/model.ts';
import type { RecordStore, StateStore, TranscriptStore } from '../core/ports.ts';
import { MAX_HEADER_VALUE_LENGTH, MAX_PATH_LENGTH, MAX_QUERY_LENGTH, parseKubeRequest, type KubeRequest } from '../core/kube-request.ts';
import { checksOf } from '../core/effects.ts';
import { evaluateRequest, type PolicyDecision } from '../core/policy.ts';
import { AirlockError, asAirlockError, kubernetesStatus } from '../core/status.ts';
import { assertWindowOpen, windowBoundQuery } from '../core/windows.ts';
import { newId, NAME_PATTERN } from '../core/ids.ts';
import { redactBody, redactHeaders, type RedactionContext } from '../core/redaction.ts';
import { spool, transcriptKeyFor } from '../core/transcripts.ts';
import type { TokenClaims, TokenService } from '../core/tokens.ts';
import type { Forwarder } from './forwarder.ts';
import type { UpstreamAuth } from './upstream-auth.ts';
import { guardStream } from './stream-guard.ts';

export interface ProxyRequest {
  connection: string;
  /** Path after /k8s/{connection}. */
  path: string;
  method: string;
  query: Record<string, string[]>;
  /** Lower-cased names; every value the client sent. */
  headers: Record<string, string[]>;
  body: Buffer;
  sourceIp?: string;
}

export interface ProxyResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: Readable | string;
}

/** The approval step: returns the id of the approval this request consumes, or throws a 403 naming the one to wait for. */
export interface RequestApprovalGate {
  authorize(input: HeldRequest): Promise<string>;
}

export interface HeldRequest {
  requestId: string;
  agent: Agent;
  connection: Connection;
  grant: Grant;
  kube: KubeRequest;
  method: string;
  body: Buffer;
  bodySha256: string;
  /** The Content-Type sent (part of what is approved). */
  contentType: string | undefined;
  decision: PolicyDecision;
}

export interface GatewayLog {
  info(message: string, fields: Record<string, unknown>): void;
  warn(message: string, fields: Record<string, unknown>): void;
  error(message: string, fields: Record<string, unknown>): void;
}

export interface GatewayOptions {
  state: StateStore;
  records: RecordStore;
  transcripts: TranscriptStore;
  tokens: TokenService;
  upstreamAuth: UpstreamAuth;
  forwarder: Forwarder;
  approvals?: RequestApprovalGate;
  log: GatewayLog;
  now?: () => number;
  /** Largest request body accepted (default 3 MiB). */
  maxRequestBodyBytes?: number;
  /** How much of a response body is captured for the transcript (default 1 MiB). */
  transcriptCaptureBytes?: number;
  /** While a response streams, the window, agent and revocation are re-read this often (default 2000 ms). */
  streamRecheckMs?: number;
  /** A re-read slower than this ends the stream as if it failed (default 3000 ms). */
  streamRecheckTimeoutMs?: number;
}

/** Request headers that may reach the cluster. Everything else — Authorization, Impersonate-*, X-Remote-*, cookies — is dropped. */
const FORWARDED_REQUEST_HEADERS = ['accept', 'content-type', 'user-agent', 'kubectl-command', 'kubectl-session'];
/** Response headers passed back to the agent. */
const FORWARDED_RESPONSE_HEADERS = ['content-type', 'cache-control', 'warning', 'audit-id', 'retry-after', 'x-content-type-options', 'x-kubernetes-pf-flowschema-uid', 'x-kubernetes-pf-prioritylevel-uid'];
const INTERACTIVE_VERBS = new Set(['exec', 'attach', 'portforward']);
/** Headers that ask the cluster to treat the request as someone else. Refused outright. */
const IDENTITY_HEADER = /^(impersonate-|x-remote-)/;

export interface GatewayResult {
  response: ProxyResponse;
  /** Settles once the record is complete and the transcript written (after the body has streamed). */
  done: Promise<void>;
}

export class Gateway {
  private readonly options: Required<Pick<GatewayOptions, 'maxRequestBodyBytes' | 'transcriptCaptureBytes' | 'now' | 'streamRecheckMs' | 'streamRecheckTimeoutMs'>> & GatewayOptions;

  constructor(options: GatewayOptions) {
    this.options = {
      ...options,
      maxRequestBodyBytes: options.maxRequestBodyBytes ?? 3 * 1024 * 1024,
      transcriptCaptureBytes: options.transcriptCaptureBytes ?? 1024 * 1024,
      now: options.now ?? Date.now,
      streamRecheckMs: options.streamRecheckMs ?? 2000,
      streamRecheckTimeoutMs: options.streamRecheckTimeoutMs ?? 3000,
    };
  }

  async handle(request: ProxyRequest): Promise<GatewayResult> {
    const { state, records, now } = this.options;
    const started = now();
    const requestId = newId('req');
    const trace: Partial<RequestRecord> & { id: string } = {
      id: requestId,
      time: started,
      agentId: '-',
      agent: '(unauthenticated)',
      connection: request.connection,
      method: request.method,
      path: request.path,
      query: '',
      userAgent: request.headers['user-agent']?.[0]?.slice(0, MAX_HEADER_VALUE_LENGTH),
      sourceIp: request.sourceIp,
    };
    // Whether the write-ahead record was written (a refusal then completes it instead of writing a new one).
    let begun: Promise<boolean> = Promise.resolve(false);
    try {
      if (!NAME_PATTERN.test(request.connection)) throw new AirlockError(404, 'connection_not_found', `no connection named "${request.connection.slice(0, 64)}"`);
      if (request.body.length > this.options.maxRequestBodyBytes) {
        throw new AirlockError(413, 'body_too_large', `request body is ${request.body.length} bytes; the limit is ${this.options.maxRequestBodyBytes}`);
      }

      // 1 token (and the request itself: both are checks on what the agent sent)
      const claims = await this.authenticate(request);
      trace.agentId = claims.agentId;
      trace.agent = claims.agentName;
      trace.grantId = claims.grantId;
      const kube = parseKubeRequest(request.method, request.path, request.query);
      Object.assign(trace, {
        query: kube.query,
        verb: kube.verb,
        apiGroup: kube.apiGroup,
        resource: kube.resource,
        subresource: kube.subresource,
        namespace: kube.namespace,
        name: kube.name,
      });
      trace.forwardedHeaders = forwardedHeadersOf(request);
      for (const header of Object.keys(request.headers)) {
        // Discovery is answered the same for everyone, so kubectl --as reaches the real
        // request and prints the refusal there (the headers are never forwarded anyway).
        if (IDENTITY_HEADER.test(header) && kube.kind !== 'discovery') {
          throw new AirlockError(403, 'impersonation_refused', `the ${header} header is not allowed through Airlock: requests always run as the connection's identity`);
        }
      }

      // The write-ahead record (6) goes out now, beside the state read (2): the
      // request is forwarded only once both have succeeded, so it is never
      // unrecorded, and the two round trips overlap. Its decision is filled in
      // when the request completes (or is refused).
      const record = this.recordOf(trace, kube, 'pending', 'checking');
      const recorded = records.begin(record).then(
        () => undefined,
        (error: unknown) => error ?? new Error('record not written'),
      );
      begun = recorded.then((error) => error === undefined);

      // 2 state, read now
      const context = await state.getProxyContext(claims.agentId, request.connection, claims.grantId).catch((error: unknown) => {
        this.options.log.error('state store unavailable; refusing', { requestId, error: errorName(error) });
        throw new AirlockError(503, 'state_unavailable', 'the window and policy cannot be checked right now, so nothing was forwarded; retry shortly');
      });
      assertWindowOpen(context, { agentId: claims.agentId, connection: request.connection }, now());
      const { agent, connection, grant } = context;
      // The API server's own deadline, no later than the window's end (the stream guard ends it there anyway).
      const bound = windowBoundQuery(kube, grant.expiresAt!, now());
      trace.agent = agent.name;
      trace.policyVersion = connection.policyVersion;

      // 4 scope: every verb the API server authorizes the request as, and every effect it has
      const decision = evaluateRequest(connection.policy, checksOf(kube, { contentType: request.headers['content-type']?.[0], body: request.body }));
      trace.reason = decision.reason;
      if (decision.effect === 'deny') {
        throw new AirlockError(403, 'forbidden_by_policy', `${describe(kube)} is not allowed on "${connection.name}": ${decision.reason}`);
      }

      // Interactive sessions need a connection upgrade (SPDY/WebSocket) that API Gateway cannot carry.
      if (INTERACTIVE_VERBS.has(kube.verb) || request.headers.upgrade) {
        throw new AirlockError(501, 'interactive_not_supported', `${describe(kube)} needs an interactive (upgraded) connection, which Airlock does not carry; use kubectl logs, get and describe, or ask for a one-off Job to be approved`);
      }

      // 5 approval
      const bodySha256 = createHash('sha256').update(request.body).digest('hex');
      if (decision.effect === 'approve') {
        if (!this.options.approvals) {
          throw new AirlockError(403, 'approval_required', `${describe(kube)} needs a human approval (${decision.reason}), and approvals are not configured on this gateway`);
        }
        trace.approvalId = await this.options.approvals.authorize({ requestId, agent, connection, grant, kube, method: request.method, body: request.body, bodySha256, contentType: request.headers['content-type']?.[0], decision });
      }

      // 6 the write-ahead record must exist before anything is forwarded
      const recordError = await recorded;
      if (recordError !== undefined) {
        this.options.log.error('write-ahead record failed; refusing', { requestId, error: errorName(recordError) });
        begun = Promise.resolve(false);
        throw new AirlockError(503, 'recorder_unavailable', 'the audit recorder is unavailable, so nothing was forwarded; retry shortly');
      }
      // The record holds the query as forwarded: with the window's deadline, before it goes out.
      if (bound.query !== kube.query) {
        await records.complete(requestId, { query: bound.query }).catch((error: unknown) => {
          this.options.log.error('write-ahead record not updated with the forwarded query; refusing', { requestId, error: errorName(error) });
          throw new AirlockError(503, 'recorder_unavailable', 'the audit recorder is unavailable, so nothing was forwarded; retry shortly');
        });
      }

      // 7 forward
      return await this.forward(request, { ...record, query: bound.query, decision: 'allowed', reason: decision.reason, approvalId: trace.approvalId, agent: agent.name, policyVersion: connection.policyVersion }, kube, agent, connection, grant, bound.capped, started);
    } catch (error) {
      const refusal = asAirlockError(error);
      if (typeof refusal.details?.approvalId === 'string') trace.approvalId = refusal.details.approvalId;
      if (!(error instanceof AirlockError)) this.options.log.error('unexpected error in the proxy path', { requestId, error: errorName(error) });
      const response = statusResponse(refusal, requestId);
      const done = begun.then((exists) => this.recordRefusal(trace, refusal, request, response.body as string, started, exists));
      return { response, done };
    }
  }

  private async authenticate(request: ProxyRequest): Promise<TokenClaims> {
    const authorization = request.headers.authorization ?? [];
    if (authorization.length > 1) throw new AirlockError(400, 'duplicate_authorization', 'more than one Authorization header');
    const match = /^Bearer ([^\s]+)$/.exec(authorization[0] ?? '');
    const token = match?.[1] ?? '';
    try {
      return await this.options.tokens.verify(token, request.connection);
    } catch (error) {
      // A token for another connection when this one does not exist: say so plainly.
      if (error instanceof AirlockError && error.code === 'wrong_connection' && !(await this.options.state.getConnection(request.connection))) {
        throw new AirlockError(404, 'connection_not_found', `no connection named "${request.connection}"`);
      }
      throw error;
    }
  }

  private recordOf(trace: Partial<RequestRecord> & { id: string }, kube: KubeRequest | undefined, decision: RequestRecord['decision'], reason: string): RequestRecord {
    return {
      id: trace.id,
      time: trace.time!,
      agentId: trace.agentId!,
      agent: trace.agent!,
      connection: trace.connection!,
      method: trace.method!,
      // Whole for anything parsed (the parser refuses longer); a refused raw path is cut at the same limit.
      path: trace.path!.slice(0, MAX_PATH_LENGTH),
      query: (kube?.query ?? trace.query ?? '').slice(0, MAX_QUERY_LENGTH),
      verb: kube?.verb ?? trace.verb ?? '-',
      apiGroup: kube?.apiGroup ?? trace.apiGroup ?? '',
      resource: kube?.resource ?? trace.resource ?? '',
      subresource: kube?.subresource ?? trace.subresource ?? '',
      namespace: kube?.namespace ?? trace.namespace ?? '',
      name: kube?.name ?? trace.name ?? '',
      decision,
      reason,
      grantId: trace.grantId,
      approvalId: trace.approvalId,
      policyVersion: trace.policyVersion,
      phase: 'started',
      userAgent: trace.userAgent,
      sourceIp: trace.sourceIp,
      ...(trace.forwardedHeaders ? { forwardedHeaders: trace.forwardedHeaders } : {}),
    };
  }

  private async forward(
    request: ProxyRequest,
    record: RequestRecord,
    kube: KubeRequest,
    agent: Agent,
    connection: Connection,
    grant: Grant,
    capped: boolean,
    started: number,
  ): Promise<GatewayResult> {
    const { forwarder, upstreamAuth, now } = this.options;
    // Exactly what the write-ahead record holds.
    const headers: Record<string, string> = { ...record.forwardedHeaders };
    // Kubernetes puts this into its own audit log: one id across both logs.
    headers['audit-id'] = record.id;

    let upstream: IncomingMessage;
    try {
      const credential = await upstreamAuth.credentialFor({ agentId: agent.id, agentName: agent.name, grantId: grant.id }, connection);
      headers.authorization = credential.authorization;
      upstream = await forwarder.forward({
        server: connection.server,
        caPem: connection.caPem,
        method: request.method,
        pathAndQuery: record.query ? `${kube.path}?${record.query}` : kube.path,
        headers,
        body: request.body,
      });
    } catch (error) {
      const refusal = new AirlockError(502, 'upstream_unavailable', `the cluster behind "${connection.name}" could not be reached: ${error instanceof Error ? error.message : 'unknown error'}`);
      const response = statusResponse(refusal, record.id);
      const done = this.finish(record, request, { status: 502, headers: {}, captured: Buffer.from(response.body as string), complete: true, bytes: Buffer.byteLength(response.body as string), contentType: 'application/json' }, started, refusal.message);
      return { response, done };
    }

    const responseHeaders: Record<string, string> = {};
    for (const name of FORWARDED_RESPONSE_HEADERS) {
      const value = upstream.headers[name];
      if (typeof value === 'string') responseHeaders[name] = value;
    }
    responseHeaders['x-airlock-request-id'] = record.id;

    const capture = new CaptureStream(this.options.transcriptCaptureBytes);
    const ended = guardStream({
      upstream,
      output: capture,
      jsonWatch: kube.verb === 'watch' && upstream.statusCode === 200 && (responseHeaders['content-type'] ?? '').startsWith('application/json'),
      windowEndsAt: grant.expiresAt!,
      // Only a watch's timeoutSeconds ends it at the window's end; a capped `timeout` ends a request that finishes anyway.
      capped: capped && kube.verb === 'watch',
      now,
      recheck: async () => {
        const context = await this.options.state.getProxyContext(agent.id, connection.name, grant.id);
        assertWindowOpen(context, { agentId: agent.id, connection: connection.name }, now());
      },
      recheckMs: this.options.streamRecheckMs,
      recheckTimeoutMs: this.options.streamRecheckTimeoutMs,
      windowEnded: () =>
        new AirlockError(410, 'window_expired', `access window ${grant.id} ended at ${new Date(grant.expiresAt!).toISOString()} (Airlock ended this stream); request a new one: airlock access request --connection ${connection.name} --duration 30m --reason "..."`),
    });
    const done = ended.then((outcome) =>
      this.finish(
        { ...record, streamEnd: outcome.how, streamEndReason: outcome.reason },
        request,
        {
          status: upstream.statusCode ?? 0,
          headers: responseHeaders,
          captured: capture.captured(),
          complete: !capture.truncated && outcome.how === 'complete',
          bytes: capture.bytes,
          contentType: responseHeaders['content-type'] ?? '',
        },
        started,
        undefined,
        now,
      ),
    );
    const body = capture;
    return { response: { statusCode: upstream.statusCode ?? 502, headers: responseHeaders, body }, done };
  }

  private async finish(
    record: RequestRecord,
    request: ProxyRequest,
    response: { status: number; headers: Record<string, string>; captured: Buffer; complete: boolean; bytes: number; contentType: string },
    started: number,
    note?: string,
    now: () => number = this.options.now,
  ): Promise<void> {
    const durationMs = now() - started;
    const transcriptKey = transcriptKeyFor(record);
    const context: RedactionContext = { secretsResource: record.resource === 'secrets' };
    const transcript = {
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
        status: response.status,
        headers: response.headers,
        body: redactBody(response.captured, response.complete, response.bytes, response.contentType, context).body,
        bytes: response.bytes,
      },
      durationMs,
    };
    const body = JSON.stringify(transcript);
    const transcriptError = await this.writeTranscript(transcriptKey, body);
    try {
      await this.options.records.complete(record.id, {
        decision: record.decision,
        reason: record.reason,
        agent: record.agent,
        ...(record.approvalId ? { approvalId: record.approvalId } : {}),
        ...(record.policyVersion ? { policyVersion: record.policyVersion } : {}),
        ...(record.streamEnd ? { streamEnd: record.streamEnd, streamEndReason: record.streamEndReason } : {}),
        phase: transcriptError ? 'incomplete' : 'complete',
        status: response.status,
        requestBytes: request.body.length,
        responseBytes: response.bytes,
        durationMs,
        transcriptKey,
        // S3 would not take it: the transcript is kept (compressed) in the record until `airlock audit repair`.
        ...(transcriptError ? { transcriptError, transcriptSpool: spool(body) } : {}),
      });
    } catch (error) {
      // The write-ahead record exists (phase "started"), so the request is not
      // unrecorded; an auditor sees it as not completed.
      this.options.log.error('could not complete the record', { requestId: record.id, error: errorName(error) });
    }
  }

  private async writeTranscript(key: string, body: string): Promise<string | undefined> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.options.transcripts.put(key, body);
        return undefined;
      } catch (error) {
        // A retry after a write that did land finds the object there: that is success.
        if ((error as { name?: string }).name === 'PreconditionFailed') return undefined;
        lastError = error;
        await new Promise((resolve) => setTimeout(resolve, 50 * 4 ** attempt));
      }
    }
    this.options.log.error('transcript write failed', { key, error: errorName(lastError) });
    return `transcript not written: ${errorName(lastError)}`;
  }

  private async recordRefusal(
    trace: Partial<RequestRecord> & { id: string },
    refusal: AirlockError,
    request: ProxyRequest,
    statusBody: string,
    started: number,
    alreadyBegun: boolean,
  ): Promise<void> {
    // 'error' is for the gateway or a dependency failing; a refusal by design (501 interactive) is 'denied'.
    const failure = refusal.status === 500 || refusal.status === 502 || refusal.status === 503 || refusal.status === 504;
    const decision: RequestRecord['decision'] = refusal.code === 'approval_required' ? 'held' : failure ? 'error' : 'denied';
    const reason = trace.reason && refusal.code === 'forbidden_by_policy' ? trace.reason : `${refusal.code}: ${refusal.message}`;
    const record = this.recordOf(trace, undefined, decision, reason);
    if (!alreadyBegun) {
      try {
        await this.options.records.begin(record);
      } catch (error) {
        this.options.log.error('could not record a refusal', { requestId: record.id, code: refusal.code, error: errorName(error) });
        return;
      }
    }
    await this.finish(record, request, { status: refusal.status, headers: {}, captured: Buffer.from(statusBody), complete: true, bytes: Buffer.byteLength(statusBody), contentType: 'application/json' }, started);
  }
}

function describe(kube: KubeRequest): string {
  if (kube.kind !== 'resource') return `${kube.verb} ${kube.path}`;
  const resource = kube.subresource ? `${kube.resource}/${kube.subresource}` : kube.resource;
  const target = kube.name ? `${resource}/${kube.name}` : resource;
  const group = kube.apiGroup ? `.${kube.apiGroup}` : '';
  return `${kube.verb} ${target}${group}${kube.namespace ? ` in namespace ${kube.namespace}` : ' (cluster-wide)'}`;
}

export function statusResponse(error: AirlockError, requestId: string): { statusCode: number; headers: Record<string, string>; body: string } {
  return {
    statusCode: error.status,
    headers: { 'content-type': 'application/json', 'x-airlock-request-id': requestId, 'cache-control': 'no-store' },
    body: JSON.stringify(kubernetesStatus(error)),
  };
}

/** The request headers sent to the cluster, each whole; one longer than the recorded limit is refused, never cut. */
function forwardedHeadersOf(request: ProxyRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = request.headers[name]?.[0];
    if (value === undefined) continue;
    if (value.length > MAX_HEADER_VALUE_LENGTH) {
      throw new AirlockError(431, 'header_too_long', `the ${name} header is ${value.length} characters long; the limit is ${MAX_HEADER_VALUE_LENGTH}, so nothing was forwarded`);
    }
    headers[name] = value;
  }
  return headers;
}

function flattenHeaders(headers: Record<string, string[]>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, values]) => [name, values.join(', ')]));
}

function errorName(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 300);
  return String(error).slice(0, 300);
}

/** Passes bytes through unchanged, counting them and keeping the first `limit` for the transcript. */
class CaptureStream extends Transform {
  bytes = 0;
  truncated = false;
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private readonly limit: number;

  constructor(limit: number) {
    super();
    this.limit = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.kept < this.limit) {
      const slice = chunk.subarray(0, this.limit - this.kept);
      this.chunks.push(Buffer.from(slice));
      this.kept += slice.length;
      if (slice.length < chunk.length) this.truncated = true;
    } else {
      this.truncated = true;
    }
    callback(null, chunk);
  }

  captured(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

