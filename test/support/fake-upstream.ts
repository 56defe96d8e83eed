// A stand-in for the cluster behind a connection, for unit tests of the
// gateway: a loopback HTTP server giving canned answers (or a stream that stays
// open), reached through a forwarder that keeps what the gateway forwarded. It
// is the Forwarder port, not the Kubernetes API: nothing here checks requests.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UpstreamError, type Forwarder, type UpstreamRequest } from '../../lambdas/proxy/forwarder.ts';

/** How the cluster answers one forwarded request. */
export type CannedAnswer = (forwarded: UpstreamRequest, response: ServerResponse) => void;

/** A complete JSON answer. */
export const json =
  (status: number, body: unknown): CannedAnswer =>
  (_forwarded, response) => {
    response.writeHead(status, { 'content-type': 'application/json', 'audit-id': 'from-the-cluster', 'set-cookie': 'not-passed-back=1' });
    response.end(JSON.stringify(body));
  };

/** A JSON watch that sends `events` and stays open until the gateway (or the test) ends it. */
export const openWatch =
  (events: unknown[]): CannedAnswer =>
  (_forwarded, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    for (const event of events) response.write(`${JSON.stringify(event)}\n`);
  };

export class FakeUpstream {
  /** Every request the gateway forwarded, in order. */
  readonly forwarded: UpstreamRequest[] = [];
  /** How the next requests are answered (default: 200 with an empty list). */
  answer: CannedAnswer = json(200, { kind: 'List', apiVersion: 'v1', items: [] });
  /** Runs as the gateway calls forward(), before anything is sent: a test looks at the record there. */
  onForward: (forwarded: UpstreamRequest) => void = () => undefined;
  private reachable = true;
  private readonly open = new Set<ServerResponse>();
  private readonly byAuditId = new Map<string, UpstreamRequest>();
  private readonly server: Server;
  private base = '';

  private constructor() {
    this.server = createServer((req, res) => {
      this.open.add(res);
      res.on('close', () => this.open.delete(res));
      const forwarded = this.byAuditId.get(String(req.headers['audit-id']));
      req.resume();
      req.on('end', () => (forwarded ? this.answer(forwarded, res) : res.writeHead(500).end()));
    });
  }

  static async start(): Promise<FakeUpstream> {
    const upstream = new FakeUpstream();
    await new Promise<void>((resolve) => upstream.server.listen(0, '127.0.0.1', resolve));
    upstream.base = `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`;
    return upstream;
  }

  /** The cluster cannot be reached: forward() fails the way the real forwarder does. */
  down(): void {
    this.reachable = false;
  }

  up(): void {
    this.reachable = true;
  }

  readonly forwarder: Pick<Forwarder, 'forward'> = {
    forward: (upstream) => {
      this.forwarded.push(upstream);
      this.onForward(upstream);
      if (!this.reachable) return Promise.reject(new UpstreamError('connection refused by the cluster API server'));
      this.byAuditId.set(upstream.headers['audit-id'] ?? '', upstream);
      return new Promise<IncomingMessage>((resolve, reject) => {
        // content-length as the real forwarder sends it: a DELETE's body is not chunked by default.
        request(`${this.base}${upstream.pathAndQuery}`, { method: upstream.method, headers: { ...upstream.headers, 'content-length': String(upstream.body.length) } }, resolve)
          .on('error', reject)
          .end(upstream.body);
      });
    },
  };

  /** Ends every open answer, as a cluster closing its connections would. */
  closeOpen(): void {
    for (const response of this.open) response.destroy();
  }

  async stop(): Promise<void> {
    this.closeOpen();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
