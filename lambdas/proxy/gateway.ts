// The single path. Every agent request to /k8s/{connection}/... runs these
// stages in this order (each a file in ./stages, named as below), and any
// stage that cannot check what it checks refuses:
//
//   receive             an id, the time, the record's first lines; connection name, body size
//   1 authenticate      token: signature, type, issuer, expiry, audience = connection
//   2 parse             verb/group/resource/subresource/namespace/name, canonical query
//   3 headers           forwarded headers selected (each whole); Impersonate-*/X-Remote-* refused
//   4 record begins     the write-ahead record, sent beside the state read
//   5 state             agent enabled, window active/unexpired/unrevoked (read now); the
//                       window's deadline on the query (timeoutSeconds capped)
//   6 scope             policy on the request and every effect (core/effects.ts):
//                       deny > approve > allow > default deny
//   7 interactive       exec/attach/port-forward/Upgrade refused (501)
//   8 approval          risky request: one-time approval of this exact request
//   9 record written    nothing is forwarded until it is (else 503); it then holds the
//                       query as forwarded
//  10 forward           connection credential, CA-verified TLS; agent auth never forwarded
//  11 stream guard      the response streams while the window, agent and connection allow
//  12 complete          record status/bytes/duration; transcript (redacted), retried, else
//                       kept in the record
//
// A refusal at any stage answers a Kubernetes Status and completes the record
// with what was known (stages/refuse.ts).
import type { Ports, GatewayOptions, GatewayResult, Known, ProxyRequest } from './stages/context.ts';
import { receive, checkEnvelope } from './stages/receive.ts';
import { authenticate } from './stages/authenticate.ts';
import { parse } from './stages/parse.ts';
import { selectForwardedHeaders } from './stages/forwarded-headers.ts';
import { refuseIdentityHeaders } from './stages/identity-headers.ts';
import { beginRecord } from './stages/begin-record.ts';
import { readState } from './stages/read-state.ts';
import { scope } from './stages/scope.ts';
import { refuseInteractive } from './stages/interactive.ts';
import { approve } from './stages/approve.ts';
import { awaitRecord } from './stages/await-record.ts';
import { forward } from './stages/forward.ts';
import { streamBack } from './stages/stream-back.ts';
import { refuse } from './stages/refuse.ts';

export type { GatewayLog, GatewayOptions, GatewayResult, ProxyRequest, ProxyResponse } from './stages/context.ts';
export type { HeldRequest, RequestApprovalGate } from './stages/approve.ts';
export { statusResponse } from './refusals.ts';

export class Gateway {
  private readonly ports: Ports;

  constructor(options: GatewayOptions) {
    this.ports = {
      ...options,
      maxRequestBodyBytes: options.maxRequestBodyBytes ?? 3 * 1024 * 1024,
      transcriptCaptureBytes: options.transcriptCaptureBytes ?? 1024 * 1024,
      now: options.now ?? Date.now,
      streamRecheckMs: options.streamRecheckMs ?? 2000,
      streamRecheckTimeoutMs: options.streamRecheckTimeoutMs ?? 3000,
    };
  }

  async handle(request: ProxyRequest): Promise<GatewayResult> {
    const ports = this.ports;
    // The last stage reached: what a refusal records.
    let known: Known = receive(request, ports);
    try {
      checkEnvelope(known, ports);
      const caller = (known = await authenticate(known, ports));
      const parsed = (known = parse(caller));
      const headed = (known = selectForwardedHeaders(parsed));
      refuseIdentityHeaders(headed);
      const begun = (known = beginRecord(headed, ports));
      const admitted = (known = await readState(begun, ports));
      const scoped = (known = scope(admitted));
      refuseInteractive(scoped);
      const approved = (known = await approve(scoped, ports));
      const recorded = (known = await awaitRecord(approved, ports));
      const forwarded = (known = await forward(recorded, ports));
      return streamBack(forwarded, ports);
    } catch (error) {
      return refuse(known, error, ports);
    }
  }
}
