// The local HTTPS front door: what API Gateway does on AWS. Each request
// becomes the same REST proxy event and goes to the same handler; streaming
// routes get a response stream speaking the Lambda streaming wire format.
import './awslambda.ts';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { KUBERNETES_HINT, matchRoute, type FunctionName } from '../lambdas/routes.ts';
import { isStreamingHandler, PRELUDE_DELIMITER } from './awslambda.ts';

/** API Gateway's own payload limit. */
const MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;

export type LocalHandlers = Record<FunctionName, unknown>;

export interface LocalServerOptions {
  certPem: string;
  keyPem: string;
  handlers: LocalHandlers;
}

export interface LocalServer {
  server: Server;
  /** Waits for invocations still running (records being completed, transcripts written). */
  drain(timeoutMs?: number): Promise<void>;
}

export function createLocalServer(options: LocalServerOptions): LocalServer {
  const inFlight = new Set<Promise<void>>();
  const server = createServer({ cert: options.certPem, key: options.keyPem }, (req, res) => {
    const invocation = handle(req, res, options.handlers).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'internal', message: 'local server error' } });
      else res.destroy(error instanceof Error ? error : undefined);
    });
    inFlight.add(invocation);
    void invocation.finally(() => inFlight.delete(invocation));
  });
  return {
    server,
    async drain(timeoutMs = 10_000) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...inFlight]), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
    },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_PAYLOAD_BYTES) return undefined;
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > MAX_PAYLOAD_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function decode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, handlers: LocalHandlers): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  const url = req.url ?? '/';
  const queryStart = url.indexOf('?');
  const path = queryStart < 0 ? url : url.slice(0, queryStart);
  const rawQuery = queryStart < 0 ? '' : url.slice(queryStart + 1);
  const match = matchRoute(method, path);
  if (!match) {
    sendJson(res, 404, notFoundBody(method, path));
    return;
  }
  const body = await readBody(req);
  if (body === undefined) {
    sendJson(res, 413, { message: 'Request Too Long' });
    req.resume();
    return;
  }

  const multiValueHeaders: Record<string, string[]> = {};
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (!values) continue;
    multiValueHeaders[name] = values;
    headers[name] = values[values.length - 1]!;
  }
  const multiValueQuery: Record<string, string[]> = {};
  for (const [name, value] of new URLSearchParams(rawQuery)) (multiValueQuery[name] ??= []).push(value);
  const queryStringParameters = Object.fromEntries(Object.entries(multiValueQuery).map(([name, values]) => [name, values[values.length - 1]!]));
  const pathParameters = Object.fromEntries(Object.entries(match.pathParameters).map(([name, value]) => [name, decode(value)]));
  const requestId = randomUUID();
  const hasQuery = Object.keys(multiValueQuery).length > 0;

  const event: APIGatewayProxyEvent = {
    resource: match.route.resource,
    path,
    httpMethod: method,
    headers,
    multiValueHeaders,
    queryStringParameters: hasQuery ? queryStringParameters : null,
    multiValueQueryStringParameters: hasQuery ? multiValueQuery : null,
    pathParameters,
    stageVariables: null,
    body: body.length ? body.toString('base64') : null,
    isBase64Encoded: body.length > 0,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      authorizer: null,
      protocol: `HTTP/${req.httpVersion}`,
      httpMethod: method,
      path,
      stage: 'local',
      requestId,
      requestTimeEpoch: Date.now(),
      resourceId: 'local',
      resourcePath: match.route.resource,
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        user: null,
        userAgent: headers['user-agent'] ?? null,
        userArn: null,
      },
    },
  };
  const context = lambdaContextFor(match.route.function, requestId);
  const handler = handlers[match.route.function];

  if (isStreamingHandler(handler)) {
    const stream = new LocalResponseStream(res);
    // A client that hangs up early destroys the stream before the handler pipes into it:
    // that error belongs to this one request, never to the process.
    stream.on('error', () => undefined);
    res.once('close', () => {
      if (!res.writableFinished) stream.destroy(new Error('client closed the connection'));
    });
    try {
      await handler(event, stream, context);
    } catch (error) {
      if (!res.headersSent) sendJson(res, 502, { message: 'Internal server error' });
      else res.destroy(error instanceof Error ? error : undefined);
    }
    return;
  }

  const result = (await (handler as (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>)(event, context)) ?? {
    statusCode: 502,
    body: '',
  };
  const responseBody = result.isBase64Encoded ? Buffer.from(result.body, 'base64') : Buffer.from(result.body ?? '', 'utf8');
  res.writeHead(result.statusCode, { ...(result.headers as Record<string, string>), 'content-length': responseBody.length });
  res.end(responseBody);
}

/** The Lambda context object the runtime passes; the local stack makes one per invocation. */
export function lambdaContextFor(functionName: string, requestId: string = randomUUID()): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: `airlock-${functionName}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:airlock-${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/airlock-${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 900_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Decodes the streaming wire format: JSON prelude, 8 NUL bytes, body. */
class LocalResponseStream extends Writable {
  private readonly res: ServerResponse;
  private head: Buffer = Buffer.alloc(0);
  private started = false;

  constructor(res: ServerResponse) {
    super();
    this.res = res;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.started) {
      this.pass(chunk, callback);
      return;
    }
    this.head = Buffer.concat([this.head, chunk]);
    const end = this.head.indexOf(PRELUDE_DELIMITER);
    if (end < 0) {
      if (this.head.length > 64 * 1024) callback(new Error('response prelude too large'));
      else callback();
      return;
    }
    const prelude = JSON.parse(this.head.subarray(0, end).toString('utf8')) as { statusCode?: number; headers?: Record<string, string>; cookies?: string[] };
    const rest = this.head.subarray(end + PRELUDE_DELIMITER.length);
    this.started = true;
    this.res.writeHead(prelude.statusCode ?? 200, { ...prelude.headers, ...(prelude.cookies?.length ? { 'set-cookie': prelude.cookies } : {}) });
    this.res.flushHeaders();
    if (rest.length) this.pass(rest, callback);
    else callback();
  }

  private pass(chunk: Buffer, callback: (error?: Error | null) => void): void {
    if (chunk.length === 0) {
      callback();
      return;
    }
    if (this.res.write(chunk)) callback();
    else this.res.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.started) {
      this.res.writeHead(200, { 'content-type': 'application/octet-stream' });
      if (this.head.length) this.res.write(this.head);
    }
    this.res.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (error && !this.res.writableFinished) this.res.destroy();
    callback(error);
  }
}

/**
 * No route: Airlock's error shape for its own API, and a Kubernetes Status beside it, so that
 * kubectl (`get --raw /metrics`) prints what to do instead of "the server could not find the
 * requested resource". API Gateway answers the same (infra/api.ts, Default4xx).
 */
export function notFoundBody(method: string, path: string): Record<string, unknown> {
  const message = `no route ${method} ${path.slice(0, 200)}`;
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `airlock: ${message}; ${KUBERNETES_HINT}`,
    reason: 'NotFound',
    code: 404,
    error: { code: 'not_found', message },
  };
}
