// The MCP endpoint on the in-memory ports, with a gateway that fails the test if
// anything reaches it: refusals before the gateway are recorded and forward nothing;
// MCP and /k8s tokens do not stand in for each other; tools/list reach per policy.
import { describe, expect, it } from 'vitest';
import { generateSigningKey, TokenService } from '../../lambdas/core/tokens.ts';
import { McpEndpoint, toolReach } from '../../lambdas/mcp/endpoint.ts';
import type { Policy } from '../../lambdas/core/policy.ts';
import { MemoryLog, MemoryRecordStore, MemoryStateStore } from '../support/memory.ts';

const ISSUER = 'https://airlock.test';

async function setUp() {
  const state = new MemoryStateStore();
  const records = new MemoryRecordStore();
  const tokens = new TokenService({ current: await generateSigningKey() }, { issuer: ISSUER });
  let forwarded = 0;
  const gateway = {
    handle: () => {
      forwarded++;
      throw new Error('nothing may reach the gateway in these cases');
    },
    exec: () => {
      forwarded++;
      throw new Error('nothing may reach the gateway in these cases');
    },
  };
  const endpoint = new McpEndpoint({ state, records, log: new MemoryLog(), now: Date.now, tokens, gateway });
  await state.createAgent({ id: 'agt_AAAAAAAAAAAAAAAAAAAAAA', name: 'bot', status: 'enabled', createdAt: Date.now() });
  const { token } = await tokens.issueMcp({ agentId: 'agt_AAAAAAAAAAAAAAAAAAAAAA', agentName: 'bot' });
  const post = (body: unknown, headers: Record<string, string> = {}, bearer = token) =>
    endpoint.handle({
      method: 'POST',
      headers: Object.fromEntries(Object.entries({ 'content-type': 'application/json', authorization: `Bearer ${bearer}`, ...headers }).map(([name, value]) => [name, [value]])),
      body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    });
  return { state, records, tokens, token, post, forwarded: () => forwarded };
}

describe('MCP endpoint', () => {
  it('MCP tokens and connection tokens do not stand in for each other', async () => {
    const { tokens, token } = await setUp();
    await expect(tokens.verify(token, undefined)).rejects.toMatchObject({ status: 401, code: 'malformed_token' });
    const k8s = await tokens.issue({ agentId: 'agt_a', agentName: 'bot', connection: 'prod', grantId: 'gr_1', windowExpiresAt: Date.now() + 600_000 });
    await expect(tokens.verifyMcp(k8s.token)).rejects.toMatchObject({ status: 401 });
    expect(await tokens.verifyMcp(token)).toMatchObject({ agentId: 'agt_AAAAAAAAAAAAAAAAAAAAAA', agentName: 'bot' });
  });

  it('refuses bad input with the MCP error, records each refusal, and forwards nothing', async () => {
    const { post, records, forwarded } = await setUp();
    const cases: [unknown, Record<string, string>, number, number | undefined][] = [
      ['{', {}, 400, -32700],
      [[{ jsonrpc: '2.0', id: 1, method: 'ping' }], {}, 400, -32600],
      [{ jsonrpc: '2.0', id: 'e', result: { action: 'accept' } }, {}, 400, -32600],
      [{ jsonrpc: '1.0', id: 1, method: 'ping' }, {}, 400, -32600],
      [{ jsonrpc: '2.0', id: 1, method: 'resources/list' }, {}, 200, -32601],
      [{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'nope' } }, {}, 200, -32602],
      [{ jsonrpc: '2.0', id: 1, method: 'ping' }, { 'content-type': 'text/plain' }, 415, -32600],
      [{ jsonrpc: '2.0', id: 1, method: 'ping' }, { 'mcp-protocol-version': '1999-01-01' }, 400, -32022],
      [
        { jsonrpc: '2.0', id: 1, method: 'ping', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } },
        { 'mcp-protocol-version': '2026-07-28' },
        400,
        -32020,
      ],
    ];
    for (const [body, headers, status, code] of cases) {
      const answer = await post(body, headers);
      expect(answer.statusCode, JSON.stringify(body)).toBe(status);
      expect((JSON.parse(answer.body) as { error?: { code: number } }).error?.code, JSON.stringify(body)).toBe(code);
    }
    expect(records.records.size).toBe(cases.length);
    expect([...records.records.values()].every((record) => record.path === '/mcp' && record.decision === 'denied' && record.agent === 'bot')).toBe(true);
    const unknownTool = [...records.records.values()].find((record) => record.reason.startsWith('unknown_tool'));
    expect(unknownTool?.mcpTool).toBe('nope');

    const badArgs = await post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get', arguments: { connection: 'prod', resource: 'Pods', name: 'x' } } });
    const result = (JSON.parse(badArgs.body) as { result: { isError: boolean; content: { text: string }[] } }).result;
    expect(result.isError).toBe(true);
    expect(result.content[0]!.text).toMatch(/^invalid arguments: resource: /);
    const noWindow = await post({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'get', arguments: { connection: 'prod', resource: 'pods', namespace: 'prod', name: 'x' } } });
    expect((JSON.parse(noWindow.body) as { result: { content: { text: string }[] } }).result.content[0]!.text).toContain('no connection named "prod"');
    expect(records.records.size).toBe(cases.length + 2);
    expect(forwarded()).toBe(0);
  });

  it('answers 401 with the resource metadata for a forged, missing or expired token; 405 for GET', async () => {
    const { post, token } = await setUp();
    for (const bearer of ['', `${token.slice(0, -4)}AAAA`]) {
      const answer = await post({ jsonrpc: '2.0', id: 1, method: 'ping' }, {}, bearer);
      expect(answer.statusCode).toBe(401);
      expect(answer.headers['www-authenticate']).toBe(
        `Bearer resource_metadata="${ISSUER}/.well-known/oauth-protected-resource/mcp"${bearer ? ', error="invalid_token", error_description="invalid_token"' : ''}`,
      );
    }
  });

  it('says how far each tool reaches under a policy', () => {
    const policy = (rules: Policy['rules']): Policy => ({ maxWindowSeconds: 3600, windowApproval: 'none', rules, approvers: ['a@example.com'], minApprovals: 1, approvalTimeoutSeconds: 900 });
    const example = policy([
      { effect: 'deny', resources: ['secrets'] },
      { effect: 'allow', verbs: ['get', 'list', 'watch'], namespaces: ['prod'] },
      { effect: 'approve', verbs: ['delete', 'patch', 'create'], namespaces: ['prod'] },
    ]);
    expect(toolReach(example, ['get'])).toBe('allowed');
    expect(toolReach(example, ['delete'])).toBe('needs-approval');
    expect(toolReach(example, ['patch', 'create'])).toBe('needs-approval');
    expect(toolReach(policy([{ effect: 'allow', verbs: ['get'] }]), ['delete'])).toBe('never');
    expect(toolReach(policy([{ effect: 'allow' }, { effect: 'deny', verbs: ['delete'] }]), ['delete'])).toBe('never');
    expect(toolReach(policy([{ effect: 'allow' }, { effect: 'approve', verbs: ['delete'], namespaces: ['prod'] }]), ['delete'])).toBe('may-need-approval');
  });
});
