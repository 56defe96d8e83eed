// The single path. Every agent request to /k8s/{connection}/... runs these
// stages in this order — each a function in ./stages, in the file of its name —
// and any stage that cannot check what it checks refuses:
//
//   1 receive                  an id and the time; the record starts from what was sent;
//                              checkEnvelope: connection name, body size (413)
//   2 authenticate             token: signature, type, issuer, expiry, audience = connection
//   3 parse                    verb/group/resource/subresource/namespace/name, canonical query
//   4 selectForwardedHeaders   the headers that may reach the cluster, each whole (431);
//     refuseIdentityHeaders    Impersonate-* and X-Remote-* refused
//   5 beginRecord              the write-ahead record is sent, beside the state read
//   6 readState                agent enabled, window active/unexpired/unrevoked (read now);
//                              the window's deadline on the query (timeoutSeconds capped);
//                              a log read without limitBytes/tailLines gets the defaults
//   7 scope                    policy on the request and every effect (core/effects.ts):
//                              deny > approve > allow > default deny
//   8 refuseInteractive        exec/attach/port-forward/Upgrade (501)
//     plan                     a plan token (airlock plan/apply, stages/plan.ts): mutating
//                              requests go as dry runs into the plan, or pass once as planned
//   9 approve                  risky request: one-time approval of this exact request
//  10 awaitRecord              the record is written (else 503), with the query as forwarded;
//                              nothing is forwarded before this
//     answerSelfReview         whoami, and can-i the policy refuses or holds: answered for
//                              the agent here; can-i --list: the cluster's rules ∩ the policy
//  11 forward                  connection credential, CA-verified TLS; agent auth never sent
//     collectDryRun            plan mode: the dry-run answer joins the plan before it goes back
//  12 streamBack               the response streams under the stream guard (window, revoke)
//  13 completeRecord           status/bytes/duration; transcript (redacted), 3 attempts, else
//                              kept in the record
//
// POST /v1/exec (`airlock exec`, Gateway.exec) runs the same stages with two
// in place: readExec for parse (the JSON body becomes the Kubernetes exec
// request, stdin its body) and openExec for forward (Airlock opens the exec
// stream itself); refuseInteractive is left out (nothing is upgraded on the
// agent's side) and a plan token is refused (a command has no dry run).
//
// A refusal at any stage (refuse) answers a Kubernetes Status and completes the
// record with what the last stage reached knew: the begun record, or a new one.
//
// What only a rare path needs (the YAML parser for scope, a plan's preview, the
// exec request reader; the approval gate, exec client and MCP endpoint wired in
// runtime/services.ts) is loaded on its first use (lazy.ts); a load that fails
// refuses the request like any stage that cannot check what it checks.
import type { Readable } from 'node:stream';
import type { Agent, Connection, Grant } from '../core/model.ts';
import type { ClusterReader, Log, RecordStore, StateStore, TranscriptStore } from '../core/ports.ts';
import type { KubeRequest } from '../core/kube-request.ts';
import type { PolicyDecision } from '../core/policy.ts';
import type { TokenService } from '../core/tokens.ts';
import { checkLogReadLimits, type LogReadLimits } from '../core/log-bounds.ts';
import type { Forwarder } from './forwarder.ts';
import type { UpstreamAuth } from './upstream-auth.ts';
import type { Known, ResolvedOptions } from './stages/context.ts';
import { receive, checkEnvelope } from './stages/receive.ts';
import { authenticate } from './stages/authenticate.ts';
import { parse } from './stages/parse.ts';
import { selectForwardedHeaders } from './stages/select-forwarded-headers.ts';
import { refuseIdentityHeaders } from './stages/refuse-identity-headers.ts';
import { beginRecord } from './stages/begin-record.ts';
import { readState } from './stages/read-state.ts';
import { scope } from './stages/scope.ts';
import { refuseInteractive } from './stages/refuse-interactive.ts';
import { approve } from './stages/approve.ts';
import { collectDryRun, plan } from './stages/plan.ts';
import { awaitRecord } from './stages/await-record.ts';
import { answerSelfReview } from './stages/answer-self-review.ts';
import { forward } from './stages/forward.ts';
import { openExec } from './stages/open-exec.ts';
import type { ExecClient } from './exec-client.ts';
import { AirlockError } from '../core/status.ts';
import { streamBack } from './stages/stream-back.ts';
import { refuse } from './stages/refuse.ts';
import { loadExecReader } from './lazy.ts';

export interface ProxyRequest {
  /** From /k8s/{connection}/...; undefined at the root (/api, /apis, ...): the token names the one connection it is for. */
  connection: string | undefined;
  /** Path after /k8s/{connection}, or the whole path at the root. */
  path: string;
  method: string;
  query: Record<string, string[]>;
  /** Lower-cased names; every value the client sent. */
  headers: Record<string, string[]>;
  body: Buffer;
  sourceIp?: string;
  /** Made in-process for an MCP tool call (lambdas/mcp): the record names the tool and the call. */
  mcp?: { tool: string; callId: string };
}

