// POST /mcp: Airlock as the agent's Kubernetes MCP server. Each POST is one
// JSON-RPC message, answered on its own (no session, no store): any Lambda
// instance answers any request. The agent authenticates with an MCP token
// (core/tokens.ts, from POST /v1/mcp/token); every Kubernetes request a tool
// makes is handed to the gateway in-process (Gateway.handle) with a token of
// the agent's window on the connection the call names, so it meets the same
// stages as /k8s — token, window, scope and effects, approval, write-ahead
// record, forward, transcript — and its record names the tool and the call.
// A refusal before the gateway (bad token, bad JSON, unknown tool, bad
// arguments, no window) is recorded here; nothing is forwarded.
import type { Readable } from 'node:stream';
import type { Agent, Approval, Grant } from '../core/model.ts';
import type { LifecycleDeps } from '../core/lifecycle.ts';
import { requestWindow, revokeWindow } from '../core/lifecycle.ts';
import type { Policy } from '../core/policy.ts';
import type { TokenService } from '../core/tokens.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { AirlockError, refusalFor } from '../core/status.ts';
import { isId, newId } from '../core/ids.ts';
import { errorText } from '../core/errors.ts';
import { approvalView, grantView } from '../core/views.ts';
import type { Gateway } from '../proxy/gateway.ts';
import {
  CallParams,
  ErrorCode,
  META_CLIENT_CAPABILITIES,
  INSTRUCTIONS,
  LEGACY_PROTOCOL_VERSIONS,
  MAX_MCP_BODY_BYTES,
  META_SERVER_INFO,
  Message,
  McpError,
  SERVER_INFO,
  SUPPORTED_PROTOCOL_VERSIONS,
  checkModernHeaders,
  errorResponse,
  firstIssue,
  protocolOf,
  singleHeader,
  TaskParams,
  type JsonRpcId,
} from './protocol.ts';
import { TOOLS, type KubeAnswer, type KubeCall, type ToolContext, type ToolDefinition, type ToolOutput } from './tools.ts';
import { ToolInputError } from './kube-calls.ts';
import { McpTasks, RELATED_TASK_META, TASKS_EXTENSION, TASKS_LEGACY_VERSION, taskView, toolError, type CallToolResult, type ToolOutcome } from './tasks.ts';

export interface McpHttpRequest {
  method: string;
  /** Lower-cased names; every value sent. */
  headers: Record<string, string[]>;
  body: Buffer;
  sourceIp?: string | undefined;
}

export interface McpHttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface McpEndpointOptions extends LifecycleDeps {
  tokens: TokenService;
  gateway: Pick<Gateway, 'handle' | 'exec'>;
  /** How long a 2025-11-25 tasks/result waits for a working task before telling the client to poll. @default 20 s (API Gateway ends at 29 s) */
  taskResultWaitMs?: number;
}

type Protocol = { modern: boolean; version: string };

/** Most of one Kubernetes answer a tool reads (its output is bounded again, smaller). */
const MAX_KUBE_READ_BYTES = 4 * 1024 * 1024;

/** How often a 2025-11-25 tasks/result looks at a working task's approval while it waits. */
const TASK_RESULT_POLL_MS = 1000;

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };

/** A Kubernetes request the gateway refused (its Status, as the agent is told). */
export class KubeRefusal extends Error {
  readonly status: number;
  readonly code: string;
  readonly requestId: string;
  readonly approvalId: string | undefined;

  constructor(status: number, code: string, message: string, requestId: string, approvalId: string | undefined) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.approvalId = approvalId;
  }
}

interface Caller {
  agent: Agent;
}

/** How far a tool reaches on one connection's policy: whether its verbs can ever pass, and whether approval may come into it. */
export type ToolReach = 'allowed' | 'may-need-approval' | 'needs-approval' | 'never';

const matchesVerb = (verbs: string[] | undefined, verb: string) => verbs === undefined || verbs.includes('*') || verbs.includes(verb);
const unrestricted = (rule: Policy['rules'][number]) => !rule.apiGroups && !rule.resources && !rule.namespaces && !rule.names;

