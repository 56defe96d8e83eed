// Helm v3 (built from the Go module proxy, test/clients/tools.ts) through Airlock under
// examples/policy-helm.yaml with HELM_DRIVER=configmap: install, upgrade, rollback and uninstall of
// test/fixtures/chart, and install --wait (the controllers and kwok nodes run the pods), each
// checked on the cluster itself with the admin kubeconfig. Helm's default
// Secret storage is refused by that policy (it denies Secrets), which the last test shows.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureHelm } from '../clients/tools.ts';
import { admin, approvedWindow, createClientsConnection } from '../support/clients.ts';
import { startTestStack, type CliResult, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');
const HELM_POLICY = readFileSync(new URL('../../examples/policy-helm.yaml', import.meta.url), 'utf8');
const CHART = new URL('../fixtures/chart', import.meta.url).pathname;

describe.skipIf(!cluster)('Helm through Airlock (HELM_DRIVER=configmap)', () => {
  let env: TestStack;
  let kubeconfig: string;
  let helmBinary: string;
  const release = `rel-${Date.now().toString(36)}`;

  const helm = (args: string[], driver = 'configmap'): Promise<CliResult> =>
    new Promise((resolve, reject) => {
      const home = join(env.dir, 'helm-home');
      mkdirSync(home, { recursive: true });
      const child = spawn(helmBinary, [...args, '--namespace', 'prod', '--kubeconfig', kubeconfig], {
        env: { ...process.env, HELM_DRIVER: driver, KUBECONFIG: kubeconfig, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  const message = () => admin(cluster!, ['get', 'configmap', `${release}-config`, '-n', 'prod', '-o', 'jsonpath={.data.message}']);
  const releaseRecords = () =>
    admin(cluster!, ['get', 'configmaps', '-n', 'prod', '-l', `owner=helm,name=${release}`, '-o', 'name'])
      .trim()
      .split('\n')
      .filter(Boolean)
      .sort();

  beforeAll(async () => {
    helmBinary = ensureHelm();
    env = await startTestStack();
    await createClientsConnection(env, cluster!, 'helm', HELM_POLICY);
    const agent = await env.createAgent(`helm-${Date.now().toString(36)}`);
    await approvedWindow(env, agent, 'helm', 'helm e2e');
    kubeconfig = await agent.kubeconfig('helm');
  }, 600_000);
  afterAll(async () => {
    await env?.stop();
    if (cluster) admin(cluster, ['delete', `configmap/${release}-config`, `deployment/${release}-web`, `service/${release}-web`, '-n', 'prod', '--ignore-not-found']);
  });

  it('install creates the chart and a release record in a ConfigMap', async () => {
    const installed = await helm(['install', release, CHART]);
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stdout).toMatch(/STATUS: deployed/);
    expect(message()).toBe('one');
    expect(admin(cluster!, ['get', 'deployment', `${release}-web`, '-n', 'prod', '-o', 'jsonpath={.spec.replicas}'])).toBe('1');
    expect(admin(cluster!, ['get', 'service', `${release}-web`, '-n', 'prod', '-o', 'name']).trim()).toBe(`service/${release}-web`);
    expect(releaseRecords()).toEqual([`configmap/sh.helm.release.v1.${release}.v1`]);
    expect(admin(cluster!, ['get', 'secrets', '-n', 'prod', '-l', 'owner=helm', '-o', 'name']).trim()).toBe('');
  });

  it('upgrade changes it', async () => {
    const upgraded = await helm(['upgrade', release, CHART, '--set', 'message=two', '--set', 'replicas=2']);
    expect(upgraded.code, upgraded.stderr).toBe(0);
    expect(message()).toBe('two');
    expect(admin(cluster!, ['get', 'deployment', `${release}-web`, '-n', 'prod', '-o', 'jsonpath={.spec.replicas}'])).toBe('2');
    expect(releaseRecords()).toHaveLength(2);
  });

  it('rollback restores revision 1, and history lists all three', async () => {
    const rolledBack = await helm(['rollback', release, '1']);
    expect(rolledBack.code, rolledBack.stderr).toBe(0);
    expect(message()).toBe('one');
    expect(admin(cluster!, ['get', 'deployment', `${release}-web`, '-n', 'prod', '-o', 'jsonpath={.spec.replicas}'])).toBe('1');
    const history = await helm(['history', release]);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toMatch(/^3\s.*Rollback to 1/m);
  });

  it('uninstall removes the chart and its release records', async () => {
    const uninstalled = await helm(['uninstall', release]);
    expect(uninstalled.code, uninstalled.stderr).toBe(0);
    expect(admin(cluster!, ['get', 'configmaps,deployments,services', '-n', 'prod', '-o', 'name'])).not.toContain(release);
    expect(releaseRecords()).toEqual([]);
  });

  it('install --wait returns once the Deployment has rolled out (controllers, kwok nodes); the cluster agrees', async () => {
    const name = `${release}-wait`;
    try {
      const installed = await helm(['install', name, CHART, '--set', 'replicas=2', '--wait', '--timeout', '2m']);
      expect(installed.code, installed.stderr).toBe(0);
      expect(installed.stdout).toMatch(/STATUS: deployed/);
      expect(admin(cluster!, ['get', 'deployment', `${name}-web`, '-n', 'prod', '-o', 'jsonpath={.status.readyReplicas}'])).toBe('2');
      const phases = admin(cluster!, ['get', 'pods', '-n', 'prod', '-l', `app=${name}-web`, '-o', 'jsonpath={.items[*].status.phase}']);
      expect(phases.split(' ')).toEqual(['Running', 'Running']);
    } finally {
      await helm(['uninstall', name]);
    }
  });

  it('a chart whose pods would mount a service-account token is refused, saying why, and nothing is left behind', async () => {
    const refused = await helm(['install', `${release}-token`, CHART, '--set', 'automountServiceAccountToken=true']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/airlock: create deployments.apps .*would mount a token of service account "default".*set automountServiceAccountToken: false/);
    expect(admin(cluster!, ['get', 'deployments', '-n', 'prod', '-o', 'name'])).not.toContain(`${release}-token`);
    await helm(['uninstall', `${release}-token`]);
    expect(admin(cluster!, ['get', 'configmaps,deployments,services', '-n', 'prod', '-o', 'name'])).not.toContain(`${release}-token`);
  });

  it("Helm's default Secret storage is refused by the policy, and nothing is installed", async () => {
    const refused = await helm(['install', `${release}-secrets`, CHART], 'secret');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/secrets/);
    // Without --debug, Helm prints the refusal's reason from the Warning header (issue 11 §6).
    expect(refused.stderr).toMatch(/airlock: .*secrets in namespace prod is not allowed on /);
    expect(admin(cluster!, ['get', 'configmaps,deployments,services,secrets', '-n', 'prod', '-o', 'name'])).not.toContain(`${release}-secrets`);
  });
});
