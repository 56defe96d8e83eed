// @kubernetes/client-node from npm (installed outside the repository by test/clients/tools.ts, so it
// is no project dependency), run as its own Node.js 24 process through an Airlock kubeconfig, its exec
// plugin running `airlock token`: list pods, create and delete a ConfigMap, and a refusal it shows as
// an ApiException with Airlock's Status. Checked on the cluster.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureClientNode } from '../clients/tools.ts';
import { admin, createClientsConnection } from '../support/clients.ts';
import { startTestStack, type CliResult, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');
const SCRIPT = new URL('../fixtures/client-node.mjs', import.meta.url).pathname;
const POLICY = `
maxWindow: 1h
windowApproval: none
rules:
  - effect: deny
    resources: [secrets]
  - effect: allow
    verbs: [get, list, watch]
    namespaces: [prod]
  - effect: allow
    verbs: [create, delete]
    resources: [configmaps]
    namespaces: [prod]
`;

describe.skipIf(!cluster)('@kubernetes/client-node through Airlock', () => {
  let env: TestStack;
  let kubeconfig: string;
  let clientNode: string;
  const name = `client-node-${Date.now().toString(36)}`;
  const run = (args: string[]): Promise<CliResult> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [SCRIPT, ...args], { env: { ...process.env, KUBECONFIG: kubeconfig, CLIENT_NODE: clientNode }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  const clusterHas = () => admin(cluster!, ['get', 'configmaps', '-n', 'prod', '-o', 'name']).includes(`configmap/${name}\n`);

  beforeAll(async () => {
    clientNode = ensureClientNode();
    env = await startTestStack();
    await createClientsConnection(env, cluster!, 'client-node', POLICY);
    const agent = await env.createAgent(name);
    const window = await agent.cli(['access', 'request', '--connection', 'client-node', '--duration', '30m', '--reason', 'client-node e2e']);
    expect(window.code, window.stderr).toBe(0);
    kubeconfig = await agent.kubeconfig('client-node');
  }, 300_000);
  afterAll(async () => {
    await env?.stop();
    if (cluster) admin(cluster, ['delete', 'configmap', name, '-n', 'prod', '--ignore-not-found']);
  });

  it('lists pods, creates and deletes a ConfigMap', async () => {
    const listed = await run(['list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual({ pods: expect.arrayContaining(['web-0']) });

    const created = await run(['create', name]);
    expect(created.code, created.stderr).toBe(0);
    const { uid } = JSON.parse(created.stdout) as { uid: string };
    expect(admin(cluster!, ['get', 'configmap', name, '-n', 'prod', '-o', 'jsonpath={.metadata.uid} {.data.from}'])).toBe(`${uid} client-node`);

    const deleted = await run(['delete', name]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(clusterHas()).toBe(false);
  });

  it("a refusal reaches the program as an ApiException carrying Airlock's Status", async () => {
    const refused = await run(['secrets']);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toEqual({ status: 403, reason: 'Forbidden', message: expect.stringMatching(/^airlock: .*secrets/) });
  });
});
