// `airlock exec` against the real kube-apiserver and a running pod on a kwok
// node (whose kubelet simulation runs the command as a local process): output
// and exit codes, stdin, a command the policy does not list held until a human
// approves it on the emailed link's page and then passing once, a refusal once
// the window has ended, the transcript with the command and its output, and
// kubectl exec's refusal naming airlock exec.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubectl } from '../support/kubectl.ts';
import { admin, APPROVER, serviceAccountRbac } from '../support/clients.ts';
import { readFileSync } from 'node:fs';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';
import { connectAgent } from '../support/mcp.ts';

const cluster = inject('cluster');

/** The connection's credential: a ServiceAccount that may read pods and exec into them in prod (what the policy then narrows). */
const EXEC_RBAC = serviceAccountRbac(
  'airlock-exec',
  `  - apiGroups: ['']
    resources: [pods]
    verbs: [get, list]
  - apiGroups: ['']
    resources: [pods/exec]
    verbs: [get, create]
`,
);

/** echo, head and shell one-liners run; any other command is held for a human; exec elsewhere is refused. */
const POLICY = `
maxWindow: 1h
windowApproval: none
rules:
  - effect: allow
    verbs: [get, list]
    resources: [pods]
    namespaces: [prod]
  - effect: allow
    verbs: [exec]
    resources: [pods/exec]
    namespaces: [prod]
    commands: ["echo *", "head *", "sh -c *"]
  - effect: approve
    verbs: [exec]
    resources: [pods/exec]
    namespaces: [prod]
approvers: [${APPROVER}]
`;

