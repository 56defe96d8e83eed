// `airlock mcp`: a stdio MCP server for clients that spawn a process. It decides
// nothing: each JSON-RPC message read on stdin is POSTed to the endpoint's /mcp
// as the logged-in agent (an MCP token from /v1/mcp/token, by the agent's key or
// IAM login), and the endpoint's answer is written to stdout, one line each.
import { createInterface } from 'node:readline';
import { agentClient, type CommandContext } from './context.ts';
import type { AirlockClient } from '../client.ts';

const MODERN = '2026-07-28';
const TOKEN_MARGIN_MS = 60_000;

interface Bridge {
  client: AirlockClient;
  token?: { value: string; expiresAt: number };
  /** The version an initialize agreed to (legacy clients send no version on later messages). */
  negotiated?: string;
}

async function mcpToken(bridge: Bridge): Promise<string> {
  if (bridge.token && bridge.token.expiresAt - TOKEN_MARGIN_MS > Date.now()) return bridge.token.value;
  const { body } = await bridge.client.call<{ access_token: string; expires_in: number }>('POST', 'v1/mcp/token', { grant_type: 'client_credentials' }, { form: true });
  bridge.token = { value: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 };
  return bridge.token.value;
}

/** The transport's headers for one message: the 2026-07-28 ones from its _meta, else the negotiated version. */
export function headersFor(message: Record<string, unknown>, negotiated: string | undefined): Record<string, string> {
  const params = (typeof message.params === 'object' && message.params !== null ? message.params : {}) as Record<string, unknown>;
  const meta = (typeof params._meta === 'object' && params._meta !== null ? params._meta : {}) as Record<string, unknown>;
  const version = meta['io.modelcontextprotocol/protocolVersion'];
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (version === MODERN && typeof message.method === 'string') {
    headers['mcp-protocol-version'] = MODERN;
    headers['mcp-method'] = message.method;
    if (message.method === 'tools/call' && typeof params.name === 'string') headers['mcp-name'] = params.name;
    // The Tasks extension routes task methods by task id.
    if (message.method.startsWith('tasks/') && typeof params.taskId === 'string') headers['mcp-name'] = params.taskId;
  } else if (negotiated) headers['mcp-protocol-version'] = negotiated;
  return headers;
}

async function forward(bridge: Bridge, line: string): Promise<string | undefined> {
  let message: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) message = parsed as Record<string, unknown>;
  } catch {
    // sent as is: the endpoint answers the parse error (and records it)
  }
  const send = async () => bridge.client.raw('POST', 'mcp', { ...headersFor(message ?? {}, bridge.negotiated), authorization: `Bearer ${await mcpToken(bridge)}` }, undefined, line);
  let answer = await send();
  if (answer.status === 401) {
    bridge.token = undefined; // expired or revoked: one fresh token, then the endpoint's answer stands
    answer = await send();
  }
  if (answer.status === 202 || answer.text === '') return undefined;
  if (message?.method === 'initialize') {
    try {
      const version = (JSON.parse(answer.text) as { result?: { protocolVersion?: unknown } }).result?.protocolVersion;
      if (typeof version === 'string') bridge.negotiated = version;
    } catch {
      // not JSON: passed on as is
    }
  }
  return answer.text.replace(/\n/g, ' ');
}

export function registerMcp({ program, io, globals }: CommandContext): void {
  program
    .command('mcp')
    .description("a stdio MCP server for the logged-in agent: forwards every message to the endpoint's /mcp (decides nothing locally)")
    .action(async () => {
      const { client } = agentClient(globals());
      const bridge: Bridge = { client };
      const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
      // One message at a time, in order: answers go out in the order asked.
      for await (const line of lines) {
        if (line.trim() === '') continue;
        try {
          const answer = await forward(bridge, line);
          if (answer !== undefined) process.stdout.write(`${answer}\n`);
        } catch (error) {
          io.err(`airlock mcp: ${error instanceof Error ? error.message : String(error)}`);
          let id: unknown = null;
          try {
            id = (JSON.parse(line) as { id?: unknown }).id ?? null;
          } catch {
            // no id to answer
          }
          if (id !== null)
            process.stdout.write(
              `${JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32603, message: `Airlock endpoint unreachable or refused the bridge: ${error instanceof Error ? error.message : String(error)}` } })}\n`,
            );
        }
      }
    });
}