export function toolReach(policy: Policy, verbs: readonly string[]): ToolReach {
  let approval: 'none' | 'some' | 'all' = 'none';
  for (const verb of verbs) {
    if (policy.rules.some((rule) => rule.effect === 'deny' && matchesVerb(rule.verbs, verb) && unrestricted(rule))) return 'never';
    const allows = policy.rules.some((rule) => rule.effect === 'allow' && matchesVerb(rule.verbs, verb));
    const approves = policy.rules.some((rule) => rule.effect === 'approve' && matchesVerb(rule.verbs, verb));
    if (!allows && !approves) return 'never';
    if (!allows) approval = 'all';
    else if (approves && approval === 'none') approval = 'some';
  }
  return approval === 'all' ? 'needs-approval' : approval === 'some' ? 'may-need-approval' : 'allowed';
}

function annotationsOf(tool: ToolDefinition) {
  const readOnly = tool.access ? tool.access.readOnly : tool.verbs.every((verb) => verb === 'get' || verb === 'list' || verb === 'watch');
  const destructive = tool.access ? tool.access.destructive : tool.verbs.some((verb) => verb === 'delete' || verb === 'deletecollection' || verb === 'patch' || verb === 'update' || verb === 'exec');
  return { title: tool.title, readOnlyHint: readOnly, destructiveHint: !readOnly && destructive, idempotentHint: readOnly, openWorldHint: false };
}

export class McpEndpoint {
  private readonly options: McpEndpointOptions;

  constructor(options: McpEndpointOptions) {
    this.options = options;
  }

  async handle(request: McpHttpRequest): Promise<McpHttpResponse> {
    let id: JsonRpcId = null;
    let caller: Caller | undefined;
    let tool: string | undefined;
    try {
      if (request.method !== 'POST') {
        // Stateless: no GET stream, no session to DELETE.
        return {
          statusCode: 405,
          headers: { ...JSON_HEADERS, allow: 'POST' },
          body: JSON.stringify(
            errorResponse(null, new McpError(405, ErrorCode.InvalidRequest, `${request.method} is not served at /mcp: POST one JSON-RPC message (stateless; no session, no event stream)`)),
          ),
        };
      }
      caller = await this.authenticate(request);
      const message = this.parse(request);
      id = 'id' in message ? message.id : null;
      if (!('id' in message)) return { statusCode: 202, headers: { 'cache-control': 'no-store' }, body: '' };
      const protocol = protocolOf(message, request.headers);
      if (protocol.modern) checkModernHeaders(message, request.headers);
      if (message.method === 'tools/call') tool = typeof message.params?.name === 'string' ? message.params.name.slice(0, 128) : undefined;
      const result = await this.dispatch(message, caller, request, protocol);
      const body = protocol.modern ? { resultType: 'complete', ...result, _meta: { ...(result._meta as Record<string, unknown> | undefined), [META_SERVER_INFO]: SERVER_INFO } } : result;
      return { statusCode: 200, headers: JSON_HEADERS, body: JSON.stringify({ jsonrpc: '2.0', id, result: body }) };
    } catch (error) {
      const mcpError = error instanceof McpError ? error : new McpError(500, ErrorCode.InternalError, 'internal error; nothing was forwarded', undefined, 'internal');
      if (!(error instanceof McpError)) this.options.log.error('mcp request failed', { error: errorText(error) });
      await this.recordRefusal({ agent: caller?.agent, tool, code: mcpError.refusal, message: mcpError.message, status: mcpError.httpStatus, request });
      const headers: Record<string, string> = { ...JSON_HEADERS };
      if (mcpError.httpStatus === 401) headers['www-authenticate'] = this.challenge(mcpError.refusal);
      return { statusCode: mcpError.httpStatus, headers, body: JSON.stringify(errorResponse(id, mcpError)) };
    }
  }