describe.skipIf(!cluster)('airlock exec runs a command in a running pod, on the single path (real API server, kwok pod)', () => {
  let env: TestStack;
  let agent: TestAgent;
  let windowId: string;
  const pod = `exec-${Date.now().toString(36)}`;
  /** With `input`: -i, and the CLI reads it as its standard input. */
  const run = (args: string[], input?: string) => agent.cli(['exec', '--connection', 'exec', '-n', 'prod', ...(input === undefined ? [] : ['-i']), pod, '--', ...args], input);
  const runJson = async (args: string[]) => {
    const result = await agent.cli(['--json', 'exec', '--connection', 'exec', '-n', 'prod', pod, '--', ...args]);
    return { ...result, json: JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, unknown> & { requestId?: string; error?: { approvalId?: string } } };
  };

  beforeAll(async () => {
    admin(cluster!, ['apply', '-f', '-'], EXEC_RBAC);
    // A pod on a kwok node: scheduled, marked Running, its exec served by kwok's kubelet simulation.
    admin(
      cluster!,
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: pod, namespace: 'prod' },
        spec: {
          containers: [{ name: 'main', image: 'busybox:1.36' }],
          tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
        },
      }),
    );
    admin(cluster!, ['wait', '--for=condition=Ready', `pod/${pod}`, '-n', 'prod', '--timeout=90s']);
    const token = admin(cluster!, ['create', 'token', 'airlock-exec', '-n', 'prod', '--duration', '2h']).trim();
    env = await startTestStack();
    await env.createConnection('exec', { cluster: cluster!, policy: POLICY, token });
    agent = await env.createAgent('exec-agent');
    const window = await agent.cli(['--json', 'access', 'request', '--connection', 'exec', '--duration', '30m', '--reason', 'look inside the web pod']);
    expect(window.code, window.stderr).toBe(0);
    windowId = (JSON.parse(window.stdout) as { id: string }).id;
  });
  afterAll(async () => {
    await env?.stop();
    if (cluster) admin(cluster, ['delete', 'pod', pod, '-n', 'prod', '--wait=false', '--ignore-not-found']);
  });

  it('returns the output and exit code 0', async () => {
    const result = await run(['echo', 'hello from', 'the pod']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('hello from the pod\n');
  });

  it('returns a non-zero exit code as its own, with stdout and stderr apart', async () => {
    const result = await run(['sh', '-c', 'echo to-out; echo to-err >&2; exit 7']);
    expect(result.code).toBe(7);
    expect(result.stdout).toBe('to-out\n');
    expect(result.stderr).toBe('to-err\n');
    const json = await runJson(['sh', '-c', 'exit 3']);
    expect(json.code).toBe(3);
    expect(json.json).toMatchObject({ exitCode: 3, stdout: '', stderr: '' });
  });

  it('sends stdin to the command (-i)', async () => {
    // head exits after its lines: kwok's local exec does not pass on the end of stdin (cat would wait for it).
    const input = 'first line\nsecond line\n';
    const result = await run(['head', '-n', '2'], input);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(input);
    const withFlag = await agent.cli(['exec', '--connection', 'exec', '-n', 'prod', '-i', pod, '--', 'head', '-n', '1'], 'piped\nnot read\n');
    expect(withFlag.code, withFlag.stderr).toBe(0);
    expect(withFlag.stdout).toBe('piped\n');
  });

  it('the transcript holds the command line and its output; the record the exec as forwarded', async () => {
    const result = await runJson(['sh', '-c', 'echo secret-looking password=hunter2; echo done']);
    expect(result.code).toBe(0);
    type Shown = { record: Record<string, unknown>; transcript: { request: Record<string, unknown>; response: { exec: Record<string, unknown> } } };
    const show = async () => JSON.parse((await env.cli(['--json', 'audit', 'show', result.json.requestId!])).stdout) as Shown;
    // The record is completed, and the transcript written, once the answer has been sent.
    await expect.poll(async () => (await show()).record.phase).toBe('complete');
    const { record, transcript } = await show();
    expect(record).toMatchObject({ decision: 'allowed', verb: 'exec', resource: 'pods', subresource: 'exec', name: pod, namespace: 'prod', status: 200, method: 'GET' });
    expect(transcript.request.command).toBe("sh -c 'echo secret-looking password=[REDACTED]; echo done'");
    expect(transcript.response.exec).toMatchObject({ stdout: 'secret-looking password=[REDACTED]\ndone\n', stderr: '', exit: { code: 0 } });
    expect(JSON.stringify(transcript)).not.toContain('hunter2');
  });

  it('a command the policy does not list is held; approved on the emailed page it passes once, then is held again', async () => {
    const held = await runJson(['printf', 'approved-run']);
    expect(held.code).toBe(3);
    const approvalId = held.json.error!.approvalId!;
    expect(approvalId).toMatch(/^apr_/);
    expect(held.stderr).toMatch(/^airlock: GET pods\/exec\/\S+ in prod \(exec\): printf approved-run needs a one-time human approval/);

    const link = await env.approvalLink(approvalId, APPROVER);
    const url = new URL(link);
    const page = await env.https('GET', url.pathname + url.search);
    expect(page.body).toContain(`GET pods/exec/${pod} in prod (exec): printf approved-run`);
    expect(page.body).toContain('<pre class="command">printf approved-run</pre>');
    expect((await env.decide(link, 'approve')).status).toBe(200);
    expect((await agent.cli(['approvals', 'wait', approvalId, '--timeout', '10'])).code).toBe(0);

    // Not the approved command: still held.
    expect((await run(['printf', 'other'])).code).toBe(3);
    const passed = await run(['printf', 'approved-run']);
    expect(passed.code, passed.stderr).toBe(0);
    expect(passed.stdout).toBe('approved-run');
    const again = await runJson(['printf', 'approved-run']);
    expect(again.code).toBe(3);
    expect(again.json.error!.approvalId).not.toBe(approvalId);
  });

  it('the MCP exec tool takes the same path: listed commands run, others are held, each recorded naming the tool', async () => {
    const mcp = await connectAgent(env.stack.url, readFileSync(env.stack.caFile, 'utf8'), agent);
    try {
      const exec = (await mcp.client.listTools()).tools.find((tool) => tool.name === 'exec');
      expect(exec, 'exec is listed: the policy can allow it').toBeDefined();
      expect(exec!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
      expect(exec!.description).toContain('approval');
      const call = async (args: Record<string, unknown>) => (await mcp.client.callTool({ name: 'exec', arguments: { connection: 'exec', namespace: 'prod', pod, ...args } })) as CallToolResult;
      const text = (result: CallToolResult) => result.content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');
      const meta = (result: CallToolResult, key: string) => (result._meta as Record<string, unknown> | undefined)?.[`airlock.dev/${key}`];

      const ran = await call({ command: ['sh', '-c', 'echo over-mcp; echo token=abc123 >&2; exit 4'] });
      expect(ran.isError, text(ran)).toBe(false);
      expect(ran.structuredContent).toMatchObject({ exitCode: 4 });
      expect(text(ran)).toContain('exit code 4');
      expect(text(ran)).toContain('over-mcp');
      expect(text(ran)).toContain('token=[REDACTED]');
      expect(text(ran)).not.toContain('abc123');
      const [requestId] = meta(ran, 'requestIds') as string[];
      const shown = JSON.parse((await env.cli(['--json', 'audit', 'show', requestId!])).stdout) as { record: Record<string, unknown> };
      expect(shown.record).toMatchObject({ decision: 'allowed', verb: 'exec', subresource: 'exec', name: pod, mcpTool: 'exec', mcpCallId: meta(ran, 'callId') });

      const held = await call({ command: ['printf', 'mcp-held'] });
      expect(held.isError).toBe(true);
      expect(meta(held, 'approvalId')).toMatch(/^apr_/);
      expect(text(held)).toContain('HELD for a one-time human approval');
    } finally {
      await mcp.close();
    }
  });

  it('kubectl exec is refused, naming airlock exec', async () => {
    const kubeconfig = await agent.kubeconfig('exec');
    const refused = await kubectl(['exec', '-n', 'prod', pod, '--', 'echo', 'hi'], { kubeconfig });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('airlock exec --connection NAME -n prod');
  });

  it('is refused once the window has ended, by the gateway too (a token from before the end)', async () => {
    const credential = await agent.cli(['token', '--connection', 'exec']);
    const { token } = (JSON.parse(credential.stdout) as { status: { token: string } }).status;
    expect((await agent.cli(['access', 'end', windowId])).code).toBe(0);
    const refused = await run(['echo', 'too late']);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    const direct = await env.https('POST', '/v1/exec', {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'prod', pod, command: ['echo', 'too late'] }),
    });
    expect(direct.status).toBe(403);
    expect(direct.body).toContain(windowId);
    // The refusal's record is completed once its answer is sent.
    const latest = async () => (JSON.parse((await env.cli(['--json', 'audit', 'list', '--agent', 'exec-agent', '--limit', '1'])).stdout) as { items: Record<string, unknown>[] }).items[0];
    await expect.poll(async () => (await latest())?.decision).toBe('denied');
    expect(await latest()).toMatchObject({ verb: 'exec', name: pod });
  });
});
