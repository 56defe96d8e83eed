// The request arrives: it gets an id and a time, and its record starts from
// what the agent sent. Then the envelope is checked: a connection name that can
// exist and a body within the limit.
import { MAX_HEADER_VALUE_LENGTH, MAX_PATH_LENGTH } from '../../core/kube-request.ts';
import { newId, NAME_PATTERN } from '../../core/ids.ts';
import { AirlockError } from '../../core/status.ts';
import type { ProxyRequest } from '../gateway.ts';
import type { ResolvedOptions, Received } from './context.ts';

export function receive(request: ProxyRequest, options: ResolvedOptions): Received {
  return {
    request,
    record: {
      id: newId('req'),
      time: options.now(),
      agentId: '-',
      agent: '(unauthenticated)',
      // At the root the token names the connection (authenticate fills it in).
      connection: request.connection ?? '-',
      method: request.method,
      // Whole for anything parsed (the parser refuses longer); a refused raw path is cut at the same limit.
      path: request.path.slice(0, MAX_PATH_LENGTH),
      query: '',
      verb: '-',
      apiGroup: '',
      resource: '',
      subresource: '',
      namespace: '',
      name: '',
      decision: 'pending',
      reason: 'checking',
      phase: 'started',
      userAgent: request.headers['user-agent']?.[0]?.slice(0, MAX_HEADER_VALUE_LENGTH),
      sourceIp: request.sourceIp,
      ...(request.mcp ? { mcpTool: request.mcp.tool, mcpCallId: request.mcp.callId } : {}),
    },
  };
}

export function checkEnvelope({ request }: Received, options: ResolvedOptions): void {
  if (request.connection !== undefined && !NAME_PATTERN.test(request.connection)) throw new AirlockError(404, 'connection_not_found', `no connection named "${request.connection.slice(0, 64)}"`);
  if (request.body.length > options.maxRequestBodyBytes) {
    throw new AirlockError(413, 'body_too_large', `request body is ${request.body.length} bytes; the limit is ${options.maxRequestBodyBytes}`);
  }
}
