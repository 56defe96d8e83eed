// `helm uninstall` as one plan (HELM_DRIVER=configmap), with the real Helm
// binary against the real API server. Deleting the chart's objects and the
// release records is held; writing a release record is allowed (CONTRACT.md
// "Plan, approve once, apply", Helm): the record's update carries a
// timestamp, so its bytes differ between plan and apply and it passes as an
// allowed request without a plan, while every delete passes as planned.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureHelm } from '../clients/tools.ts';
import { admin, APPROVER, createClientsConnection } from '../support/clients.ts';
import { startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';
import { execFileSync } from 'node:child_process';

const cluster = inject('cluster');
const CHART = new URL('../fixtures/chart', import.meta.url).pathname;
const HELM_UNINSTALL = `
maxWindow: 1h
windowApproval: none
approvers: [oncall@example.com]
rules:
  - effect: deny
    resources: [secrets]
  - effect: approve
    verbs: [delete]
    apiGroups: ['', apps]
    resources: [configmaps, services, deployments]
    namespaces: [prod]
  - effect: allow
    verbs: [get, list, watch]
    namespaces: [prod]
  - effect: allow
    verbs: [create, update, patch]
    resources: [configmaps]
    namespaces: [prod]
`;

describe.skipIf(!cluster)('helm uninstall as one plan', () => {
  let env: TestStack;
  let agent: TestAgent;
  let helmBinary: string;
  const release = `plan-rel-${Date.now().toString(36)}`;
  const helmEnv = () => {
    const home = join(env.dir, 'helm-home');
    mkdirSync(home, { recursive: true });
    return { HELM_DRIVER: 'configmap', HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
  };
  const records = () => admin(cluster!, ['get', 'configmaps', '-n', 'prod', '-l', `owner=helm,name=${release}`, '-o', 'name']).trim();
  const objects = () =>
    ['configmap', 'service', 'deployment'].filter(
      (kind) => admin(cluster!, ['get', kind, '-n', 'prod', '--ignore-not-found', '-o', 'name', kind === 'configmap' ? `${release}-config` : `${release}-web`]).trim() !== '',
    );

  beforeAll(async () => {
    helmBinary = ensureHelm();
    env = await startTestStack();
    await createClientsConnection(env, cluster!, 'helm-plan', HELM_UNINSTALL);
    agent = await env.createAgent(`helm-planner-${Date.now().toString(36)}`);
    const window = await agent.cli(['access', 'request', '--connection', 'helm-plan', '--duration', '30m', '--reason', 'helm plan e2e']);
    expect(window.code, window.stderr).toBe(0);
    // Installed by the admin: the plan is about the uninstall.
    execFileSync(helmBinary, ['install', release, CHART, '--namespace', 'prod', '--kubeconfig', cluster!.adminKubeconfig], { env: { ...process.env, ...helmEnv() }, stdio: 'pipe' });
  }, 600_000);
  afterAll(async () => {
    await env?.stop();
    if (cluster) admin(cluster, ['delete', `configmap/${release}-config`, `deployment/${release}-web`, `service/${release}-web`, '-n', 'prod', '--ignore-not-found']);
  });

  it('plans the uninstall (nothing changes), one approval, applies it', async () => {
    expect(objects()).toEqual(['configmap', 'service', 'deployment']);
    const command = ['env', ...Object.entries(helmEnv()).map(([name, value]) => `${name}=${value}`), helmBinary, 'uninstall', release, '--namespace', 'prod'];
    const planned = await agent.cli(['plan', '--connection', 'helm-plan', '--reason', 'remove the release', '--', ...command]);
    expect(planned.code, planned.stderr).toBe(3);
    const match = /plan (pln_\S+) \((\d+) changes?\) pending approval (apr_\S+)/.exec(planned.stdout);
    expect(match, planned.stdout).not.toBeNull();
    expect(objects()).toEqual(['configmap', 'service', 'deployment']);
    expect(records()).not.toBe('');

    const decided = await env.decide(await env.approvalLink(match![3]!, APPROVER), 'approve');
    expect(decided.status).toBe(200);
    const applied = await agent.cli(['apply', match![1]!, '--', ...command]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(objects()).toEqual([]);
    expect(records()).toBe('');
  });
});