  /** RFC 9728 §5.1: where a client finds how to get a token. */
  challenge(refusal?: string): string {
    const metadata = `${this.options.tokens.mcpResource.replace(/\/mcp$/, '')}/.well-known/oauth-protected-resource/mcp`;
    const error = refusal && refusal !== 'missing_token' ? `, error="invalid_token", error_description="${refusal}"` : '';
    return `Bearer resource_metadata="${metadata}"${error}`;
  }

  private async authenticate(request: McpHttpRequest): Promise<Caller> {
    const authorization = request.headers.authorization ?? [];
    if (authorization.length > 1) throw new McpError(400, ErrorCode.InvalidRequest, 'more than one Authorization header', undefined, 'duplicate_authorization');
    const token = /^Bearer ([^\s]+)$/.exec(authorization[0] ?? '')?.[1] ?? '';
    try {
      const claims = await this.options.tokens.verifyMcp(token);
      const agent = await this.options.state.getAgent(claims.agentId);
      if (!agent) throw new AirlockError(401, 'invalid_token', 'the agent this token names does not exist');
      if (agent.status !== 'enabled') throw new AirlockError(403, 'agent_disabled', `agent "${agent.name}" is disabled`);
      return { agent };
    } catch (error) {
      const refusal = refusalFor(error);
      if (!refusal) throw error;
      throw new McpError(
        refusal.status,
        ErrorCode.Unauthorized,
        `${refusal.message}${refusal.status === 401 ? ' (get an MCP token: POST /v1/mcp/token, grant_type=client_credentials)' : ''}`,
        undefined,
        refusal.code,
      );
    }
  }

  private parse(request: McpHttpRequest): Message {
    const type = singleHeader(request.headers, 'content-type') ?? '';
    if (type.split(';')[0]!.trim().toLowerCase() !== 'application/json')
      throw new McpError(415, ErrorCode.InvalidRequest, 'Content-Type must be application/json', undefined, 'unsupported_media_type');
    if (request.body.length > MAX_MCP_BODY_BYTES)
      throw new McpError(413, ErrorCode.InvalidRequest, `the message is ${request.body.length} bytes; the limit is ${MAX_MCP_BODY_BYTES}`, undefined, 'body_too_large');
    let parsed: unknown;
    try {
      parsed = JSON.parse(request.body.toString('utf8'));
    } catch {
      throw new McpError(400, ErrorCode.ParseError, 'the body is not valid JSON', undefined, 'parse_error');
    }
    if (Array.isArray(parsed)) throw new McpError(400, ErrorCode.InvalidRequest, 'JSON-RPC batches are not accepted: send one message per POST', undefined, 'batch_refused');
    if (typeof parsed === 'object' && parsed !== null && !('method' in parsed) && ('result' in parsed || 'error' in parsed)) {
      // Airlock never sends requests to clients (no elicitation, no sampling): a response — say, an
      // elicitation "accept" — answers nothing, and never counts as an approval.
      throw new McpError(
        400,
        ErrorCode.InvalidRequest,
        "Airlock sends no requests to clients, so this response answers nothing; an answer from the client never approves anything (only an approver on Airlock's approval page does)",
        undefined,
        'unexpected_response',
      );
    }
    const message = Message.safeParse(parsed);
    if (!message.success) throw new McpError(400, ErrorCode.InvalidRequest, `not a JSON-RPC 2.0 request: ${firstIssue(message.error)}`, undefined, 'invalid_request');
    return message.data;
  }

