// The approval preview's way to the cluster: the same forwarder and upstream
// credential as the gateway's forward stage, and like every request that reaches
// the cluster, each call is recorded first (write-ahead record, decision
// allowed, the reason naming the preview) and completed with a redacted transcript.
import type { ClusterAnswer, ClusterCall, ClusterReader, RecordStore, TranscriptStore } from '../core/ports.ts';
import type { RequestRecord } from '../core/model.ts';
import { newId } from '../core/ids.ts';
import { transcriptKeyFor } from '../core/transcripts.ts';
import { sealRecord } from '../core/audit-chain.ts';
import { errorText } from '../core/errors.ts';
import type { Forwarder } from './forwarder.ts';
import type { UpstreamAuth } from './upstream-auth.ts';
import { buildTranscript } from './transcript.ts';

/** A preview reads at most this much of an answer (the request size limit's order). */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
const CALL_TIMEOUT_MS = 15_000;
/** How the record names Airlock's own preview calls (apart from the agent's requests). */
export const PREVIEW_USER_AGENT = 'airlock-approval-preview';

export interface GatewayClusterReaderDeps {
  forwarder: Pick<Forwarder, 'forward'>;
  upstreamAuth: UpstreamAuth;
  records: RecordStore;
  transcripts: TranscriptStore;
  now: () => number;
}

export class GatewayClusterReader implements ClusterReader {
  private readonly deps: GatewayClusterReaderDeps;

  constructor(deps: GatewayClusterReaderDeps) {
    this.deps = deps;
  }

  async send(call: ClusterCall): Promise<ClusterAnswer> {
    const { deps } = this;
    const started = deps.now();
    const record: RequestRecord = {
      id: newId('req'),
      time: started,
      agentId: call.session.agentId,
      agent: call.session.agentName,
      connection: call.connection.name,
      method: call.method,
      path: call.path,
      query: call.query,
      ...call.target,
      decision: 'allowed',
      reason: call.purpose,
      grantId: call.session.grantId,
      policyVersion: call.connection.policyVersion,
      phase: 'started',
      userAgent: PREVIEW_USER_AGENT,
      ...(call.contentType ? { forwardedHeaders: { 'content-type': call.contentType } } : {}),
    };
    // Nothing reaches the cluster unrecorded: a record that cannot be written stops the call.
    await deps.records.begin(record);
    let status = 502;
    let contentType = '';
    let body = Buffer.alloc(0);
    let failure: string | undefined;
    try {
      const credential = await deps.upstreamAuth.credentialFor(call.session, call.connection);
      const response = await deps.forwarder.forward(
        {
          server: call.connection.server,
          caPem: call.connection.caPem,
          method: call.method,
          pathAndQuery: call.query ? `${call.path}?${call.query}` : call.path,
          headers: { accept: 'application/json', 'audit-id': record.id, authorization: credential.authorization, ...(call.contentType ? { 'content-type': call.contentType } : {}) },
          body: call.body,
        },
        AbortSignal.timeout(CALL_TIMEOUT_MS),
      );
      status = response.statusCode ?? 502;
      contentType = String(response.headers['content-type'] ?? '');
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response) {
        size += (chunk as Buffer).length;
        if (size > MAX_ANSWER_BYTES) {
          response.destroy();
          throw new Error(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      body = Buffer.concat(chunks);
    } catch (error) {
      failure = errorText(error, { name: false });
    }
    const transcriptKey = transcriptKeyFor(record);
    const answer = { status, headers: { 'content-type': contentType }, captured: body, complete: true, bytes: body.length, contentType };
    const transcript = buildTranscript(
      record,
      { connection: call.connection.name, path: call.path, method: call.method, query: {}, headers: call.contentType ? { 'content-type': [call.contentType] } : {}, body: call.body },
      answer,
      deps.now() - started,
      failure ? `not answered: ${failure}` : undefined,
    );
    let transcriptError: string | undefined;
    try {
      await deps.transcripts.put(transcriptKey, transcript);
    } catch (error) {
      transcriptError = `transcript not written: ${errorText(error)}`;
    }
    const completed: RequestRecord = { ...record, status, requestBytes: call.body.length, responseBytes: body.length, durationMs: deps.now() - started, transcriptKey };
    await sealRecord(deps.records, completed, transcript, deps.now, { phase: transcriptError ? 'incomplete' : 'complete', ...(transcriptError ? { transcriptError } : {}) });
    if (failure) throw new Error(`the cluster behind "${call.connection.name}" could not be reached: ${failure}`);
    return { status, contentType, body };
  }
}
