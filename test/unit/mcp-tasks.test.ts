// MCP tasks on the in-memory ports: a held tool call becomes a task for a client
// that supports tasks (2025-11-25 and the 2026-07-28 extension); it runs once when
// its approval is approved, never on anything a client answers; arguments and
// results are sealed in the store. The gateway here is an in-memory stand-in that
// holds every request until its approval (in the memory state) is approved, then
// passes it once and consumes the approval — the real gateway is in test/e2e/mcp.test.ts.
import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { generateSigningKey, TokenService } from '../../lambdas/core/tokens.ts';
import { McpEndpoint } from '../../lambdas/mcp/endpoint.ts';
import { newApproval } from '../../lambdas/core/lifecycle.ts';
import type { Policy } from '../../lambdas/core/policy.ts';
import { MemoryLog, MemoryRecordStore, MemoryStateStore } from '../support/memory.ts';

const ISSUER = 'https://airlock.test';
const AGENT = 'agt_AAAAAAAAAAAAAAAAAAAAAA';
const OTHER = 'agt_BBBBBBBBBBBBBBBBBBBBBB';
const MODERN = '2026-07-28';
const TASKS = 'io.modelcontextprotocol/tasks';

const policy: Policy = {
  maxWindowSeconds: 3600,
  windowApproval: 'none',
  rules: [
    { effect: 'allow', verbs: ['get', 'list', 'watch'] },
    { effect: 'approve', verbs: ['delete', 'patch', 'create'] },
  ],
  approvers: ['oncall@example.com'],
  minApprovals: 1,
  approvalTimeoutSeconds: 900,
};

interface JsonRpcAnswer {
  statusCode: number;
  body: { result?: Record<string, unknown> & { content?: { text: string }[]; isError?: boolean }; error?: { code: number; message: string; data?: unknown } };
}