  private async dispatch(message: Message & { id: string | number }, caller: Caller, request: McpHttpRequest, protocol: Protocol): Promise<Record<string, unknown>> {
    switch (message.method) {
      case 'initialize': {
        const requested = message.params?.protocolVersion;
        const protocolVersion = typeof requested === 'string' && (LEGACY_PROTOCOL_VERSIONS as readonly string[]).includes(requested) ? requested : LEGACY_PROTOCOL_VERSIONS[0];
        // 2025-11-25 has tasks in core: tools/call may be task-augmented, and tasks/get, tasks/result, tasks/cancel are served (no tasks/list).
        const tasks = protocolVersion === TASKS_LEGACY_VERSION ? { tasks: { cancel: {}, requests: { tools: { call: {} } } } } : {};
        return { protocolVersion, capabilities: { tools: { listChanged: false }, ...tasks }, serverInfo: SERVER_INFO, instructions: INSTRUCTIONS };
      }
      case 'server/discover':
        // 2026-07-28 cache hints (required on cacheable results): the same for everyone, for an hour.
        return {
          supportedVersions: SUPPORTED_PROTOCOL_VERSIONS,
          capabilities: { tools: { listChanged: false }, extensions: { [TASKS_EXTENSION]: {} } },
          serverInfo: SERVER_INFO,
          instructions: INSTRUCTIONS,
          ttlMs: 3_600_000,
          cacheScope: 'public',
        };
      case 'ping':
        return {};
      case 'tools/list':
        // Per agent, and it changes as windows open and end: never shared, never reused.
        return { tools: await this.listTools(caller.agent, protocol), ttlMs: 0, cacheScope: 'private' };
      case 'tools/call':
        return this.callTool(message, caller, request, protocol);
      case 'tasks/get':
      case 'tasks/result':
      case 'tasks/cancel':
      case 'tasks/update':
        return this.taskMethod(message, caller, request, protocol);
      default:
        throw new McpError(200, ErrorCode.MethodNotFound, `method ${message.method.slice(0, 128)} is not served (Airlock serves tools and their tasks only)`, undefined, 'method_not_found');
    }
  }

  /** The tools the agent's windows and their policies can ever allow; each says whether approval comes into it. */
  private async listTools(agent: Agent, protocol: Protocol) {
    const now = this.options.now();
    const grants = (await this.options.state.listGrants({ agentId: agent.id })).filter((grant) => grant.status === 'pending' || (grant.status === 'active' && (grant.expiresAt ?? 0) > now));
    const names = [...new Set(grants.map((grant) => grant.connection))].sort();
    const policies = (await Promise.all(names.map(async (name) => [name, (await this.options.state.getConnection(name))?.policy] as const))).filter(
      (entry): entry is readonly [string, Policy] => entry[1] !== undefined,
    );
    const tools = [];
    for (const tool of TOOLS) {
      let note = '';
      const reach: Record<string, ToolReach> = {};
      if (tool.verbs.length > 0 || tool.name === 'can_i') {
        for (const [name, policy] of policies) reach[name] = tool.verbs.length ? toolReach(policy, tool.verbs) : 'allowed';
        const usable = Object.entries(reach).filter(([, value]) => value !== 'never');
        if (usable.length === 0) continue;
        const held = usable.filter(([, value]) => value === 'needs-approval').map(([name]) => name);
        const maybe = usable.filter(([, value]) => value === 'may-need-approval').map(([name]) => name);
        note = ` Connections: ${usable.map(([name]) => name).join(', ')}.${held.length ? ` Needs a one-time human approval on: ${held.join(', ')}.` : ''}${maybe.length ? ` May need a one-time human approval (depending on the object) on: ${maybe.join(', ')}.` : ''}`;
      }
      // 2025-11-25: a tool that may be held can run as a task (the client then polls instead of retrying).
      const mayBeHeld = Object.values(reach).some((value) => value === 'needs-approval' || value === 'may-need-approval');
      tools.push({
        name: tool.name,
        title: tool.title,
        description: tool.description + note,
        inputSchema: tool.input.toJSONSchema({ io: 'input', target: 'draft-2020-12' }),
        annotations: annotationsOf(tool),
        ...(!protocol.modern && protocol.version === TASKS_LEGACY_VERSION && mayBeHeld ? { execution: { taskSupport: 'optional' } } : {}),
        ...(Object.keys(reach).length ? { _meta: { 'airlock.dev/approval': reach } } : {}),
      });
    }
    return tools;
  }

