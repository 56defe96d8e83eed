// The MCP wire protocol Airlock speaks at /mcp (Streamable HTTP, stateless): the
// 2026-07-28 revision (no handshake; every request carries its protocol version
// and client capabilities in _meta and the MCP-Protocol-Version / Mcp-Method /
// Mcp-Name headers; server/discover; results carry resultType) and the
// initialize-based revisions the official TypeScript SDK's client speaks today.
// Nothing here keeps state between requests: any instance answers any request.
import * as z from 'zod';

/** The stateless revision. */
export const MODERN_PROTOCOL_VERSION = '2026-07-28';
/** Initialize-based revisions, newest first (what `initialize` may agree to). */
export const LEGACY_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26'] as const;
export const SUPPORTED_PROTOCOL_VERSIONS = [MODERN_PROTOCOL_VERSION, ...LEGACY_PROTOCOL_VERSIONS];
/** A legacy request without MCP-Protocol-Version is read as this one (the spec's rule). */
export const DEFAULT_LEGACY_VERSION = '2025-03-26';

export const META_PROTOCOL_VERSION = 'io.modelcontextprotocol/protocolVersion';
export const META_CLIENT_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';
export const META_SERVER_INFO = 'io.modelcontextprotocol/serverInfo';

/** Largest POST body /mcp reads (a manifest for apply fits well inside). */
export const MAX_MCP_BODY_BYTES = 1024 * 1024;

export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** Airlock's own: no (valid) token. */
  Unauthorized: -32001,
  /** 2026-07-28: headers and body disagree (or a required header is missing). */
  HeaderMismatch: -32020,
  /** 2026-07-28: the request needs a capability the client did not declare (e.g. the Tasks extension). */
  MissingRequiredClientCapability: -32021,
  UnsupportedProtocolVersion: -32022,
} as const;

export const SERVER_INFO = { name: 'airlock', title: 'Airlock (Kubernetes through the single access boundary)', version: '0.1.0' };

export const INSTRUCTIONS =
  'Airlock is the only way to the Kubernetes clusters (connections) here. Ask for a window first (request_access), then pass the connection on every call. ' +
  'Changes may be held for a human approval: the tool error names the approval; check it with approval_status and call again with exactly the same arguments once approved ' +
  '(a client that supports MCP tasks gets a task instead, which runs the call once when it is approved). ' +
  "Nothing you answer approves anything: only an approver on Airlock's approval page does.";

const RequestId = z.union([z.string().max(256), z.number().int()]);

/** One JSON-RPC message (batches are refused before this). */
export const Message = z.union([
  z.strictObject({ jsonrpc: z.literal('2.0'), id: RequestId, method: z.string().min(1).max(128), params: z.record(z.string(), z.unknown()).optional() }),
  z.strictObject({ jsonrpc: z.literal('2.0'), method: z.string().min(1).max(128), params: z.record(z.string(), z.unknown()).optional() }),
]);
export type Message = z.infer<typeof Message>;

export const CallParams = z.looseObject({
  name: z.string().min(1).max(128),
  arguments: z.record(z.string(), z.unknown()).optional(),
  /** 2025-11-25: ask for the call to run as a task (a requested ttl is a wish; the task's own is what counts). */
  task: z.looseObject({ ttl: z.number().int().nonnegative().optional(), pollInterval: z.number().int().nonnegative().optional() }).optional(),
});

/** tasks/get, tasks/result, tasks/cancel, tasks/update. */
export const TaskParams = z.looseObject({ taskId: z.string().min(1).max(128) });

export type JsonRpcId = string | number | null;

export class McpError extends Error {
  readonly httpStatus: number;
  readonly code: number;
  readonly data: Record<string, unknown> | undefined;
  /** Airlock's refusal code, for the record. */
  readonly refusal: string;

  constructor(httpStatus: number, code: number, message: string, data?: Record<string, unknown>, refusal = 'invalid_request') {
    super(message);
    this.httpStatus = httpStatus;
    this.code = code;
    this.data = data;
    this.refusal = refusal;
  }
}

export function errorResponse(id: JsonRpcId, error: McpError): Record<string, unknown> {
  return { jsonrpc: '2.0', id, error: { code: error.code, message: error.message, ...(error.data ? { data: error.data } : {}) } };
}

