// `airlock verify` against the local stack and the real cluster: every control passes,
// and a side door (any credential the agent process could use that the cluster accepts:
// a kubeconfig user, an env var, a service-account token file) makes it fail.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubeconfig as clusterKubeconfig } from '../cluster/harness.ts';
import { APPROVAL_POLICY, startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');

interface VerifyOutput {
  pass: boolean;
  checks: { control: string; pass: boolean; evidence: string }[];
}

describe.skipIf(!cluster)('airlock verify', () => {
  let env: TestStack;
  let agent: TestAgent;
  let tokenFile: string;
  let noServiceAccount: string;
  const saved = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME, KUBE_TOKEN: process.env.KUBE_TOKEN };

  /** verify as the agent; the service-account token path is `serviceAccount` (none there by default). */
  const verify = async (serviceAccount = noServiceAccount, extra: string[] = []) => {
    const result = await agent.cli(['--json', 'verify', '--connection', 'prod-cluster', '--approve-with-link', '--timeout', '30', '--service-account-token', serviceAccount, ...extra]);
    expect(result.stdout).not.toContain(cluster!.connectionToken);
    expect(result.stderr).not.toContain(cluster!.connectionToken);
    return { result, output: JSON.parse(result.stdout) as VerifyOutput };
  };
  const control = (output: VerifyOutput, name: string) => output.checks.find((check) => check.control === name)!;

  beforeAll(async () => {
    env = await startTestStack();
    await env.createConnection('prod-cluster', { cluster: cluster!, policy: APPROVAL_POLICY });
    agent = await env.createAgent('verified-agent');
    tokenFile = join(env.dir, 'prod-cluster.token'); // written by createConnection: the cluster credential itself
    noServiceAccount = join(env.dir, 'no-such-service-account-token');
    // The agent's world: an empty home, no KUBECONFIG, no token variables.
    process.env.HOME = join(env.dir, 'agent-home');
    mkdirSync(process.env.HOME, { recursive: true });
    process.env.KUBECONFIG = join(env.dir, 'no-such-kubeconfig');
    delete process.env.KUBE_TOKEN;
  });
  afterAll(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await env?.stop();
  });

  it('proves every control on the local stack (table for people, JSON for CI)', async () => {
    // The agent's own Airlock kubeconfig is readable: its exec plugin is not a side door.
    process.env.KUBECONFIG = await agent.kubeconfig('prod-cluster');
    const { result, output } = await verify(noServiceAccount, ['--upstream-token-file', tokenFile]);
    for (const check of output.checks) expect(check.pass, `${check.control}: ${check.evidence}`).toBe(true);
    expect(output.pass).toBe(true);
    expect(result.code).toBe(0);
    expect(output.checks.map((check) => check.control)).toEqual([
      'identity',
      'timing: no window',
      'timing: window',
      'identity: token',
      'scope + record',
      'scope: refused',
      'mcp',
      'scope: escalation',
      'approval',
      'timing: window end',
      'side door: kubeconfig',
      'side door: service account',
      'side door: environment',
      'side door: IAM',
      'side door: credential',
    ]);
    expect(control(output, 'side door: kubeconfig').evidence).toContain('1 Airlock exec plugin(s) (not side doors)');
    expect(control(output, 'mcp').evidence).toMatch(
      /^tools\/call list \(GET \/api\/v1\/namespaces\/prod\/\w+\) -> 200; record req_\S+: agent \S+, allowed, 200, complete; transcript names \S+; record names tool list, call mcp_\S+; MCP token on \/k8s -> 401; \/mcp without a token -> 401$/,
    );
    expect(control(output, 'scope: escalation').evidence).toMatch(
      /^no escalation is let through by a broad rule; POST \/api\/v1\/namespaces\/prod\/serviceaccounts\/default\/token -> 403 forbidden_by_policy/,
    );
    const human = await agent.cli(['verify', '--connection', 'prod-cluster', '--approve-with-link', '--timeout', '30', '--service-account-token', noServiceAccount]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^CONTROL\s+RESULT\s+EVIDENCE/m);
    expect(human.stdout).toContain('PASS: 15/15 controls hold on prod-cluster');
    process.env.KUBECONFIG = join(env.dir, 'no-such-kubeconfig');
  });

  it('fails when a kubeconfig user with no context holds the cluster credential, naming the file and the user', async () => {
    // No cluster, no context: only a user. Reading contexts would find nothing here.
    const leaked = join(process.env.HOME!, '.kube', 'backup.yaml');
    mkdirSync(join(process.env.HOME!, '.kube'), { recursive: true });
    writeFileSync(leaked, `apiVersion: v1\nkind: Config\nusers:\n- name: forgotten\n  user:\n    token: ${cluster!.connectionToken}\n`);
    try {
      const { result, output } = await verify();
      expect(result.code).toBe(1);
      expect(output.pass).toBe(false);
      const door = control(output, 'side door: kubeconfig');
      expect(door.pass).toBe(false);
      expect(door.evidence).toContain(`${leaked}: user forgotten (accepted as airlock-connection)`);
    } finally {
      rmSync(join(process.env.HOME!, '.kube'), { recursive: true, force: true });
    }
  });

  it('fails when a kubeconfig names the same server spelled differently (localhost for 127.0.0.1)', async () => {
    const leaked = join(env.dir, 'leaked.kubeconfig');
    const otherSpelling = cluster!.server.replace('https://127.0.0.1:', 'https://localhost:');
    expect(otherSpelling).not.toBe(cluster!.server);
    writeFileSync(leaked, clusterKubeconfig(otherSpelling, cluster!.caPem, 'leaked', cluster!.connectionToken));
    process.env.KUBECONFIG = leaked;
    try {
      const { result, output } = await verify();
      expect(result.code).toBe(1);
      const door = control(output, 'side door: kubeconfig');
      expect(door.pass).toBe(false);
      expect(door.evidence).toContain(`${leaked}: user leaked (accepted as airlock-connection)`);
    } finally {
      process.env.KUBECONFIG = join(env.dir, 'no-such-kubeconfig');
    }
  });

  it('fails when a well-known environment variable holds the cluster credential', async () => {
    process.env.KUBE_TOKEN = cluster!.connectionToken;
    try {
      const { result, output } = await verify();
      expect(result.code).toBe(1);
      const door = control(output, 'side door: environment');
      expect(door.pass).toBe(false);
      expect(door.evidence).toContain('env KUBE_TOKEN (accepted as airlock-connection)');
      expect(control(output, 'side door: kubeconfig').pass).toBe(true);
    } finally {
      delete process.env.KUBE_TOKEN;
    }
  });

  it('fails when the service-account token path holds a token the cluster accepts', async () => {
    const saToken = join(env.dir, 'serviceaccount', 'token');
    mkdirSync(join(env.dir, 'serviceaccount'), { recursive: true });
    writeFileSync(saToken, `${cluster!.connectionToken}\n`);
    const { result, output } = await verify(saToken);
    expect(result.code).toBe(1);
    const door = control(output, 'side door: service account');
    expect(door.pass).toBe(false);
    expect(door.evidence).toContain(`service-account token ${saToken} (accepted as airlock-connection)`);
  });

  it('a token the cluster does not accept is tried and passes, with the count', async () => {
    process.env.KUBE_TOKEN = 'not-a-cluster-token';
    try {
      const { output } = await verify();
      const door = control(output, 'side door: environment');
      expect(door.pass, door.evidence).toBe(true);
      expect(door.evidence).toContain('1 credential(s) tried');
      expect(door.evidence).toContain('1 rejected');
    } finally {
      delete process.env.KUBE_TOKEN;
    }
  });
});
