// Airlock as the agent's Kubernetes MCP server (/mcp), driven by the official
// MCP TypeScript SDK client over Streamable HTTP against the local stack and a
// real kube-apiserver: the agent gets a token by client credentials, asks for
// its own window, reads, is refused outside scope, is held on a delete, and
// passes once after an approver approves on the emailed page. Every call is
// recorded naming the tool and the call; bad input is refused and recorded.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { kubectl } from '../support/kubectl.ts';
import { EXAMPLE_POLICY, startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';
import { connectAgent, fetchWithCa, type McpAgent } from '../support/mcp.ts';
import { ensureMcpTools, ToolUnavailableError } from '../clients/tools.ts';

const cluster = inject('cluster');
const CONNECTION = 'prod-cluster';
const run = promisify(execFile);
const CLI = new URL('../../cli/airlock.ts', import.meta.url).pathname;

describe.skipIf(!cluster)('MCP endpoint: tool calls meet all five controls (SDK client, real cluster)', () => {
  let env: TestStack;
  let agent: TestAgent;
  let mcp: McpAgent;
  const suffix = Date.now().toString(36);
  const configMap = `mcp-held-${suffix}`;
  const admin = (args: string[]) => kubectl(args, { kubeconfig: cluster!.adminKubeconfig });
  const configMapExists = async () => (await admin(['get', 'configmap', configMap, '-n', 'prod', '-o', 'name'])).code === 0;
  const call = async (name: string, args: Record<string, unknown>) => (await mcp.client.callTool({ name, arguments: args })) as CallToolResult;
  const text = (result: CallToolResult) => result.content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');
  const meta = (result: CallToolResult, key: string) => (result._meta as Record<string, unknown> | undefined)?.[`airlock.dev/${key}`];
  const record = async (requestId: string) => {
    const shown = await env.cli(['--json', 'audit', 'show', requestId]);
    expect(shown.code, shown.stderr).toBe(0);
    return (JSON.parse(shown.stdout) as { record: Record<string, unknown> }).record;
  };
  const mcpToken = async () => {
    const answer = await env.https('POST', '/v1/mcp/token', {
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${agent.id}:${agent.secret}`).toString('base64')}` },
      body: 'grant_type=client_credentials',
    });
    expect(answer.status, answer.body).toBe(200);
    return (JSON.parse(answer.body) as { access_token: string }).access_token;
  };
  const post = (token: string, body: unknown, headers: Record<string, string> = {}) =>
    env.https('POST', '/mcp', {
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  beforeAll(async () => {
    env = await startTestStack();
    await env.createConnection(CONNECTION, { cluster: cluster!, policy: EXAMPLE_POLICY });
    agent = await env.createAgent('mcp-agent');
    expect((await admin(['create', 'configmap', configMap, '-n', 'prod', '--from-literal=owner=mcp'])).code).toBe(0);
    // The agent declares elicitation support: Airlock must never treat an answer as an approval.
    mcp = await connectAgent(env.stack.url, readFileSync(env.stack.caFile, 'utf8'), agent, { elicitation: {} });
  });
  afterAll(async () => {
    await mcp?.close();
    await env?.stop();
    await admin(['delete', 'configmap', configMap, '-n', 'prod', '--ignore-not-found']);
  });

  it('lists only the window tools before a window, then the tools the policy can allow, with derived annotations', async () => {
    const before = (await mcp.client.listTools()).tools.map((tool) => tool.name).sort();
    expect(before).toEqual(['access_status', 'approval_status', 'end_access', 'request_access']);

    const window = await call('request_access', { connection: CONNECTION, duration: '30m', reason: 'investigate the config maps over MCP', ticket: 'INC-14' });
    expect(window.isError, text(window)).toBe(false);
    expect(text(window)).toMatch(/^window gr_\S+ on prod-cluster is active until /);

    const tools = (await mcp.client.listTools()).tools;
    const byName = new Map(tools.map((tool) => [tool.name, tool]));
    for (const name of ['get', 'list', 'events', 'logs', 'api_resources', 'apply', 'patch', 'delete', 'scale', 'rollout_restart', 'can_i']) expect(byName.has(name), name).toBe(true);
    expect(byName.get('get')!.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false });
    expect(byName.get('delete')!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(byName.get('delete')!.description).toContain('Needs a one-time human approval on: prod-cluster');
    expect(byName.get('get')!.description).not.toContain('approval');
    expect(byName.get('list')!.inputSchema.properties).toHaveProperty('labelSelector');
  });

  it('reads through the gateway, each request recorded naming the tool and the call', async () => {
    const got = await call('get', { connection: CONNECTION, resource: 'configmaps', namespace: 'prod', name: configMap });
    expect(got.isError, text(got)).toBe(false);
    expect(text(got)).toContain(`"name": "${configMap}"`);
    expect(text(got)).not.toContain('managedFields');
    const [requestId] = meta(got, 'requestIds') as string[];
    const recorded = await record(requestId!);
    expect(recorded).toMatchObject({ decision: 'allowed', verb: 'get', resource: 'configmaps', name: configMap, mcpTool: 'get', mcpCallId: meta(got, 'callId'), agent: 'mcp-agent' });

    const listed = await call('list', { connection: CONNECTION, resource: 'configmaps', namespace: 'prod', limit: 1 });
    expect(listed.isError, text(listed)).toBe(false);
    expect((listed.structuredContent as { count: number }).count).toBe(1);
  });

  it('is refused outside its scope, and nothing reaches the cluster', async () => {
    const secrets = await call('list', { connection: CONNECTION, resource: 'secrets', namespace: 'prod' });
    expect(secrets.isError).toBe(true);
    expect(text(secrets)).toContain('forbidden_by_policy');
    const otherNamespace = await call('get', { connection: CONNECTION, resource: 'configmaps', namespace: 'kube-system', name: 'extension-apiserver-authentication' });
    expect(otherNamespace.isError).toBe(true);
    expect(text(otherNamespace)).toContain('refused');
    expect((await record((meta(otherNamespace, 'requestIds') as string[])[0]!)).decision).toBe('denied');
  });

  it('holds a delete, ignores a client answer, passes once after approval on the emailed page', async () => {
    const held = await call('delete', { connection: CONNECTION, resource: 'configmaps', namespace: 'prod', name: configMap });
    expect(held.isError).toBe(true);
    const approvalId = meta(held, 'approvalId') as string;
    expect(approvalId).toMatch(/^apr_/);
    expect(text(held)).toContain(`HELD for a one-time human approval: ${approvalId}`);
    expect(text(held)).toContain('Approvers emailed: oncall@example.com');
    expect(text(held)).toContain('approval_status');
    expect(await configMapExists()).toBe(true);

    // A forged "approval" in the client's own words: an elicitation-style answer is refused and changes nothing.
    const token = await mcpToken();
    const forged = await post(token, { jsonrpc: '2.0', id: 'elicit-1', result: { action: 'accept', content: { approve: true, approvalId } } });
    expect(forged.status).toBe(400);
    expect(forged.body).toContain('never approves anything');
    const still = await call('approval_status', { id: approvalId });
    expect((still.structuredContent as { status: string }).status).toBe('pending');
    expect(await configMapExists()).toBe(true);

    const decided = await env.decide(await env.approvalLink(approvalId, 'oncall@example.com'), 'approve');
    expect(decided.status).toBe(200);
    const approved = await call('approval_status', { id: approvalId });
    expect((approved.structuredContent as { status: string }).status).toBe('approved');

    const passed = await call('delete', { connection: CONNECTION, resource: 'configmaps', namespace: 'prod', name: configMap });
    expect(passed.isError, text(passed)).toBe(false);
    expect(await configMapExists()).toBe(false);
    const recorded = await record((meta(passed, 'requestIds') as string[])[0]!);
    expect(recorded).toMatchObject({ decision: 'allowed', verb: 'delete', approvalId, mcpTool: 'delete', mcpCallId: meta(passed, 'callId') });

    // Once: the same call is held again under a new approval.
    const again = await call('delete', { connection: CONNECTION, resource: 'configmaps', namespace: 'prod', name: configMap });
    expect(again.isError).toBe(true);
    expect(meta(again, 'approvalId')).not.toBe(approvalId);
  });

  it('where the client supports tasks, a held delete becomes a task that runs once when approved on the emailed page (SDK task stream, 2025-11-25)', async () => {
    const name = `mcp-task-${suffix}`;
    expect((await admin(['create', 'configmap', name, '-n', 'prod', '--from-literal=owner=mcp'])).code).toBe(0);
    const exists = async () => (await admin(['get', 'configmap', name, '-n', 'prod', '-o', 'name'])).code === 0;
    const tools = (await mcp.client.listTools()).tools;
    expect(tools.find((tool) => tool.name === 'delete')?.execution).toEqual({ taskSupport: 'optional' });
    const stream = mcp.client.experimental.tasks.callToolStream({ name: 'delete', arguments: { connection: CONNECTION, resource: 'configmaps', namespace: 'prod', name } }, CallToolResultSchema, {
      task: { ttl: 600_000 },
    });
    const statuses: string[] = [];
    let result: CallToolResult | undefined;
    let approvalId = '';
    for await (const message of stream) {
      if (message.type === 'error') throw message.error;
      if (message.type === 'result') result = message.result as CallToolResult;
      if (message.type === 'taskStatus') statuses.push(message.task.status);
      if (message.type === 'taskCreated') {
        expect(message.task.status).toBe('working');
        approvalId = /apr_[\w-]{22}/.exec(message.task.statusMessage ?? '')?.[0] ?? '';
        expect(message.task.statusMessage).toContain('oncall@example.com');
        // Held: nothing has reached the cluster; an approver decides on the emailed page while the client polls.
        expect(await exists()).toBe(true);
        expect((await env.decide(await env.approvalLink(approvalId, 'oncall@example.com'), 'approve')).status).toBe(200);
      }
    }
    expect(approvalId).toMatch(/^apr_/);
    expect(statuses.at(-1)).toBe('completed');
    expect(result?.isError, result && text(result)).toBe(false);
    expect(text(result!)).toBe(`deleted configmaps prod/${name}`);
    expect(await exists()).toBe(false);
    const recorded = await record((meta(result!, 'requestIds') as string[])[0]!);
    expect(recorded).toMatchObject({ decision: 'allowed', verb: 'delete', approvalId, mcpTool: 'delete', mcpCallId: meta(result!, 'callId') });
    expect((await call('approval_status', { id: approvalId })).structuredContent).toMatchObject({ status: 'consumed' });
  });

  it('2026-07-28 Tasks extension: a held call returns a task; a client answer never moves it; tasks/get carries the result once approved', async () => {
    const name = `mcp-task-2026-${suffix}`;
    expect((await admin(['create', 'configmap', name, '-n', 'prod', '--from-literal=owner=mcp'])).code).toBe(0);
    const token = await mcpToken();
    const meta2026 = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': { extensions: { 'io.modelcontextprotocol/tasks': {} } } };
    let id = 100;
    const send = async (method: string, params: Record<string, unknown>, mcpName: string) => {
      const answer = await post(
        token,
        { jsonrpc: '2.0', id: id++, method, params: { ...params, _meta: meta2026 } },
        { 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, 'mcp-name': mcpName },
      );
      return JSON.parse(answer.body) as { result?: Record<string, unknown>; error?: { code: number; message: string } };
    };
    const created = await send('tools/call', { name: 'delete', arguments: { connection: CONNECTION, resource: 'configmaps', namespace: 'prod', name } }, 'delete');
    expect(created.result).toMatchObject({ resultType: 'task', status: 'working', pollIntervalMs: 2000 });
    const taskId = created.result!.taskId as string;
    const approvalId = /apr_[\w-]{22}/.exec(created.result!.statusMessage as string)![0];
    const answered = await send('tasks/update', { taskId, inputResponses: { approval: { action: 'accept', content: { approve: true } } } }, taskId);
    expect(answered.error?.message).toContain('never approves anything');
    expect((await send('tasks/get', { taskId }, taskId)).result).toMatchObject({ status: 'working' });
    expect((await admin(['get', 'configmap', name, '-n', 'prod', '-o', 'name'])).code).toBe(0);

    expect((await env.decide(await env.approvalLink(approvalId, 'oncall@example.com'), 'approve')).status).toBe(200);
    const done = await send('tasks/get', { taskId }, taskId);
    expect(done.result).toMatchObject({ resultType: 'complete', status: 'completed', result: { isError: false, content: [{ type: 'text', text: `deleted configmaps prod/${name}` }] } });
    expect((await admin(['get', 'configmap', name, '-n', 'prod', '-o', 'name'])).code).not.toBe(0);
    // Polled again: the stored result, nothing sent again.
    expect((await send('tasks/get', { taskId }, taskId)).result).toMatchObject({ status: 'completed' });
    const requestIds = ((done.result!.result as Record<string, unknown>)._meta as Record<string, unknown>)['airlock.dev/requestIds'] as string[];
    expect(requestIds).toHaveLength(1);
    expect(await record(requestIds[0]!)).toMatchObject({ decision: 'allowed', approvalId, mcpTool: 'delete' });
  });

  it('refuses bad input with clear MCP errors, recorded, nothing forwarded', async () => {
    const badArgs = await call('list', { connection: CONNECTION, resource: 'configmaps', namespace: 'prod', limit: 0 });
    expect(badArgs.isError).toBe(true);
    expect(text(badArgs)).toMatch(/^invalid arguments: limit: /);
    const noWindow = await call('get', { connection: 'no-such-connection', resource: 'pods', namespace: 'prod', name: 'x' });
    expect(noWindow.isError).toBe(true);
    expect(text(noWindow)).toContain('no connection named "no-such-connection"');
    await expect(mcp.client.callTool({ name: 'exec_anything', arguments: {} })).rejects.toThrow(/unknown tool "exec_anything"/);

    const token = await mcpToken();
    const batch = await post(token, [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }]);
    expect(batch.status).toBe(400);
    expect(JSON.parse(batch.body)).toMatchObject({ error: { code: -32600, message: expect.stringContaining('batches are not accepted') } });
    const notJson = await post(token, '{"jsonrpc":');
    expect(JSON.parse(notJson.body)).toMatchObject({ error: { code: -32700 } });
    const forged = await post(`${token.slice(0, -4)}AAAA`, { jsonrpc: '2.0', id: 1, method: 'tools/list' });
    expect(forged.status).toBe(401);
    expect(forged.headers['www-authenticate']).toContain('resource_metadata="');
    // A connection token is not an MCP token (and an MCP token is not a connection token).
    const k8sWithMcpToken = await env.https('GET', `/k8s/${CONNECTION}/api/v1/namespaces/prod/configmaps`, { headers: { authorization: `Bearer ${token}` } });
    expect(k8sWithMcpToken.status).toBe(401);

    // The token endpoint speaks OAuth errors; the metadata says where it is.
    const form = (body: string, key = agent.secret) =>
      env.https('POST', '/v1/mcp/token', { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${agent.id}:${key}`).toString('base64')}` }, body });
    expect(JSON.parse((await form('grant_type=client_credentials', 'wrong-key')).body)).toMatchObject({ error: 'invalid_client' });
    expect(JSON.parse((await form('grant_type=password')).body)).toMatchObject({ error: 'unsupported_grant_type' });
    expect(JSON.parse((await form(`grant_type=client_credentials&resource=${encodeURIComponent('https://elsewhere.example/mcp')}`)).body)).toMatchObject({ error: 'invalid_target' });
    const metadata = JSON.parse((await env.https('GET', '/.well-known/oauth-protected-resource/mcp')).body) as { resource: string; authorization_servers: string[] };
    expect(metadata).toEqual(expect.objectContaining({ resource: `${env.stack.url}/mcp`, authorization_servers: [env.stack.url] }));
    const authorizationServer = JSON.parse((await env.https('GET', '/.well-known/oauth-authorization-server')).body) as { authorization_endpoint: string };
    expect(authorizationServer).toMatchObject({ token_endpoint: `${env.stack.url}/v1/mcp/token`, grant_types_supported: ['client_credentials'] });
    // The authorization endpoint the metadata must name answers an error and never redirects (no open redirect).
    const authorize = await env.https(
      'GET',
      `${new URL(authorizationServer.authorization_endpoint).pathname}?response_type=code&client_id=x&redirect_uri=${encodeURIComponent('https://evil.example/cb')}`,
    );
    expect(authorize.status).toBe(400);
    expect(authorize.headers.location).toBeUndefined();
    expect(JSON.parse(authorize.body)).toMatchObject({ error: 'unsupported_response_type' });

    const audit = await env.cli(['--json', 'audit', 'list', '--agent', 'mcp-agent', '--limit', '100']);
    const items = (JSON.parse(audit.stdout) as { items: { decision: string; verb: string }[] }).items;
    expect(items.filter((item) => item.verb === 'mcp' && item.decision === 'denied').length).toBeGreaterThanOrEqual(4);
  });

  it('speaks the stateless 2026-07-28 revision: server/discover, per-request _meta, header checks', async () => {
    const token = await mcpToken();
    const meta2026 = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
    const headers = { 'mcp-protocol-version': '2026-07-28' };
    const discover = await post(token, { jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: meta2026 } }, { ...headers, 'mcp-method': 'server/discover' });
    expect(discover.status, discover.body).toBe(200);
    expect(discover.headers['mcp-session-id']).toBeUndefined();
    expect(JSON.parse(discover.body).result).toMatchObject({ resultType: 'complete', supportedVersions: expect.arrayContaining(['2026-07-28', '2025-11-25']), capabilities: { tools: {} } });

    const called = await post(
      token,
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { _meta: meta2026, name: 'list', arguments: { connection: CONNECTION, resource: 'configmaps', namespace: 'prod', limit: 1 } } },
      { ...headers, 'mcp-method': 'tools/call', 'mcp-name': 'list' },
    );
    expect(JSON.parse(called.body).result).toMatchObject({ resultType: 'complete', isError: false });

    const mismatch = await post(
      token,
      { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { _meta: meta2026, name: 'delete', arguments: {} } },
      { ...headers, 'mcp-method': 'tools/call', 'mcp-name': 'get' },
    );
    expect(mismatch.status).toBe(400);
    expect(JSON.parse(mismatch.body)).toMatchObject({ error: { code: -32020 } });
    const unsupported = await post(
      token,
      { jsonrpc: '2.0', id: 4, method: 'tools/list', params: { _meta: { ...meta2026, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } } },
      { 'mcp-protocol-version': '2099-01-01', 'mcp-method': 'tools/list' },
    );
    expect(JSON.parse(unsupported.body)).toMatchObject({ error: { code: -32022, data: { requested: '2099-01-01' } } });
  });

  it('serves the stdio bridge: `airlock mcp` forwards an SDK client over stdio to /mcp as the logged-in agent', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, '--endpoint', env.stack.url, '--profile-dir', agent.profileDir, 'mcp'],
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stderr: 'pipe',
    });
    const client = new Client({ name: 'airlock-e2e-stdio', version: '1.0.0' });
    await client.connect(transport);
    try {
      const tools = (await client.listTools()).tools.map((tool) => tool.name);
      expect(tools).toContain('get');
      const listed = (await client.callTool({ name: 'list', arguments: { connection: CONNECTION, resource: 'configmaps', namespace: 'prod', limit: 1 } })) as CallToolResult;
      expect(listed.isError, text(listed)).toBe(false);
      expect((await record((meta(listed, 'requestIds') as string[])[0]!)).mcpTool).toBe('list');
    } finally {
      await client.close();
    }
  });

  describe('third-party MCP clients: the MCP Inspector CLI and the conformance tool', () => {
    let tools: { inspector: string; conformance: string } | undefined;
    let relay: Server | undefined;
    let relayUrl = '';
    beforeAll(async () => {
      try {
        tools = ensureMcpTools();
      } catch (error) {
        if (!(error instanceof ToolUnavailableError) || process.env.AIRLOCK_E2E === 'require') throw error;
        console.log(`MCP Inspector/conformance checks skipped: ${error.message}`);
        return;
      }
      // The conformance tool takes no headers: a plain-HTTP relay on loopback adds the agent's bearer token
      // and forwards to Airlock over TLS with its CA pinned. Airlock itself sees an ordinary authenticated client.
      const token = await mcpToken();
      const ca = readFileSync(env.stack.caFile, 'utf8');
      const target = new URL(`${env.stack.url}/mcp`);
      relay = createServer((req, res) => {
        const upstream = httpsRequest(target, { method: req.method, ca, headers: { ...req.headers, host: target.host, authorization: `Bearer ${token}` } }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      });
      await new Promise<void>((listening) => relay!.listen(0, '127.0.0.1', listening));
      const address = relay.address();
      relayUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/mcp`;
    });
    afterAll(() => new Promise<void>((closed) => (relay ? relay.close(() => closed()) : closed())));

    it('the Inspector CLI lists the tools and calls one over Streamable HTTP with the bearer token', async ({ skip }) => {
      if (!tools) return skip();
      const token = await mcpToken();
      const options = { env: { ...process.env, NODE_EXTRA_CA_CERTS: env.stack.caFile }, timeout: 120_000 };
      const base = [tools.inspector, '--cli', `${env.stack.url}/mcp`, '--transport', 'http', '--header', `Authorization: Bearer ${token}`];
      const listed = await run(process.execPath, [...base, '--method', 'tools/list'], options);
      mkdirSync('test-results', { recursive: true });
      writeFileSync('test-results/mcp-inspector.txt', `${listed.stdout}\n${listed.stderr}`);
      const names = (JSON.parse(listed.stdout) as { tools: { name: string }[] }).tools.map((tool) => tool.name);
      expect(names).toEqual(expect.arrayContaining(['request_access', 'get', 'list', 'delete']));
      const called = await run(
        process.execPath,
        [...base, '--method', 'tools/call', '--tool-name', 'can_i', '--tool-arg', `connection=${CONNECTION}`, 'verb=delete', 'resource=configmaps', 'namespace=prod'],
        options,
      );
      expect(called.stdout).toContain('needs a one-time human approval');
    });

    it('the SDK v2 client (@modelcontextprotocol/client, as the Inspector brings it) pinned to 2026-07-28: server/discover, then stateless calls', async ({ skip }) => {
      if (!tools) return skip();
      // Imported from the tools cache (outside the repository), like @kubernetes/client-node.
      const entry = join(tools.inspector.slice(0, tools.inspector.indexOf('/@modelcontextprotocol/')), '@modelcontextprotocol', 'client', 'dist', 'index.mjs');
      type V2Client = {
        connect(transport: unknown): Promise<void>;
        getNegotiatedProtocolVersion(): string | undefined;
        listTools(): Promise<{ tools: { name: string }[] }>;
        callTool(request: unknown): Promise<CallToolResult>;
        close(): Promise<void>;
      };
      const sdk = (await import(pathToFileURL(entry).href)) as {
        Client: new (info: unknown, options: unknown) => V2Client;
        StreamableHTTPClientTransport: new (url: URL, options: unknown) => unknown;
      };
      const token = await mcpToken();
      const transport = new sdk.StreamableHTTPClientTransport(new URL(`${env.stack.url}/mcp`), {
        fetch: fetchWithCa(readFileSync(env.stack.caFile, 'utf8')),
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      });
      const client = new sdk.Client({ name: 'airlock-e2e-v2', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
      await client.connect(transport);
      try {
        expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
        expect((await client.listTools()).tools.map((tool) => tool.name)).toContain('delete');
        const listed = await client.callTool({ name: 'list', arguments: { connection: CONNECTION, resource: 'configmaps', namespace: 'prod', limit: 1 } });
        expect(listed.isError, text(listed)).toBe(false);
        expect((await record((meta(listed, 'requestIds') as string[])[0]!)).mcpTool).toBe('list');
      } finally {
        await client.close();
      }
    });

    it('the Tasks extension client (@modelcontextprotocol/ext-tasks, as the Inspector brings it) on the SDK v2 client at 2026-07-28: a held delete settles once approved', async ({ skip }) => {
      if (!tools) return skip();
      const name = `mcp-ext-tasks-${suffix}`;
      expect((await admin(['create', 'configmap', name, '-n', 'prod', '--from-literal=owner=mcp'])).code).toBe(0);
      const modules = tools.inspector.slice(0, tools.inspector.indexOf('/@modelcontextprotocol/'));
      const sdk = (await import(pathToFileURL(join(modules, '@modelcontextprotocol', 'client', 'dist', 'index.mjs')).href)) as {
        Client: new (info: unknown, options: unknown) => { connect(transport: unknown): Promise<void>; close(): Promise<void> };
        StreamableHTTPClientTransport: new (url: URL, options: unknown) => unknown;
      };
      type Execution = {
        settle(options: { onEvent(event: { type: string; task?: { status: string; statusMessage?: string } }): Promise<void> }): Promise<{ outcome: { status: string; result?: CallToolResult } }>;
      };
      const extTasks = (await import(pathToFileURL(join(modules, '@modelcontextprotocol', 'ext-tasks', 'dist', 'client', 'index.js')).href)) as {
        createTaskSessionFromClient(client: unknown, options: unknown): { callTool(name: string, args: unknown): Promise<Execution>; close(): Promise<void> };
      };
      const token = await mcpToken();
      const fetch = fetchWithCa(readFileSync(env.stack.caFile, 'utf8'));
      const client = new sdk.Client({ name: 'airlock-e2e-ext-tasks', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
      await client.connect(new sdk.StreamableHTTPClientTransport(new URL(`${env.stack.url}/mcp`), { fetch, requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      // The library's raw request path (its README: required for a 2026-07-28 Tasks server): it frames each
      // request's params; this is only the transport — JSON-RPC envelope, the routing headers derived from the
      // body, and the answer in the library's port shape ({kind: result|error}).
      let rawId = 1000;
      const rawDispatch = async (request: { method: string; params?: { name?: string; taskId?: string } }) => {
        const routed = request.params?.taskId ?? request.params?.name;
        const answer = await fetch(`${env.stack.url}/mcp`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            authorization: `Bearer ${token}`,
            'mcp-protocol-version': '2026-07-28',
            'mcp-method': request.method,
            ...(routed ? { 'mcp-name': routed } : {}),
          },
          body: JSON.stringify({ ...request, jsonrpc: '2.0', id: rawId++ }),
        });
        const message = (await answer.json()) as { result?: unknown; error?: unknown };
        return message.error ? { kind: 'error', error: message.error } : { kind: 'result', result: message.result };
      };
      const session = extTasks.createTaskSessionFromClient(client, {
        endpointId: 'airlock-e2e',
        rawDispatch,
        v2RequestFraming: {
          protocolVersion: '2026-07-28',
          clientInfo: { name: 'airlock-e2e-ext-tasks', version: '1.0.0' },
          clientCapabilities: { extensions: { 'io.modelcontextprotocol/tasks': {} } },
        },
      });
      try {
        const execution = await session.callTool('delete', { connection: CONNECTION, resource: 'configmaps', namespace: 'prod', name });
        let approvalId = '';
        const { outcome } = await execution.settle({
          onEvent: async (event) => {
            if (event.type !== 'task' || event.task?.status !== 'working' || approvalId) return;
            approvalId = /apr_[\w-]{22}/.exec(event.task.statusMessage ?? '')?.[0] ?? '';
            expect((await admin(['get', 'configmap', name, '-n', 'prod', '-o', 'name'])).code).toBe(0);
            expect((await env.decide(await env.approvalLink(approvalId, 'oncall@example.com'), 'approve')).status).toBe(200);
          },
        });
        expect(approvalId).toMatch(/^apr_/);
        expect(outcome.status, `${JSON.stringify(outcome)}: ${String((outcome as { error?: { message?: string } }).error?.message)}`).toBe('completed');
        expect(outcome.result?.isError, JSON.stringify(outcome)).toBe(false);
        expect((await admin(['get', 'configmap', name, '-n', 'prod', '-o', 'name'])).code).not.toBe(0);
      } finally {
        await session.close();
        await client.close();
      }
    });

    it('the conformance tool passes the server scenarios that apply to a tools server', async ({ skip }) => {
      if (!tools) return skip();
      const outcomes: Record<string, string> = {};
      for (const scenario of ['server-initialize', 'ping', 'tools-list']) {
        const result = await run(process.execPath, [tools.conformance, 'server', '--url', relayUrl, '--scenario', scenario], { timeout: 120_000 }).catch(
          (error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
        );
        outcomes[scenario] = `${result.stdout}${result.stderr}`;
      }
      // The whole active suite too, for the record (most of it needs the reference server's own test tools,
      // prompts and resources): test-results/mcp-conformance.txt.
      const all = await run(process.execPath, [tools.conformance, 'server', '--url', relayUrl], { timeout: 300_000 }).catch((error: { stdout?: string; stderr?: string }) => ({
        stdout: error.stdout ?? '',
        stderr: error.stderr ?? '',
      }));
      mkdirSync('test-results', { recursive: true });
      writeFileSync(
        'test-results/mcp-conformance.txt',
        `${Object.entries(outcomes)
          .map(([scenario, output]) => `== ${scenario}\n${output}`)
          .join('\n')}\n== active suite\n${all.stdout}${all.stderr}`,
      );
      for (const [scenario, output] of Object.entries(outcomes)) expect(output, `${scenario}:\n${output}`).toMatch(/passed|PASS|✓/i);
      for (const [scenario, output] of Object.entries(outcomes)) expect(output, `${scenario}:\n${output}`).not.toMatch(/\b[1-9]\d* failed|FAILURE|✗/i);
    });
  });
});