export interface ProxyResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: Readable | string;
}

export interface GatewayResult {
  response: ProxyResponse;
  /** Settles once the record is complete and the transcript written (after the body has streamed). */
  done: Promise<void>;
}

export interface GatewayOptions {
  state: StateStore;
  records: RecordStore;
  transcripts: TranscriptStore;
  tokens: TokenService;
  upstreamAuth: UpstreamAuth;
  // Only forward() is the gateway's: the caller owns the connection pool.
  forwarder: Pick<Forwarder, 'forward'>;
  approvals?: RequestApprovalGate;
  /** Opens exec streams for POST /v1/exec; without it, exec is refused (501). */
  executor?: Pick<ExecClient, 'open'>;
  /** Reads the cluster for a plan change's preview (proxy/cluster-reader.ts); without it a change that needs a read cannot be shown. */
  cluster?: ClusterReader;
  log: Log;
  now?: () => number;
  /** Largest request body accepted (default 3 MiB). */
  maxRequestBodyBytes?: number;
  /** How much of a response body is captured for the transcript (default 1 MiB). */
  transcriptCaptureBytes?: number;
  /** While a response streams, the window, agent and revocation are re-read this often (default 2000 ms). */
  streamRecheckMs?: number;
  /** A re-read slower than this ends the stream as if it failed (default 3000 ms). */
  streamRecheckTimeoutMs?: number;
  /** The most stdout and stderr (together) a command run through POST /v1/exec may write (default 1 MiB). */
  execMaxOutputBytes?: number;
  /** Bounds added to a log read that names none (core/log-bounds.ts; defaults 256 KiB and 1000 lines). */
  logReadLimits?: Partial<LogReadLimits>;
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

export class Gateway {
  private readonly options: ResolvedOptions;

  constructor(options: GatewayOptions) {
    this.options = {
      ...options,
      maxRequestBodyBytes: options.maxRequestBodyBytes ?? 3 * 1024 * 1024,
      transcriptCaptureBytes: options.transcriptCaptureBytes ?? 1024 * 1024,
      now: options.now ?? Date.now,
      streamRecheckMs: options.streamRecheckMs ?? 2000,
      streamRecheckTimeoutMs: options.streamRecheckTimeoutMs ?? 3000,
      execMaxOutputBytes: options.execMaxOutputBytes ?? 1024 * 1024,
      logReadLimits: checkLogReadLimits(options.logReadLimits ?? {}),
    };
  }

  async handle(request: ProxyRequest): Promise<GatewayResult> {
    const options = this.options;
    // The last stage reached: what a refusal records.
    let known: Known = receive(request, options);
    try {
      checkEnvelope(known, options);
      const caller = (known = await authenticate(known, options));
      const parsed = (known = parse(caller));
      const headed = (known = selectForwardedHeaders(parsed));
      refuseIdentityHeaders(headed);
      const begun = (known = beginRecord(headed, options));
      const admitted = (known = await readState(begun, options));
      const scoped = (known = await scope(admitted));
      refuseInteractive(scoped);
      const planning = (known = await plan(scoped, options));
      const planned = 'planned' in planning ? planning : undefined;
      const approved = (known = planned ?? (await approve(planning, options)));
      const recorded = (known = await awaitRecord(approved, options));
      const answered = await answerSelfReview(recorded, options);
      if (answered) return answered;
      const forwarded = (known = await forward(recorded, options));
      return streamBack(planned ? await collectDryRun({ ...forwarded, planned: planned.planned }, options) : forwarded, options);
    } catch (error) {
      return refuse(known, error, options);
    }
  }

  /** POST /v1/exec: one command in a container, on the same path (see the top of this file). */
  async exec(request: ProxyRequest): Promise<GatewayResult> {
    const options = this.options;
    // The body (stdin among it) is read by readExec; until then the record keeps none of it.
    let known: Known = receive({ ...request, body: Buffer.alloc(0) }, options);
    try {
      checkEnvelope({ ...known, request }, options);
      const caller = (known = await authenticate(known, options));
      const { parsed, ask } = (await loadExecReader()).readExec(caller, request.body);
      known = parsed;
      const headed = (known = selectForwardedHeaders(parsed));
      const begun = (known = beginRecord(headed, options));
      const admitted = (known = await readState(begun, options));
      const scoped = (known = await scope(admitted));
      if (scoped.claims.plan) throw new AirlockError(403, 'not_plannable', 'a command in a container has no dry run, so it cannot be part of a plan; run `airlock exec` with its own token');
      const approved = (known = await approve(scoped, options));
      const recorded = (known = await awaitRecord(approved, options));
      const opened = (known = await openExec(recorded, ask, options));
      return streamBack(opened, options);
    } catch (error) {
      return refuse(known, error, options);
    }
  }
}
