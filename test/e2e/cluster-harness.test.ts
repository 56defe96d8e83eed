// Proof that the harness is a real cluster: real kubectl, real RBAC, real watch.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it, beforeAll } from 'vitest';
import { kubeconfig } from '../cluster/harness.ts';
import { kubectl, kubectlStream } from '../support/kubectl.ts';

const cluster = inject('cluster');

describe.skipIf(!cluster)('test cluster harness (real kube-apiserver, real kubectl)', () => {
  let admin: string;
  let narrow: string;

  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-harness-test-'));
    admin = cluster!.adminKubeconfig;
    narrow = join(dir, 'connection.kubeconfig');
    writeFileSync(narrow, kubeconfig(cluster!.server, cluster!.caPem, 'airlock-connection', cluster!.connectionToken));
  });

  it('lets the admin create, read and delete objects', async () => {
    const name = `harness-cm-${Date.now()}`;
    const created = await kubectl(['create', 'configmap', name, '-n', 'staging', '--from-literal=k=v'], { kubeconfig: admin });
    expect(created.code, created.stderr).toBe(0);
    const read = await kubectl(['get', 'configmap', name, '-n', 'staging', '-o', 'jsonpath={.data.k}'], { kubeconfig: admin });
    expect(read.stdout).toBe('v');
    const deleted = await kubectl(['delete', 'configmap', name, '-n', 'staging'], { kubeconfig: admin });
    expect(deleted.code, deleted.stderr).toBe(0);
    const gone = await kubectl(['get', 'configmap', name, '-n', 'staging'], { kubeconfig: admin });
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain('NotFound');
  });

  it('gives the connection credential pods in prod and nothing else (RBAC is real)', async () => {
    const pods = await kubectl(['get', 'pods', '-n', 'prod', '-o', 'name'], { kubeconfig: narrow });
    expect(pods.code, pods.stderr).toBe(0);
    expect(pods.stdout).toContain('pod/web-0');

    const secrets = await kubectl(['get', 'secrets', '-n', 'prod'], { kubeconfig: narrow });
    expect(secrets.code).not.toBe(0);
    expect(secrets.stderr).toMatch(/forbidden/i);

    const otherNamespace = await kubectl(['get', 'pods', '-n', 'staging'], { kubeconfig: narrow });
    expect(otherNamespace.code).not.toBe(0);
    expect(otherNamespace.stderr).toMatch(/forbidden/i);

    const clusterWide = await kubectl(['get', 'nodes'], { kubeconfig: narrow });
    expect(clusterWide.code).not.toBe(0);
    expect(clusterWide.stderr).toMatch(/forbidden/i);
  });

  it('streams a watch event when a pod is created', async () => {
    const name = `harness-watch-${Date.now()}`;
    const watch = kubectlStream(['get', 'pods', '-n', 'prod', '-w', '--output-watch-events'], { kubeconfig: narrow });
    try {
      await watch.waitFor('web-0');
      const created = await kubectl(['run', name, '-n', 'prod', '--image=nginx:1.27', '--restart=Never'], { kubeconfig: narrow });
      expect(created.code, created.stderr).toBe(0);
      const output = await watch.waitFor(name);
      expect(output).toMatch(new RegExp(`ADDED\\s+${name}`));
    } finally {
      watch.stop();
      await kubectl(['delete', 'pod', name, '-n', 'prod', '--wait=false'], { kubeconfig: admin });
    }
  });
});
