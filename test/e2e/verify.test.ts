// `airlock verify` against the local stack and the real cluster: every control passes,
// and a side door (a kubeconfig with a cluster credential) makes it fail.
import { writeFileSync } from 'node:fs';
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
  const savedKubeconfig = process.env.KUBECONFIG;

  beforeAll(async () => {
    env = await startTestStack();
    await env.createConnection('prod-cluster', { cluster: cluster!, policy: APPROVAL_POLICY });
    agent = await env.createAgent('verified-agent');
    tokenFile = join(env.dir, 'prod-cluster.token'); // written by createConnection: the cluster credential itself
    process.env.KUBECONFIG = join(env.dir, 'no-such-kubeconfig');
  });
  afterAll(async () => {
    process.env.KUBECONFIG = savedKubeconfig;
    await env?.stop();
  });

  it('proves every control on the local stack (table for people, JSON for CI)', async () => {
    const result = await agent.cli(['--json', 'verify', '--connection', 'prod-cluster', '--approve-with-link', '--timeout', '30', '--upstream-token-file', tokenFile]);
    const output = JSON.parse(result.stdout) as VerifyOutput;
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
      'approval',
      'timing: window end',
      'side door: kubeconfig',
      'side door: IAM',
      'side door: credential',
    ]);
    const human = await agent.cli(['verify', '--connection', 'prod-cluster', '--approve-with-link', '--timeout', '30']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^CONTROL\s+RESULT\s+EVIDENCE/m);
    expect(human.stdout).toContain('PASS: 11/11 controls hold on prod-cluster');
  });

  it('fails when a kubeconfig the agent can read holds a credential for the cluster', async () => {
    const leaked = join(env.dir, 'leaked.kubeconfig');
    writeFileSync(leaked, clusterKubeconfig(cluster!.server, cluster!.caPem, 'leaked', cluster!.connectionToken));
    process.env.KUBECONFIG = leaked;
    try {
      const result = await agent.cli(['--json', 'verify', '--connection', 'prod-cluster', '--approve-with-link', '--timeout', '30']);
      const output = JSON.parse(result.stdout) as VerifyOutput;
      expect(result.code).toBe(1);
      expect(output.pass).toBe(false);
      const door = output.checks.find((check) => check.control === 'side door: kubeconfig')!;
      expect(door.pass).toBe(false);
      expect(door.evidence).toContain(leaked);
    } finally {
      process.env.KUBECONFIG = join(env.dir, 'no-such-kubeconfig');
    }
  });
});
