// `helm uninstall` and `helm upgrade` each as one plan (HELM_DRIVER=configmap),
// with the real Helm binary against the real API server. The chart's objects
// are held (deleting them; for the upgrade, changing the Deployment and the
// Service); writing a release record is allowed (CONTRACT.md "Plan, approve
// once, apply", Helm): the record carries a timestamp, so its bytes differ
// between plan and apply and it passes as an allowed request without a plan,
// while every held change passes as planned, once.
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

/** Changing the chart's Deployment and Service is held; ConfigMaps (the release records, the chart's config) are allowed. */
const HELM_UPGRADE = `
maxWindow: 1h
windowApproval: none
approvers: [oncall@example.com]
rules:
  - effect: deny
    resources: [secrets]
  - effect: approve
    verbs: [create, update, patch, delete]
    apiGroups: ['', apps]
    resources: [services, deployments]
    namespaces: [prod]
  - effect: allow
    verbs: [get, list, watch]
    namespaces: [prod]
  - effect: allow
    verbs: [create, update, patch]
    resources: [configmaps]
    namespaces: [prod]
`;

describe.skipIf(!cluster)('helm uninstall and helm upgrade as one plan each', () => {
  let env: TestStack;
  let agent: TestAgent;
  let helmBinary: string;
  const release = `plan-rel-${Date.now().toString(36)}`;
  const upgraded = `plan-up-${Date.now().toString(36)}`;
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
    await createClientsConnection(env, cluster!, 'helm-upgrade', HELM_UPGRADE);
    agent = await env.createAgent(`helm-planner-${Date.now().toString(36)}`);
    const window = await agent.cli(['access', 'request', '--connection', 'helm-plan', '--duration', '30m', '--reason', 'helm plan e2e']);
    expect(window.code, window.stderr).toBe(0);
    const upgradeWindow = await agent.cli(['access', 'request', '--connection', 'helm-upgrade', '--duration', '30m', '--reason', 'helm plan e2e']);
    expect(upgradeWindow.code, upgradeWindow.stderr).toBe(0);
    // Installed by the admin: the plans are about the uninstall and the upgrade.
    for (const name of [release, upgraded]) {
      execFileSync(helmBinary, ['install', name, CHART, '--namespace', 'prod', '--kubeconfig', cluster!.adminKubeconfig], { env: { ...process.env, ...helmEnv() }, stdio: 'pipe' });
    }
  }, 600_000);
  afterAll(async () => {
    await env?.stop();
    if (cluster) {
      for (const name of [release, upgraded]) {
        admin(cluster, ['delete', `configmap/${name}-config`, `deployment/${name}-web`, `service/${name}-web`, '-n', 'prod', '--ignore-not-found']);
        admin(cluster, ['delete', 'configmaps', '-n', 'prod', '-l', `owner=helm,name=${name}`, '--ignore-not-found']);
      }
    }
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

  it('plans the upgrade (nothing changes), shows the Deployment change as a diff, one approval, applies it', async () => {
    const live = (what: string) => admin(cluster!, ['get', ...what.split(' '), '-n', 'prod', '-o', 'jsonpath={.spec.replicas}{.data.message}']).trim();
    const revisions = () =>
      admin(cluster!, ['get', 'configmaps', '-n', 'prod', '-l', `owner=helm,name=${upgraded}`, '-o', 'jsonpath={range .items[*]}{.metadata.labels.version}={.metadata.labels.status} {end}']).trim();
    expect(live(`deployment ${upgraded}-web`)).toBe('1');
    expect(revisions()).toBe('1=deployed');
    const command = [
      'env',
      ...Object.entries(helmEnv()).map(([name, value]) => `${name}=${value}`),
      helmBinary,
      'upgrade',
      upgraded,
      CHART,
      '--namespace',
      'prod',
      '--set',
      'replicas=2',
      '--set',
      'message=two',
    ];
    const planned = await agent.cli(['plan', '--connection', 'helm-upgrade', '--reason', 'scale the web tier', '--', ...command]);
    expect(planned.code, planned.stderr).toBe(3);
    const match = /plan (pln_\S+) \((\d+) changes?\) pending approval (apr_\S+)/.exec(planned.stdout);
    expect(match, planned.stdout).not.toBeNull();
    // A dry run: nothing changed, no new revision.
    expect(live(`deployment ${upgraded}-web`)).toBe('1');
    expect(live(`configmap ${upgraded}-config`)).toBe('one');
    expect(revisions()).toBe('1=deployed');

    // The approver sees the held Deployment change as the API server's dry run against the live object.
    const link = new URL(await env.approvalLink(match![3]!, APPROVER));
    const shown = await env.https('GET', link.pathname + link.search);
    expect(shown.status).toBe(200);
    expect(shown.body).toContain(`PATCH deployments/${upgraded}-web.apps in prod (patch)`);
    // Helm's bookkeeping is in the plan too (allowed by the policy, so it does not need the approval): the new
    // revision's record, created and then updated in the same run.
    expect(shown.body).toContain(`PUT configmaps/sh.helm.release.v1.${upgraded}.v2 in prod (update)`);
    // Helm sends its release records as Kubernetes protobuf: shown as the API server decodes them (its dry run), not hidden.
    expect(shown.body).toContain('Sent as Kubernetes protobuf');
    expect(shown.body).toContain('status: pending-upgrade');
    expect(shown.body).toContain('-   replicas: 1');
    expect(shown.body).toContain('+   replicas: 2');
    expect(shown.body).toContain('-   message: one');
    expect(shown.body).toContain('+   message: two');
    expect(shown.body).toContain('value="approve"');
    const decided = await env.decide(link.toString(), 'approve');
    expect(decided.status).toBe(200);

    const applied = await agent.cli(['apply', match![1]!, '--', ...command]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(live(`deployment ${upgraded}-web`)).toBe('2');
    expect(live(`configmap ${upgraded}-config`)).toBe('two');
    expect(revisions()).toBe('1=superseded 2=deployed');
    // The Deployment's change passed as planned, once, under the plan's approval.
    const records = (await env.stack.services.records.query({ agent: agent.name, limit: 500 })).items;
    expect(records).toContainEqual(
      expect.objectContaining({ method: 'PATCH', path: `/apis/apps/v1/namespaces/prod/deployments/${upgraded}-web`, decision: 'allowed', planId: match![1], approvalId: match![3], status: 200 }),
    );
  });
});
