// Runs one command in a container for `POST /v1/exec`: Airlock itself opens
// the API server's exec stream — a WebSocket speaking v5.channel.k8s.io, with
// the connection's credential, TLS verified against the connection's CA — and
// turns what comes back into the response's framing, one JSON object a line:
//
//   {"stream":"stdout","data":"…"}   output as it comes (UTF-8 text)
//   {"stream":"stderr","data":"…"}
//   {"exit":{"code":0}}              last line: the command exited (code from the error channel's Status)
//   {"error":{…Status…}}             last line instead: it did not exit (the cluster could not run it,
//                                    or Airlock ended it: timeout, output limit, window end, revoke)
//
// Bounded: the command's run ends at `timeoutMs` and once stdout and stderr
// together pass `maxOutputBytes`. No TTY, so no resize channel.
import { PassThrough, type Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { AirlockError, kubernetesStatus } from '../core/status.ts';
import { UpstreamError } from './forwarder.ts';

/** The one subprotocol Airlock speaks: binary frames, the first byte the channel; 255 closes a channel (stdin). */
export const EXEC_SUBPROTOCOL = 'v5.channel.k8s.io';

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const CLOSE = 255;

const CONNECT_TIMEOUT_MS = 10_000;
/** The most of a refusal's body (a Status) read back when the API server does not upgrade. */
const MAX_REFUSAL_BYTES = 64 * 1024;

export interface ExecUpstreamRequest {
  server: string;
  caPem: string;
  /** The exec path and canonical query (command, container, stdin/stdout/stderr), exactly as checked and recorded. */
  pathAndQuery: string;
  headers: Record<string, string>;
  /** Sent on the stdin channel, which is then closed; undefined: no stdin (the query says stdin=false). */
  stdin: Buffer | undefined;
  timeoutMs: number;
  maxOutputBytes: number;
}

/** The API server upgraded: the framed output. Or it answered instead (a Status: pod not found, forbidden, ...). */
export type ExecOpened = { upgraded: true; output: Readable } | { upgraded: false; status: number; headers: Record<string, string>; body: Buffer };

/** The exit code a v5 error-channel Status carries: 0 on Success, N on NonZeroExitCode; undefined when the command did not exit. */
export function exitCodeOf(status: unknown): number | undefined {
  if (typeof status !== 'object' || status === null) return undefined;
  const { status: outcome, reason, details } = status as { status?: unknown; reason?: unknown; details?: { causes?: { reason?: unknown; message?: unknown }[] } };
  if (outcome === 'Success') return 0;
  if (reason !== 'NonZeroExitCode') return undefined;
  const cause = details?.causes?.find((item) => item.reason === 'ExitCode');
  const code = Number(cause?.message);
  return Number.isInteger(code) ? code : undefined;
}

export class ExecClient {
  /** Resolves once the API server has upgraded the connection or answered without upgrading. */
  open(request: ExecUpstreamRequest): Promise<ExecOpened> {
    const base = new URL(request.server);
    if (base.protocol !== 'https:') return Promise.reject(new UpstreamError('connection server is not https'));
    const url = `wss://${base.host}${base.pathname.replace(/\/$/, '')}${request.pathAndQuery}`;
    const socket = new WebSocket(url, [EXEC_SUBPROTOCOL], {
      headers: request.headers,
      ca: request.caPem,
      // Never skipped: the connection's CA signs the API server's certificate.
      rejectUnauthorized: true,
      handshakeTimeout: CONNECT_TIMEOUT_MS,
      perMessageDeflate: false,
      followRedirects: false,
      maxPayload: 16 * 1024 * 1024,
    });
    return new Promise<ExecOpened>((resolve, reject) => {
      let settled = false;
      socket.once('unexpected-response', (_request, response: IncomingMessage) => {
        void readAnswer(response).then(
          (body) => {
            settled = true;
            socket.terminate();
            const headers: Record<string, string> = {};
            for (const name of ['content-type', 'audit-id', 'warning']) {
              const value = response.headers[name];
              if (typeof value === 'string') headers[name] = value;
            }
            resolve({ upgraded: false, status: response.statusCode ?? 502, headers, body });
          },
          (error: unknown) => {
            settled = true;
            socket.terminate();
            reject(new UpstreamError(`the cluster's answer could not be read (${String(error)})`));
          },
        );
      });
      socket.once('open', () => {
        settled = true;
        resolve({ upgraded: true, output: run(socket, request) });
      });
      socket.on('error', (error: Error & { code?: string }) => {
        if (settled) return;
        settled = true;
        reject(new UpstreamError(error.code ? `cluster API server unreachable or refused the exec stream (${error.code}: ${error.message})` : `the exec stream could not be opened: ${error.message}`));
      });
    });
  }
}

async function readAnswer(response: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > MAX_REFUSAL_BYTES) break;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).subarray(0, MAX_REFUSAL_BYTES);
}

