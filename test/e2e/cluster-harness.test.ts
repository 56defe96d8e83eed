// Proof that the harness is a real cluster: real kubectl, real RBAC, real watch, and pods that run
// (controllers, scheduler, kwok nodes serving the kubelet API).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it, beforeAll } from 'vitest';
import { connect } from 'node:net';
import { KUBERNETES_VERSION, KWOK_NODES, kubeconfig } from '../cluster/harness.ts';
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

  it('reports its real version (the binaries are stamped with it)', async () => {
    const version = await kubectl(['version', '-o', 'json'], { kubeconfig: admin });
    expect(version.code, version.stderr).toBe(0);
    expect((JSON.parse(version.stdout) as { serverVersion: { gitVersion: string } }).serverVersion.gitVersion).toBe(KUBERNETES_VERSION);
  });

  it('runs pods: kwok nodes are Ready, the scheduler places pods, and they become Running', async () => {
    const nodes = await kubectl(['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{" "}{end}'], { kubeconfig: admin });
    expect(nodes.stdout.trim().split(' ').sort()).toEqual(KWOK_NODES.map((node) => `${node}=True`));
    const pod = await kubectl(['get', 'pod', 'web-0', '-n', 'prod', '-o', 'jsonpath={.spec.nodeName} {.status.phase}'], { kubeconfig: admin });
    expect(pod.stdout).toMatch(/^kwok-node-\d Running$/);
  });

  it('serves pods/exec (a local process) and pods/portforward (an echo) through the API server, for the narrow credential too', async () => {
    const exec = await kubectl(['exec', 'web-0', '-n', 'prod', '--', 'sh', '-c', 'echo out-$((6*7)); echo err >&2; exit 3'], { kubeconfig: narrow });
    expect(exec.stdout).toBe('out-42\n');
    expect(exec.stderr).toContain('err');
    expect(exec.code).toBe(3);
    const forward = kubectlStream(['port-forward', 'pod/web-0', '-n', 'prod', ':80'], { kubeconfig: admin });
    try {
      const started = await forward.waitFor('Forwarding from 127.0.0.1:');
      const port = Number(/Forwarding from 127\.0\.0\.1:(\d+)/.exec(started)?.[1]);
      const echoed = await new Promise<string>((resolveEcho, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.write('ping through the kubelet API\n'));
        socket.setEncoding('utf8').once('data', (data: string) => {
          socket.destroy();
          resolveEcho(data);
        });
        socket.once('error', reject);
      });
      expect(echoed).toBe('ping through the kubelet API\n');
    } finally {
      forward.stop();
    }
  });

  it('collects garbage and deletes namespaces (controller-manager)', async () => {
    const namespace = `harness-ns-${Date.now()}`;
    expect((await kubectl(['create', 'namespace', namespace], { kubeconfig: admin })).code).toBe(0);
    // kube-controller-manager gives every namespace its default account and the cluster CA bundle.
    await expect
      .poll(async () => (await kubectl(['get', 'serviceaccount/default', 'configmap/kube-root-ca.crt', '-n', namespace, '-o', 'name'], { kubeconfig: admin })).stdout.trim().split('\n'), {
        timeout: 30_000,
      })
      .toEqual(['serviceaccount/default', 'configmap/kube-root-ca.crt']);
    const created = await kubectl(['create', 'deployment', 'gc', '-n', namespace, '--image=nginx:1.27', '--replicas=2'], { kubeconfig: admin });
    expect(created.code, created.stderr).toBe(0);
    expect((await kubectl(['rollout', 'status', 'deployment/gc', '-n', namespace, '--timeout=90s'], { kubeconfig: admin })).code).toBe(0);
    expect((await kubectl(['delete', 'deployment', 'gc', '-n', namespace], { kubeconfig: admin })).code).toBe(0);
    await expect.poll(async () => (await kubectl(['get', 'replicasets,pods', '-n', namespace, '-o', 'name'], { kubeconfig: admin })).stdout.trim(), { timeout: 60_000 }).toBe('');
    const deleted = await kubectl(['delete', 'namespace', namespace, '--timeout=90s'], { kubeconfig: admin, timeoutMs: 100_000 });
    expect(deleted.code, deleted.stderr).toBe(0);
    const gone = await kubectl(['get', 'namespace', namespace], { kubeconfig: admin });
    expect(gone.stderr).toContain('NotFound');
  });
});