async function setUp(options: { taskResultWaitMs?: number } = {}) {
  const state = new MemoryStateStore();
  const records = new MemoryRecordStore();
  const tokens = new TokenService({ current: await generateSigningKey() }, { issuer: ISSUER });
  const now = Date.now;
  const forwarded: { method: string; path: string; body: string }[] = [];
  // Held until approved, like the real approval gate: one approval per exact request, spent once.
  const bound = new Map<string, string>();
  const gateway = {
    handle: async (request: { method: string; path: string; body: Buffer; connection: string; headers: Record<string, string[]> }) => {
      const claims = await tokens.verify(request.headers.authorization![0]!.slice(7), request.connection);
      if (request.method === 'GET') {
        const object = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'prod' }, data: { mode: 'on' } };
        return { response: { statusCode: 200, headers: { 'x-airlock-request-id': 'req_read' }, body: Readable.from([Buffer.from(JSON.stringify(object))]) }, done: Promise.resolve() };
      }
      const fingerprint = `${request.method} ${request.path} ${request.body.toString('utf8')}`;
      const known = bound.get(fingerprint);
      const approval = known ? await state.getApproval(known) : undefined;
      if (approval?.status === 'approved') {
        await state.updateApproval(approval.id, { status: ['approved'] }, { status: 'consumed', consumedBy: 'req_passed' });
        forwarded.push({ method: request.method, path: request.path, body: request.body.toString('utf8') });
        return {
          response: { statusCode: 200, headers: { 'x-airlock-request-id': 'req_passed' }, body: Readable.from([Buffer.from('{"kind":"Status","status":"Success"}')]) },
          done: Promise.resolve(),
        };
      }
      let id = approval?.status === 'pending' ? approval.id : undefined;
      if (!id) {
        const agent = (await state.getAgent(claims.agentId))!;
        const held = newApproval({
          kind: 'request',
          agent,
          connection: (await state.getConnection(request.connection))!,
          grant: (await state.getGrant(claims.grantId))!,
          summary: fingerprint,
          rule: 'approve',
          now: now(),
        });
        await state.createApproval(held);
        bound.set(fingerprint, held.id);
        id = held.id;
      }
      const status = { kind: 'Status', status: 'Failure', code: 403, message: `airlock: held for approval ${id}`, details: { name: id, causes: [{ reason: 'approval_required' }] } };
      return { response: { statusCode: 403, headers: { 'x-airlock-request-id': 'req_held' }, body: Readable.from([Buffer.from(JSON.stringify(status))]) }, done: Promise.resolve() };
    },
    exec: () => {
      throw new Error('no exec here');
    },
  };
  const endpoint = new McpEndpoint({ state, records, log: new MemoryLog(), now, tokens, gateway: gateway as never, ...options });
  for (const [id, name] of [
    [AGENT, 'bot'],
    [OTHER, 'other'],
  ] as const) {
    await state.createAgent({ id, name, status: 'enabled', createdAt: now() });
    await state.createGrant({
      id: `gr_${id.slice(4)}`,
      agentId: id,
      agentName: name,
      connection: 'prod',
      status: 'active',
      reason: 'test',
      durationSeconds: 3600,
      requestedAt: now(),
      activatedAt: now(),
      expiresAt: now() + 3_600_000,
      policyVersion: 'v1',
    });
  }
  await state.putConnection(
    { name: 'prod', server: 'https://kube.test', caPem: '', credential: { type: 'token', token: 'cluster-credential' }, policy, policyVersion: 'v1', createdAt: now(), updatedAt: now() },
    'create',
  );
  const bearer = { bot: (await tokens.issueMcp({ agentId: AGENT, agentName: 'bot' })).token, other: (await tokens.issueMcp({ agentId: OTHER, agentName: 'other' })).token };
  let nextId = 1;
  const send = async (body: Record<string, unknown>, headers: Record<string, string>, as: keyof typeof bearer = 'bot'): Promise<JsonRpcAnswer> => {
    const answer = await endpoint.handle({
      method: 'POST',
      headers: Object.fromEntries(Object.entries({ 'content-type': 'application/json', authorization: `Bearer ${bearer[as]}`, ...headers }).map(([name, value]) => [name, [value]])),
      body: Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: nextId++, ...body })),
    });
    return { statusCode: answer.statusCode, body: JSON.parse(answer.body) as JsonRpcAnswer['body'] };
  };
  /** A 2026-07-28 request: version and capabilities in _meta, method and name in headers. */
  const modern = (method: string, params: Record<string, unknown>, options: { tasks?: boolean; name?: string; as?: keyof typeof bearer } = {}) =>
    send(
      {
        method,
        params: {
          ...params,
          _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': options.tasks === false ? {} : { extensions: { [TASKS]: {} } } },
        },
      },
      {
        'mcp-protocol-version': MODERN,
        'mcp-method': method,
        ...(options.name !== undefined
          ? { 'mcp-name': options.name }
          : typeof params.name === 'string'
            ? { 'mcp-name': params.name }
            : typeof params.taskId === 'string'
              ? { 'mcp-name': params.taskId }
              : {}),
      },
      options.as,
    );
  /** An initialize-era request at 2025-11-25. */
  const legacy = (method: string, params: Record<string, unknown>, as: keyof typeof bearer = 'bot') => send({ method, params }, { 'mcp-protocol-version': '2025-11-25' }, as);
  const approve = async (id: string) => {
    await state.updateApproval(id, { status: ['pending'] }, { status: 'approved', decidedAt: now() });
  };
  return { state, records, forwarded, modern, legacy, approve };
}

const deleteCall = { name: 'delete', arguments: { connection: 'prod', resource: 'configmaps', namespace: 'prod', name: 'settings' } };