/** Frames an open exec stream; closing the returned stream (the client went, the guard ended it) closes the socket. */
function run(socket: WebSocket, request: ExecUpstreamRequest): Readable {
  const output = new PassThrough();
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  let outputBytes = 0;
  let statusText = '';
  let ended = false;

  const line = (value: unknown) => output.write(`${JSON.stringify(value)}\n`);
  const flushText = () => {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = decoders[stream].end();
      if (rest) line({ stream, data: rest });
    }
  };
  const finish = (last: unknown) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    flushText();
    line(last);
    output.end();
    socket.terminate();
  };
  const fail = (error: AirlockError) => finish({ error: kubernetesStatus(error) });

  const timer = setTimeout(
    () => fail(new AirlockError(504, 'exec_timeout', `the command ran longer than its ${Math.round(request.timeoutMs / 1000)} s timeout; Airlock ended it (--timeout sets it)`)),
    request.timeoutMs,
  );

  socket.on('message', (data: Buffer, isBinary: boolean) => {
    if (ended || !isBinary || data.length === 0) return;
    const channel = data[0]!;
    const payload = data.subarray(1);
    if (channel === STDOUT || channel === STDERR) {
      if (payload.length === 0) return;
      outputBytes += payload.length;
      if (outputBytes > request.maxOutputBytes) {
        const room = payload.length - (outputBytes - request.maxOutputBytes);
        const stream = channel === STDOUT ? 'stdout' : 'stderr';
        const text = decoders[stream].write(payload.subarray(0, Math.max(0, room)));
        if (text) line({ stream, data: text });
        fail(new AirlockError(413, 'exec_output_too_large', `the command wrote more than ${request.maxOutputBytes} bytes (stdout and stderr together); Airlock ended it there`));
        return;
      }
      const stream = channel === STDOUT ? 'stdout' : 'stderr';
      const text = decoders[stream].write(payload);
      if (text) line({ stream, data: text });
    } else if (channel === ERROR) {
      statusText += payload.toString('utf8');
    }
  });
  socket.once('close', () => {
    if (ended) return;
    if (!statusText) {
      fail(new AirlockError(502, 'exec_stream_closed', 'the exec stream closed before the command reported how it ended'));
      return;
    }
    let status: unknown;
    try {
      status = JSON.parse(statusText);
    } catch {
      fail(new AirlockError(502, 'exec_stream_closed', 'the cluster reported the end of the command in a form Airlock cannot read'));
      return;
    }
    const code = exitCodeOf(status);
    if (code !== undefined) finish({ exit: { code } });
    else finish({ error: status });
  });
  socket.on('error', () => undefined);
  output.once('close', () => {
    clearTimeout(timer);
    if (!ended) socket.terminate();
  });

  if (request.stdin !== undefined) {
    if (request.stdin.length) socket.send(Buffer.concat([Buffer.from([STDIN]), request.stdin]), { binary: true });
    // v5: end of input, so a command reading stdin sees EOF.
    socket.send(Buffer.from([CLOSE, STDIN]), { binary: true });
  }
  return output;
}
