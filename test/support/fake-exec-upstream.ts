// A stand-in for the API server's exec stream, for unit tests of `POST
// /v1/exec`: a loopback HTTPS server (its certificate from a test CA) that
// upgrades to a WebSocket only for the v5.channel.k8s.io subprotocol and runs a
// few canned "commands" by their first word. It keeps each handshake (path,
// query, headers) so a test sees exactly what Airlock asked. It checks no
// authorization: that is the real cluster's job (test/e2e/exec.test.ts).
//   echo ARGS...   stdout: the args and a newline; exits 0
//   cat            stdout: stdin, once the client closes stdin; exits 0
//   fail N         stderr: "failing"; exits N
//   hang           writes "started" and never ends
//   flood N        writes N bytes of "x" to stdout; exits 0
//   say TEXT       stdout: TEXT (no newline); exits 0
//   broken         the error channel says something that is not an exit (InternalError)
// A pod named "missing" is answered 404 with a Status, without an upgrade.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { createCertificateAuthority, type CertificateAuthority } from '../../local/tls.ts';

export interface ExecHandshake {
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  protocol: string;
}

const status = (code?: number) =>
  code === undefined || code === 0
    ? { metadata: {}, status: 'Success' }
    : {
        metadata: {},
        status: 'Failure',
        message: `command terminated with non-zero exit code: error executing command, exit status ${code}`,
        reason: 'NonZeroExitCode',
        details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
      };

export class FakeExecUpstream {
  readonly handshakes: ExecHandshake[] = [];
  ca!: CertificateAuthority;
  url = '';
  private server!: Server;
  private readonly sockets = new Set<WebSocket>();

  static async start(): Promise<FakeExecUpstream> {
    const upstream = new FakeExecUpstream();
    upstream.ca = await createCertificateAuthority('fake-exec-upstream-ca');
    const leaf = await upstream.ca.issue({ commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'] });
    upstream.server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"kind":"Status","message":"upgrade request required","code":400}');
    });
    const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has('v5.channel.k8s.io') ? 'v5.channel.k8s.io' : false) });
    upstream.server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'https://fake');
      if (/\/pods\/missing\/exec$/.test(url.pathname)) {
        const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'pods "missing" not found', reason: 'NotFound', code: 404 });
        socket.end(`HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        upstream.sockets.add(ws);
        ws.on('close', () => upstream.sockets.delete(ws));
        upstream.handshakes.push({ path: url.pathname, query: url.searchParams, headers: req.headers, protocol: ws.protocol });
        upstream.run(ws, url.searchParams.getAll('command'));
      });
    });
    await new Promise<void>((resolve) => upstream.server.listen(0, '127.0.0.1', resolve));
    upstream.url = `https://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`;
    return upstream;
  }

  private run(ws: WebSocket, command: string[]): void {
    const send = (channel: number, data: string | Buffer) => ws.send(Buffer.concat([Buffer.from([channel]), Buffer.from(data)]), { binary: true });
    const exit = (code?: number) => {
      send(3, JSON.stringify(status(code)));
      ws.close(1000);
    };
    const [program, ...args] = command;
    switch (program) {
      case 'echo':
        send(1, `${args.join(' ')}\n`);
        return exit(0);
      case 'say':
        send(1, args.join(' '));
        return exit(0);
      case 'fail':
        send(2, 'failing\n');
        return exit(Number(args[0] ?? 1));
      case 'flood': {
        let left = Number(args[0] ?? 0);
        while (left > 0) {
          const size = Math.min(left, 4096);
          send(1, 'x'.repeat(size));
          left -= size;
        }
        return exit(0);
      }
      case 'hang':
        send(1, 'started\n');
        return;
      case 'broken':
        send(3, JSON.stringify({ metadata: {}, status: 'Failure', message: 'exec: "nope": executable file not found', reason: 'InternalError' }));
        ws.close(1000);
        return;
      case 'cat': {
        const chunks: Buffer[] = [];
        ws.on('message', (data: Buffer) => {
          if (data[0] === 0) chunks.push(data.subarray(1));
          else if (data[0] === 255 && data[1] === 0) {
            send(1, Buffer.concat(chunks));
            exit(0);
          }
        });
        return;
      }
      default:
        send(3, JSON.stringify({ metadata: {}, status: 'Failure', message: `unknown fake command ${String(program)}`, reason: 'InternalError' }));
        ws.close(1000);
    }
  }

  /** Open exec streams (a test waits for them to close). */
  get open(): number {
    return this.sockets.size;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.terminate();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