  private async callTool(message: Message & { id: string | number }, caller: Caller, request: McpHttpRequest, protocol: Protocol): Promise<Record<string, unknown>> {
    const params = CallParams.safeParse(message.params ?? {});
    if (!params.success) throw new McpError(200, ErrorCode.InvalidParams, firstIssue(params.error, 'params'), undefined, 'invalid_params');
    const tool = TOOLS.find((candidate) => candidate.name === params.data.name);
    if (!tool) throw new McpError(200, ErrorCode.InvalidParams, `unknown tool "${params.data.name}"; tools/list names the ones there are`, undefined, 'unknown_tool');
    // 2025-11-25: the client asks for a task up front (params.task) and gets one either way.
    // 2026-07-28 (Tasks extension): Airlock decides — a held call becomes a task for a client that declared the extension.
    const legacyTask = !protocol.modern && params.data.task !== undefined;
    if (legacyTask && protocol.version !== TASKS_LEGACY_VERSION)
      throw new McpError(200, ErrorCode.InvalidParams, `params.task: tasks exist from protocol version ${TASKS_LEGACY_VERSION} (this request is ${protocol.version})`, undefined, 'invalid_params');
    const callId = newId('mcp');
    const args = params.data.arguments ?? {};
    const outcome = await this.runTool(caller.agent, tool, args, callId, request);
    if (legacyTask || (outcome.held && protocol.modern && declaresTasks(message))) {
      const { task, handle } = await this.tasks(request).create(caller.agent, {
        tool: tool.name,
        callId,
        connection: typeof args.connection === 'string' ? args.connection : undefined,
        outcome,
        args,
      });
      const view = taskView(task, handle, protocol.modern, this.options.now());
      return protocol.modern ? { ...view, resultType: 'task' } : { task: view };
    }
    return outcome.result;
  }