/** The first value of a header, or undefined; several values of one MCP header are a mismatch. */
export function singleHeader(headers: Record<string, string[]>, name: string): string | undefined {
  const values = headers[name];
  if (values && values.length > 1) throw new McpError(400, ErrorCode.HeaderMismatch, `more than one ${name} header`, undefined, 'header_mismatch');
  return values?.[0];
}

/** The era of one request: its _meta protocol version (2026-07-28) or the MCP-Protocol-Version header (legacy). */
export function protocolOf(message: Message, headers: Record<string, string[]>): { modern: boolean; version: string } {
  const meta = message.params?._meta;
  const metaVersion = typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>)[META_PROTOCOL_VERSION] : undefined;
  const headerVersion = singleHeader(headers, 'mcp-protocol-version');
  if (metaVersion !== undefined) {
    if (typeof metaVersion !== 'string' || metaVersion !== MODERN_PROTOCOL_VERSION) {
      throw new McpError(
        400,
        ErrorCode.UnsupportedProtocolVersion,
        `protocol version ${JSON.stringify(metaVersion).slice(0, 40)} is not supported`,
        { supported: SUPPORTED_PROTOCOL_VERSIONS, requested: typeof metaVersion === 'string' ? metaVersion.slice(0, 40) : null },
        'unsupported_protocol_version',
      );
    }
    if (headerVersion !== metaVersion)
      throw new McpError(
        400,
        ErrorCode.HeaderMismatch,
        `MCP-Protocol-Version header (${headerVersion ?? 'absent'}) differs from params._meta["${META_PROTOCOL_VERSION}"] (${metaVersion})`,
        undefined,
        'header_mismatch',
      );
    return { modern: true, version: metaVersion };
  }
  if (headerVersion === MODERN_PROTOCOL_VERSION && 'id' in message) {
    throw new McpError(400, ErrorCode.InvalidParams, `params._meta["${META_PROTOCOL_VERSION}"]: required under protocol version ${MODERN_PROTOCOL_VERSION}`, undefined, 'invalid_params');
  }
  if (headerVersion !== undefined && headerVersion !== MODERN_PROTOCOL_VERSION && !(LEGACY_PROTOCOL_VERSIONS as readonly string[]).includes(headerVersion)) {
    throw new McpError(
      400,
      ErrorCode.UnsupportedProtocolVersion,
      `protocol version "${headerVersion.slice(0, 40)}" is not supported`,
      { supported: SUPPORTED_PROTOCOL_VERSIONS, requested: headerVersion.slice(0, 40) },
      'unsupported_protocol_version',
    );
  }
  return { modern: false, version: headerVersion ?? DEFAULT_LEGACY_VERSION };
}

/** 2026-07-28 requests name their method (and a tool call its tool) in headers too; they must agree with the body. */
export function checkModernHeaders(message: Message & { id: unknown }, headers: Record<string, string[]>): void {
  const method = singleHeader(headers, 'mcp-method');
  if (method !== message.method)
    throw new McpError(400, ErrorCode.HeaderMismatch, `Mcp-Method header (${method ?? 'absent'}) differs from the body's method (${message.method})`, undefined, 'header_mismatch');
  const capabilities = (message.params?._meta as Record<string, unknown> | undefined)?.[META_CLIENT_CAPABILITIES];
  if (typeof capabilities !== 'object' || capabilities === null || Array.isArray(capabilities)) {
    throw new McpError(400, ErrorCode.InvalidParams, `params._meta["${META_CLIENT_CAPABILITIES}"]: required (an object)`, undefined, 'invalid_params');
  }
  if (message.method === 'tools/call') {
    const name = singleHeader(headers, 'mcp-name');
    if (name !== message.params?.name) throw new McpError(400, ErrorCode.HeaderMismatch, `Mcp-Name header (${name?.slice(0, 128) ?? 'absent'}) differs from params.name`, undefined, 'header_mismatch');
  }
  if (message.method.startsWith('tasks/')) {
    // The Tasks extension routes by task: Mcp-Name carries params.taskId. (Never echoed: a task id carries its key.)
    if (singleHeader(headers, 'mcp-name') !== message.params?.taskId) throw new McpError(400, ErrorCode.HeaderMismatch, 'Mcp-Name header differs from params.taskId', undefined, 'header_mismatch');
  }
}

/** The first schema issue, with its field: what a bad argument is told. */
export function firstIssue(error: z.ZodError, prefix = ''): string {
  const issue = error.issues[0]!;
  const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  return `${path || 'arguments'}: ${issue.message}`;
}
