// The two Lambda runtime globals a response-streaming handler uses, for the
// local server. Same wire format as the real runtime: a JSON prelude with
// status and headers, eight NUL bytes, then the body.
import type { Writable } from 'node:stream';

export const STREAMING = Symbol.for('airlock.streamingHandler');
export const PRELUDE_DELIMITER = Buffer.alloc(8);

type StreamingHandler = (event: unknown, responseStream: Writable, context: unknown) => Promise<void>;

interface LocalAwsLambda {
  streamifyResponse(handler: StreamingHandler): StreamingHandler;
  HttpResponseStream: { from(stream: Writable, prelude: Record<string, unknown>): Writable };
}

const awslambda: LocalAwsLambda = {
  streamifyResponse(handler) {
    Object.defineProperty(handler, STREAMING, { value: true });
    return handler;
  },
  HttpResponseStream: {
    from(stream, prelude) {
      stream.write(JSON.stringify(prelude));
      stream.write(PRELUDE_DELIMITER);
      return stream;
    },
  },
};

// Other libraries (the Lambda invoke store) also hang things on this global: add to it, never replace it.
const globals = globalThis as unknown as { awslambda?: Partial<LocalAwsLambda> };
const target = (globals.awslambda ??= {});
target.streamifyResponse ??= awslambda.streamifyResponse;
target.HttpResponseStream ??= awslambda.HttpResponseStream;

export function isStreamingHandler(handler: unknown): handler is StreamingHandler {
  return typeof handler === 'function' && (handler as unknown as Record<symbol, unknown>)[STREAMING] === true;
}
