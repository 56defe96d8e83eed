// /k8s/{connection}/{proxy+}: the Kubernetes API through the gateway; and the
// same at the root (/api, /apis, /version, /openapi), where the token names
// the connection: client-go replaces the server URL's path for
// `--raw`, and `kubectl proxy` drops it. A response-streaming handler (API
// Gateway STREAM -> InvokeWithResponseStream): status and headers first, then
// the body as it arrives (watch, logs -f). POST /v1/exec (`airlock exec`) is
// served here too: the same gateway, its exec path.
import middy from '@middy/core';
import { executionModeStreamifyResponse } from '@middy/core/StreamifyResponse';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import type { ProxyRequest, ProxyResponse } from '../proxy/gateway.ts';
import { statusResponse } from '../proxy/refusals.ts';
import { AirlockError } from '../core/status.ts';
import { rawBody } from '../runtime/http.ts';
import type { Services } from '../runtime/services.ts';
import { servicesFromEnvironment } from '../runtime/environment.ts';
import { createServices } from '../runtime/services.ts';
import { ENV } from '../runtime/aws-config.ts';
import { EksCredentialProvider } from '../adapters/eks-credentials.ts';
import { logger } from '../runtime/logger.ts';
import { errorText } from '../core/errors.ts';

/** API Gateway event -> the gateway's request. Header names are lower-cased; every value is kept. */
export function proxyRequestFromEvent(event: APIGatewayProxyEvent): ProxyRequest {
  const match = /^\/k8s\/([^/]*)(\/.*)?$/.exec(event.path);
  const headers: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(event.multiValueHeaders ?? {})) {
    if (values) (headers[name.toLowerCase()] ??= []).push(...values);
  }
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (value !== undefined && !headers[name.toLowerCase()]) headers[name.toLowerCase()] = [value];
  }
  const query: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(event.multiValueQueryStringParameters ?? {})) {
    if (values) query[name] = [...values];
  }
  return {
    connection: match ? match[1]! : undefined,
    path: match ? (match[2] ?? '/') : event.path,
    method: event.httpMethod.toUpperCase(),
    query,
    headers,
    body: rawBody(event),
    sourceIp: event.requestContext?.identity?.sourceIp ?? undefined,
  };
}

/** The exec route (lambdas/routes.ts). */
export const EXEC_RESOURCE = '/v1/exec';

// Work that must finish after the body has streamed (record completion, transcript).
const pendingWork = new WeakMap<object, Promise<void>>();

export function createProxyHandler(getServices: () => Promise<Services>) {
  return middy<APIGatewayProxyEvent, ProxyResponse, Error, Context>({
    executionMode: executionModeStreamifyResponse,
    requestEnd: async (request) => {
      await pendingWork.get(request.context);
    },
  }).handler(async (event, context) => {
    let services: Services;
    try {
      services = await getServices();
    } catch (error) {
      logger.error('gateway cannot start', { error: errorText(error) });
      return statusResponse(new AirlockError(503, 'gateway_unavailable', 'the gateway cannot check requests right now, so nothing was forwarded'), '-');
    }
    const request = proxyRequestFromEvent(event);
    if (event.resource === '/mcp') {
      let answer;
      try {
        answer = await services.mcp.handle({ method: request.method, headers: request.headers, body: request.body, sourceIp: request.sourceIp });
      } catch (error) {
        // The endpoint is loaded on the first /mcp request (runtime/services.ts); if it cannot be, nothing was called.
        if (error instanceof AirlockError) return statusResponse(error, '-');
        throw error;
      }
      return { statusCode: answer.statusCode, headers: answer.headers, body: answer.body };
    }
    const { response, done } = await (event.resource === EXEC_RESOURCE ? services.gateway.exec(request) : services.gateway.handle(request));
    pendingWork.set(context, done);
    return response;
  });
}

// Only the proxy reaches clusters, so only its bundle carries STS and the EKS token code.
export const handler = createProxyHandler(servicesFromEnvironment((config) => createServices({ ...config, eks: new EksCredentialProvider({ externalId: process.env[ENV.eksExternalId] }) })));