describe('MCP tasks', () => {
  it('2026-07-28: a held call becomes a task that runs once when approved — never on a client answer', async () => {
    const { modern, approve, forwarded, state, records } = await setUp();
    const created = await modern('tools/call', deleteCall);
    const task = created.body.result!;
    expect(task).toMatchObject({ resultType: 'task', status: 'working', pollIntervalMs: 2000 });
    expect(task.taskId).toMatch(/^tsk_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    expect(task.statusMessage).toMatch(/^waiting for approval apr_\w+.*oncall@example\.com/);
    expect(forwarded).toHaveLength(0);
    const taskId = task.taskId as string;

    const waiting = await modern('tasks/get', { taskId });
    expect(waiting.body.result).toMatchObject({ resultType: 'complete', status: 'working', taskId });
    expect(waiting.body.result).not.toHaveProperty('result');

    // A client answering as if asked (an elicitation "accept") is refused, recorded, and approves nothing.
    const before = records.records.size;
    const answered = await modern('tasks/update', { taskId, inputResponses: { approve: { action: 'accept', content: { approved: true } } } });
    expect(answered.body.error).toMatchObject({ code: -32602 });
    expect(answered.body.error!.message).toContain('never approves anything');
    expect(records.records.size).toBe(before + 1);
    expect([...records.records.values()].at(-1)!.reason).toMatch(/^unexpected_input/);
    expect((await modern('tasks/get', { taskId })).body.result!.status).toBe('working');
    expect(forwarded).toHaveLength(0);

    const approvalId = /apr_[\w-]{22}/.exec(task.statusMessage as string)![0];
    await approve(approvalId);
    // Polls at once: the call runs exactly once.
    const polls = await Promise.all(Array.from({ length: 4 }, () => modern('tasks/get', { taskId })));
    expect(forwarded).toEqual([{ method: 'DELETE', path: '/api/v1/namespaces/prod/configmaps/settings', body: '' }]);
    const done = polls.find((poll) => poll.body.result!.status === 'completed') ?? (await modern('tasks/get', { taskId }));
    expect(done.body.result).toMatchObject({ status: 'completed', result: { resultType: 'complete', isError: false, content: [{ text: 'deleted configmaps prod/settings' }] } });
    expect((await modern('tasks/get', { taskId })).body.result).toMatchObject({ status: 'completed', result: { isError: false } });
    expect(forwarded).toHaveLength(1);
    expect((await state.getApproval(approvalId))!.status).toBe('consumed');
  });

  it("2026-07-28: without the extension a held call stays a tool error; task methods need the capability, the right Mcp-Name and the agent's own task id", async () => {
    const { modern } = await setUp();
    const plain = await modern('tools/call', deleteCall, { tasks: false });
    expect(plain.body.result).toMatchObject({ isError: true });
    expect(plain.body.result!.content![0]!.text).toMatch(/^HELD for a one-time human approval/);

    const taskId = (await modern('tools/call', deleteCall)).body.result!.taskId as string;
    expect((await modern('tasks/get', { taskId }, { tasks: false })).body.error).toMatchObject({
      code: -32021,
      data: { requiredCapabilities: { extensions: { [TASKS]: {} } } },
    });
    expect((await modern('tasks/get', { taskId }, { name: 'tsk_other' })).body.error).toMatchObject({ code: -32020 });
    expect((await modern('tasks/result', { taskId })).body.error).toMatchObject({ code: -32601 });
    const [id, key] = taskId.split('.') as [string, string];
    const wrongKey = `${id}.${key.slice(0, -2)}${key.endsWith('AA') ? 'BB' : 'AA'}`;
    for (const forged of [wrongKey, id, 'tsk_nothing', `${id}.${key}.x`, 'x'.repeat(200)]) {
      expect((await modern('tasks/get', { taskId: forged })).body.error, forged).toMatchObject({ code: -32602 });
    }
    expect((await modern('tasks/get', { taskId }, { as: 'other' })).body.error).toMatchObject({ code: -32602, message: 'Failed to retrieve task: no such task of yours' });
    expect((await modern('tasks/cancel', { taskId }, { as: 'other' })).body.error).toMatchObject({ code: -32602 });
  });

  it('keeps the arguments and the result sealed in the store: a Secret in an apply is never readable there', async () => {
    const { modern, state, approve } = await setUp();
    const manifest = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'prod' }, stringData: { password: 'hunter2-correct-horse' } };
    const created = await modern('tools/call', { name: 'apply', arguments: { connection: 'prod', manifest } });
    expect(created.body.result, JSON.stringify(created.body)).toMatchObject({ resultType: 'task', status: 'working' });
    const stored = JSON.stringify([...state.mcpTasks.values()]);
    expect(stored).not.toContain('hunter2');
    expect(stored).not.toContain('stringData');
    expect(stored).not.toContain((created.body.result!.taskId as string).split('.')[1]);
    await approve(/apr_[\w-]{22}/.exec(created.body.result!.statusMessage as string)![0]);
    const done = await modern('tasks/get', { taskId: created.body.result!.taskId });
    expect(done.body.result).toMatchObject({ status: 'completed' });
    expect(JSON.stringify([...state.mcpTasks.values()])).not.toContain('hunter2');
  });

  it('a denied approval completes the task with a tool error and sends nothing; cancel ends the task and its approval', async () => {
    const { modern, state, forwarded } = await setUp();
    const denied = (await modern('tools/call', deleteCall)).body.result!;
    const deniedApproval = /apr_[\w-]{22}/.exec(denied.statusMessage as string)![0];
    await state.updateApproval(deniedApproval, { status: ['pending'] }, { status: 'denied', decidedAt: Date.now() });
    expect((await modern('tasks/get', { taskId: denied.taskId })).body.result).toMatchObject({
      status: 'completed',
      result: { isError: true, content: [{ text: expect.stringMatching(/^DENIED: approval apr_/) as unknown }] },
    });

    const other = (await modern('tools/call', { ...deleteCall, arguments: { ...deleteCall.arguments, name: 'other' } })).body.result!;
    const otherApproval = /apr_[\w-]{22}/.exec(other.statusMessage as string)![0];
    expect((await modern('tasks/cancel', { taskId: other.taskId })).body.result).toEqual({ resultType: 'complete', _meta: expect.any(Object) as unknown });
    expect((await modern('tasks/get', { taskId: other.taskId })).body.result).toMatchObject({ status: 'cancelled' });
    expect((await state.getApproval(otherApproval))!.status).toBe('cancelled');
    expect((await modern('tasks/cancel', { taskId: other.taskId })).body.error).toMatchObject({ code: -32602 });
    expect(forwarded).toHaveLength(0);
  });

  it('2025-11-25: tasks are advertised, asked for up front, polled, and their result handed out once complete', async () => {
    const { legacy, approve, forwarded } = await setUp({ taskResultWaitMs: 30 });
    const init = await send2025(legacy);
    expect(init.capabilities).toMatchObject({ tasks: { cancel: {}, requests: { tools: { call: {} } } } });
    const tools = (await legacy('tools/list', {})).body.result!.tools as { name: string; execution?: { taskSupport: string } }[];
    expect(tools.find((tool) => tool.name === 'delete')!.execution).toEqual({ taskSupport: 'optional' });
    expect(tools.find((tool) => tool.name === 'get')!.execution).toBeUndefined();

    const created = await legacy('tools/call', { ...deleteCall, task: { ttl: 60_000 } });
    const task = created.body.result!.task as Record<string, unknown>;
    expect(task).toMatchObject({ status: 'working', pollInterval: 2000 });
    expect(task.ttl).toBeGreaterThan(60_000);
    const early = await legacy('tasks/result', { taskId: task.taskId });
    expect(early.body.error).toMatchObject({ code: -32600 });
    expect(early.body.error!.message).toContain('poll it with tasks/get');
    await approve(/apr_[\w-]{22}/.exec(task.statusMessage as string)![0]);
    expect((await legacy('tasks/get', { taskId: task.taskId })).body.result).toMatchObject({ status: 'completed', taskId: task.taskId });
    const result = await legacy('tasks/result', { taskId: task.taskId });
    expect(result.body.result).toMatchObject({ isError: false, content: [{ text: 'deleted configmaps prod/settings' }], _meta: { 'io.modelcontextprotocol/related-task': { taskId: task.taskId } } });
    expect(forwarded).toHaveLength(1);

    // A call that is not held still answers through a task when one was asked for.
    const read = await legacy('tools/call', { name: 'get', arguments: { connection: 'prod', resource: 'configmaps', namespace: 'prod', name: 'settings' }, task: {} });
    const readTask = read.body.result!.task as Record<string, unknown>;
    expect(readTask.status).toBe('completed');
    expect((await legacy('tasks/result', { taskId: readTask.taskId })).body.result).toMatchObject({ isError: false });
    // Tasks are not part of earlier revisions.
    const older = await send2025(legacy, '2025-06-18');
    expect(older.capabilities).not.toHaveProperty('tasks');
  });
});

async function send2025(legacy: (method: string, params: Record<string, unknown>) => Promise<JsonRpcAnswer>, version = '2025-11-25') {
  const answer = await legacy('initialize', { protocolVersion: version, capabilities: {}, clientInfo: { name: 't', version: '1' } });
  return answer.body.result as { capabilities: Record<string, unknown> };
}
