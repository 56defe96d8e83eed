// The official MCP TypeScript SDK client against a local stack: its OAuth
// client-credentials provider (agent id/key), Streamable HTTP, and a fetch that
// trusts exactly the stack's CA (Node's fetch takes no CA option).
import { request } from 'node:https';
import { Readable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

/** fetch over node:https with `ca` pinned (certificates are verified; nothing is skipped). */
export function fetchWithCa(ca: string): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const headers = new Headers(input instanceof Request ? input.headers : undefined);
    new Headers(init?.headers).forEach((value, name) => headers.set(name, value));
    const body = init?.body === undefined || init.body === null ? undefined : typeof init.body === 'string' ? init.body : Buffer.from(await new Response(init.body).arrayBuffer());
    return new Promise<Response>((resolve, reject) => {
      // agent: false: no pooled socket that the server may have closed meanwhile (see stack.ts https).
      const req = request(url, { method: init?.method ?? 'GET', ca, agent: false, headers: Object.fromEntries(headers.entries()), signal: init?.signal ?? undefined }, (res) => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) for (const one of Array.isArray(value) ? value : [value]) responseHeaders.append(name, one);
        }
        const status = res.statusCode ?? 500;
        const stream = status === 204 || status === 304 ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
        resolve(new Response(stream, { status, headers: responseHeaders }));
      });
      req.on('error', reject);
      req.end(body);
    });
  };
}

export interface McpAgent {
  client: Client;
  close(): Promise<void>;
}

/** An SDK client connected to `${url}/mcp` as the agent, getting its token by client credentials. */
export async function connectAgent(url: string, ca: string, agent: { id: string; secret: string }, capabilities: Record<string, unknown> = {}): Promise<McpAgent> {
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
    authProvider: new ClientCredentialsProvider({ clientId: agent.id, clientSecret: agent.secret, expectedIssuer: url }),
    fetch: fetchWithCa(ca),
  });
  const client = new Client({ name: 'airlock-e2e', version: '1.0.0' }, { capabilities });
  await client.connect(transport);
  return { client, close: () => client.close() };
}
