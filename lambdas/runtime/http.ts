// The thin part of every buffered (JSON/HTML) handler: middy around a route
// function, errors shaped as {error:{code,message}}, bodies validated by zod.
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type * as z from 'zod';
import { AirlockError, asAirlockError, errorBody, refusalFor } from '../core/status.ts';
import { errorText } from '../core/errors.ts';
import { logger } from './logger.ts';
import { IAM_PREFIX } from '../routes.ts';

export interface HttpResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export type RouteHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<HttpResult>;

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

export function toProxyResult(result: HttpResult): APIGatewayProxyResult {
  const isText = typeof result.body === 'string';
  return {
    statusCode: result.status,
    headers: { 'content-type': isText ? 'text/plain; charset=utf-8' : 'application/json', ...SECURITY_HEADERS, ...result.headers },
    body: isText ? (result.body as string) : JSON.stringify(result.body),
  };
}

export function errorResult(error: unknown): APIGatewayProxyResult {
  if (!refusalFor(error)) logger.error('unhandled error', { error: errorText(error) });
  const airlockError = asAirlockError(error);
  return toProxyResult({ status: airlockError.status, body: errorBody(airlockError) });
}

/** Wraps a route function as a Lambda handler (middy + Powertools logger). */
export function httpHandler(route: RouteHandler) {
  return middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (event, context) => {
      try {
        return toProxyResult(await route(event, context));
      } catch (error) {
        return errorResult(error);
      }
    });
}

/** Dispatches on API Gateway's resource template; /v1/iam/... routes share the /v1/... handlers. */
export function router(routes: Record<string, RouteHandler>): RouteHandler {
  return async (event, context) => {
    const resource = event.resource.startsWith(`${IAM_PREFIX}/`) ? `/v1${event.resource.slice(IAM_PREFIX.length)}` : event.resource;
    const handler = routes[`${event.httpMethod} ${resource}`];
    if (!handler) throw new AirlockError(404, 'not_found', `no route ${event.httpMethod} ${event.resource}`);
    return handler(event, context);
  };
}

export const MAX_JSON_BODY_BYTES = 256 * 1024;

export function rawBody(event: APIGatewayProxyEvent): Buffer {
  if (!event.body) return Buffer.alloc(0);
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
}

/** Parses and validates a JSON body; a bad field is named in the error. */
export function jsonBody<T extends z.ZodType>(event: APIGatewayProxyEvent, schema: T): z.infer<T> {
  const raw = rawBody(event);
  if (raw.length > MAX_JSON_BODY_BYTES) throw new AirlockError(413, 'body_too_large', `request body over ${MAX_JSON_BODY_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = raw.length ? JSON.parse(raw.toString('utf8')) : {};
  } catch {
    throw new AirlockError(400, 'invalid_json', 'request body is not valid JSON');
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.length ? issue.path.join('.') : 'body';
    throw new AirlockError(400, 'invalid_request', `${field}: ${issue.message}`);
  }
  return result.data;
}

export function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  const lower = name.toLowerCase();
  const values = Object.entries(event.multiValueHeaders ?? {}).find(([key]) => key.toLowerCase() === lower)?.[1];
  if (values && values.length > 1) throw new AirlockError(400, 'duplicate_header', `more than one ${name} header`);
  if (values?.[0] !== undefined) return values[0];
  return Object.entries(event.headers ?? {}).find(([key]) => key.toLowerCase() === lower)?.[1];
}

export function pathParameter(event: APIGatewayProxyEvent, name: string): string {
  const value = event.pathParameters?.[name];
  if (!value) throw new AirlockError(400, 'invalid_request', `missing ${name}`);
  return value;
}

export function queryParameter(event: APIGatewayProxyEvent, name: string): string | undefined {
  const values = event.multiValueQueryStringParameters?.[name];
  if (values && values.length > 1) throw new AirlockError(400, 'invalid_query', `more than one ${name} parameter`);
  return values?.[0] ?? event.queryStringParameters?.[name] ?? undefined;
}