  /** The task methods: the agent's own tasks only; a held one advances as its approval is decided. */
  private async taskMethod(message: Message & { id: string | number }, caller: Caller, request: McpHttpRequest, protocol: Protocol): Promise<Record<string, unknown>> {
    if (protocol.modern ? message.method === 'tasks/result' : protocol.version !== TASKS_LEGACY_VERSION || message.method === 'tasks/update')
      throw new McpError(200, ErrorCode.MethodNotFound, `method ${message.method} is not part of protocol version ${protocol.version}`, undefined, 'method_not_found');
    if (protocol.modern && !declaresTasks(message))
      throw new McpError(
        400,
        ErrorCode.MissingRequiredClientCapability,
        'Missing required client capability',
        { requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } },
        'missing_client_capability',
      );
    const params = TaskParams.safeParse(message.params ?? {});
    if (!params.success) throw new McpError(200, ErrorCode.InvalidParams, firstIssue(params.error, 'params'), undefined, 'invalid_params');
    const tasks = this.tasks(request);
    const now = () => this.options.now();
    switch (message.method) {
      case 'tasks/cancel': {
        const { task, handle } = await tasks.cancel(caller.agent, params.data.taskId);
        return protocol.modern ? {} : taskView(task, handle, false, now());
      }
      case 'tasks/update': {
        // Airlock never asks a client for input (no elicitation): an answer has nothing to answer, and never approves anything.
        await tasks.find(caller.agent, params.data.taskId);
        throw new McpError(
          200,
          ErrorCode.InvalidParams,
          "this task asks for no input: Airlock never asks a client for input, and an answer never approves anything (only an approver on Airlock's approval page does)",
          undefined,
          'unexpected_input',
        );
      }
      case 'tasks/result': {
        const deadline = now() + (this.options.taskResultWaitMs ?? 20_000);
        let { task, handle } = await tasks.advance(caller.agent, params.data.taskId);
        while (task.status === 'working' && now() < deadline) {
          await sleep(Math.min(TASK_RESULT_POLL_MS, Math.max(0, deadline - now())));
          ({ task, handle } = await tasks.advance(caller.agent, params.data.taskId));
        }
        if (task.status === 'working')
          throw new McpError(200, ErrorCode.InvalidRequest, `task ${task.id} is still working (${task.statusMessage ?? 'waiting'}); poll it with tasks/get`, undefined, 'task_working');
        if (task.status !== 'completed') throw new McpError(200, ErrorCode.InvalidParams, `task ${task.id} was ${task.status}: it has no result`, undefined, 'task_terminal');
        const result = await tasks.resultOf(task, handle);
        return { ...result, _meta: { ...(result._meta as Record<string, unknown> | undefined), [RELATED_TASK_META]: { taskId: handle.taskId } } };
      }
      default: {
        const { task, handle } = await tasks.advance(caller.agent, params.data.taskId);
        const view = taskView(task, handle, protocol.modern, now());
        // 2026-07-28 inlines the result (a CallToolResult of that revision: resultType "complete"); 2025-11-25 hands it out with tasks/result.
        return protocol.modern && task.status === 'completed' ? { ...view, result: { resultType: 'complete', ...(await tasks.resultOf(task, handle)) } } : view;
      }
    }
  }

  private tasks(request: McpHttpRequest): McpTasks {
    return new McpTasks(this.options, {
      run: (agent, name, args, callId) => {
        const tool = TOOLS.find((candidate) => candidate.name === name);
        if (!tool) return Promise.resolve({ result: toolError(`the tool ${name} no longer exists; nothing was sent`, { callId }) });
        return this.runTool(agent, tool, args, callId, request);
      },
    });
  }

  /** One tool call through the gateway's stages: its result, and the approval and exact arguments when it was held. */
  private async runTool(agent: Agent, tool: ToolDefinition, rawArgs: Record<string, unknown>, callId: string, request: McpHttpRequest): Promise<ToolOutcome> {
    const requestIds: string[] = [];
    const refused = async (code: string, text: string, extra: Record<string, unknown> = {}, connection?: string): Promise<ToolOutcome> => {
      await this.recordRefusal({ agent, tool: tool.name, callId, connection, code, message: text, status: 400, request });
      return { result: toolError(text, { callId, requestIds, code, ...extra }) };
    };
    const args = tool.input.safeParse(rawArgs);
    if (!args.success) return refused('invalid_arguments', `invalid arguments: ${firstIssue(args.error)}`);
    // Only a tool that fills in a value itself (rollout_restart's stamp) names the arguments to repeat:
    // echoing the agent's own input back could carry Secret data from an apply.
    let retryArguments: Record<string, unknown> | undefined;
    const context = this.toolContext(agent, tool.name, callId, requestIds, (retry) => (retryArguments = retry));
    try {
      const output: ToolOutput = await tool.run(args.data, context);
      return {
        result: {
          content: [{ type: 'text', text: output.text }],
          ...(output.structured ? { structuredContent: output.structured } : {}),
          isError: false,
          _meta: { 'airlock.dev/callId': callId, 'airlock.dev/requestIds': requestIds },
        },
      };
    } catch (error) {
      if (error instanceof KubeRefusal) {
        const { result, held } = await this.kubeRefusal(error, tool, retryArguments, callId, requestIds);
        return held && error.approvalId ? { result, held: { approvalId: error.approvalId, approval: held.approval, arguments: retryArguments ?? args.data } } : { result };
      }
      if (error instanceof ToolInputError) return refused('invalid_arguments', `invalid arguments: ${error.message}`);
      const refusal = refusalFor(error);
      if (refusal) return refused(refusal.code, refusal.message, {}, typeof args.data.connection === 'string' ? args.data.connection : undefined);
      this.options.log.error('mcp tool failed', { tool: tool.name, callId, error: errorText(error) });
      return refused('internal', 'internal error; nothing more was forwarded');
    }
  }

  /** A refusal from the gateway: already recorded there. A held request says which approval, who was asked, and how to go on. */
  private async kubeRefusal(
    error: KubeRefusal,
    tool: ToolDefinition,
    retryArguments: Record<string, unknown> | undefined,
    callId: string,
    requestIds: string[],
  ): Promise<{ result: CallToolResult; held?: { approval: Approval | undefined } }> {
    if (error.code !== 'approval_required' || !error.approvalId)
      return {
        result: toolError(`refused (${error.status} ${error.code}): ${error.message.replace(/^airlock: /, '')}`, { callId, requestIds, code: error.code, status: error.status }),
      };
    const approval = await this.options.state.getApproval(error.approvalId);
    const approvers = approval?.approvers ?? [];
    const text = [
      `HELD for a one-time human approval: ${error.approvalId}.`,
      `${error.message.replace(/^airlock: /, '')}`,
      approvers.length ? `Approvers emailed: ${approvers.join(', ')} (${approval?.minApprovals ?? 1} needed).` : '',
      `Check with the approval_status tool {"id":"${error.approvalId}"} (or \`airlock approvals wait ${error.approvalId}\`).`,
      retryArguments
        ? `Once it is approved, call ${tool.name} again with exactly these arguments: ${JSON.stringify(retryArguments)} — it then passes once.`
        : `Once it is approved, call ${tool.name} again with exactly the same arguments — it then passes once (the approval is bound to the exact request).`,
      "An answer from this client (elicitation or otherwise) never approves it: only an approver on Airlock's approval page does.",
    ]
      .filter(Boolean)
      .join('\n');
    return { result: toolError(text, { callId, requestIds, code: 'approval_required', approvalId: error.approvalId, approvers, ...(retryArguments ? { retryArguments } : {}) }), held: { approval } };
  }

  private toolContext(agent: Agent, tool: string, callId: string, requestIds: string[], retryWith: (args: Record<string, unknown>) => void): ToolContext {
    const deps = this.options;
    const ownGrant = async (id: string): Promise<Grant> => {
      const grant = isId(id, 'gr') ? await deps.state.getGrant(id) : undefined;
      if (!grant || grant.agentId !== agent.id) throw new ToolInputError('id', `no window ${id.slice(0, 64)} of yours`);
      return grant;
    };
    return {
      agent,
      deps,
      retryWith,
      kube: (connection, call) => this.kube(agent, { tool, callId }, connection, call, requestIds),
      requestWindow: async (input) => {
        const connection = await deps.state.getConnection(input.connection);
        if (!connection) throw new AirlockError(404, 'connection_not_found', `no connection named "${input.connection}"`);
        return requestWindow(deps, agent, connection, { duration: input.duration, reason: input.reason, ...(input.ticket ? { ticket: input.ticket } : {}) });
      },
      endWindow: async (id) => {
        const grant = await ownGrant(id);
        await revokeWindow(deps, grant, agent.name, 'ended by the agent (MCP end_access)');
        return (await deps.state.getGrant(grant.id)) ?? grant;
      },
      grants: () => deps.state.listGrants({ agentId: agent.id }),
      approval: async (id): Promise<Approval> => {
        const approval = isId(id, 'apr') ? await deps.state.getApproval(id) : undefined;
        if (!approval || approval.agentId !== agent.id) throw new ToolInputError('id', `no approval ${id.slice(0, 64)} of yours`);
        return approval;
      },
      grantView: (grant) => grantView(grant, deps.now()),
      approvalView: (approval) => approvalView(approval, deps.now()),
    };
  }

  /** One Kubernetes request, through the gateway's stages, as the agent in its newest open window on `connection`. */
  private async kube(agent: Agent, mcp: { tool: string; callId: string }, connectionName: string, call: KubeCall, requestIds: string[]): Promise<KubeAnswer> {
    const { state, tokens, gateway } = this.options;
    const now = this.options.now();
    const connection = await state.getConnection(connectionName);
    if (!connection) throw new AirlockError(404, 'connection_not_found', `no connection named "${connectionName}"`);
    const grant = (await state.listGrants({ agentId: agent.id }))
      .filter((candidate) => candidate.connection === connection.name && candidate.status === 'active' && (candidate.expiresAt ?? 0) > now)
      .sort((a, b) => (b.expiresAt ?? 0) - (a.expiresAt ?? 0))[0];
    if (!grant) throw new AirlockError(403, 'no_window', `no open window on connection "${connection.name}": ask for one with request_access`);
    // A token of that window, made here and used here only: the gateway checks it like any other.
    const { token } = await tokens.issue({ agentId: agent.id, agentName: agent.name, connection: connection.name, grantId: grant.id, windowExpiresAt: grant.expiresAt! });
    const query: Record<string, string[]> = {};
    for (const [name, value] of Object.entries(call.query ?? {})) query[name] = [value];
    const headers: Record<string, string[]> = { authorization: [`Bearer ${token}`], accept: ['application/json'], 'user-agent': [`airlock-mcp/${mcp.tool}`] };
    if (call.contentType) headers['content-type'] = [call.contentType];
    const request = { connection: connection.name, path: call.path, method: call.method, query, headers, body: Buffer.from(call.body ?? ''), mcp };
    const { response, done } = await (call.via === 'exec' ? gateway.exec(request) : gateway.handle(request));
    const { bytes, cut } = await readBounded(response.body, MAX_KUBE_READ_BYTES);
    await done;
    const requestId = response.headers['x-airlock-request-id'] ?? '-';
    requestIds.push(requestId);
    if (response.statusCode >= 400) {
      let status: { message?: unknown; details?: { name?: unknown; causes?: { reason?: unknown }[] } } = {};
      try {
        status = JSON.parse(bytes.toString('utf8')) as typeof status;
      } catch {
        // not a Status: the code says enough
      }
      const code = typeof status.details?.causes?.[0]?.reason === 'string' ? status.details.causes[0].reason : `http_${response.statusCode}`;
      const approvalId = typeof status.details?.name === 'string' && isId(status.details.name, 'apr') ? status.details.name : undefined;
      throw new KubeRefusal(response.statusCode, code, typeof status.message === 'string' ? status.message.slice(0, 2000) : `the cluster answered ${response.statusCode}`, requestId, approvalId);
    }
    return { status: response.statusCode, body: bytes, cut, requestId };
  }

  /** A refusal made here (not by the gateway): recorded like a refused request, naming the tool and the call. */
  private async recordRefusal(input: {
    agent: Agent | undefined;
    tool?: string | undefined;
    callId?: string;
    connection?: string | undefined;
    code: string;
    message: string;
    status: number;
    request: McpHttpRequest;
  }): Promise<void> {
    try {
      await this.options.records.begin({
        id: newId('req'),
        time: this.options.now(),
        agentId: input.agent?.id ?? '-',
        agent: input.agent?.name ?? '(unauthenticated)',
        connection: input.connection ?? '-',
        method: input.request.method.slice(0, 16),
        path: '/mcp',
        query: '',
        verb: 'mcp',
        apiGroup: '',
        resource: '',
        subresource: '',
        namespace: '',
        name: '',
        decision: input.status >= 500 ? 'error' : 'denied',
        reason: `${input.code}: ${input.message}`.slice(0, 1000),
        phase: 'complete',
        status: input.status,
        userAgent: input.request.headers['user-agent']?.[0]?.slice(0, 1024),
        sourceIp: input.request.sourceIp,
        ...(input.tool ? { mcpTool: input.tool } : {}),
        ...(input.callId ? { mcpCallId: input.callId } : {}),
      });
    } catch (error) {
      // Nothing was forwarded either way: the refusal stands, and the log says the record is missing.
      this.options.log.error('mcp refusal not recorded', { code: input.code, error: errorText(error) });
    }
  }
}

/** Whether this 2026-07-28 request's client declared the Tasks extension in its per-request capabilities. */
function declaresTasks(message: Message): boolean {
  const capabilities = (message.params?._meta as Record<string, unknown> | undefined)?.[META_CLIENT_CAPABILITIES] as { extensions?: Record<string, unknown> } | undefined;
  const extension = capabilities?.extensions?.[TASKS_EXTENSION];
  return typeof extension === 'object' && extension !== null;
}

async function readBounded(body: Readable | string, limit: number): Promise<{ bytes: Buffer; cut: boolean }> {
  if (typeof body === 'string') {
    const bytes = Buffer.from(body);
    return { bytes: bytes.subarray(0, limit), cut: bytes.length > limit };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    chunks.push(buffer);
    size += buffer.length;
    if (size > limit) {
      body.destroy();
      return { bytes: Buffer.concat(chunks).subarray(0, limit), cut: true };
    }
  }
  return { bytes: Buffer.concat(chunks), cut: false };
}
