// `npm run demo` end to end: the script brings everything up in one command, prints the kubectl
// lines a person pastes, prints the approval page of a held delete, and Ctrl-C stops everything
// (the local stack, its own test cluster, its temporary home) with exit code 0.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { isAlive, type ClusterState } from '../cluster/harness.ts';
import { kubectl } from '../support/kubectl.ts';

const cluster = inject('cluster');
const repo = join(import.meta.dirname, '..', '..');

describe.skipIf(!cluster)('npm run demo', () => {
  let demo: ChildProcess | undefined;
  let stdout = '';
  let stderr = '';
  const waitFor = async (pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(stdout);
      if (match) return match;
      if (Date.now() > deadline || demo?.exitCode !== null) throw new Error(`no ${pattern} in the demo's output\nstdout: ${stdout}\nstderr: ${stderr}`);
      await new Promise((done) => setTimeout(done, 200));
    }
  };
  afterAll(() => {
    if (demo?.exitCode === null) demo.kill('SIGKILL');
  });

  it('prints the kubectl lines, which work; a held delete prints its approval page; Ctrl-C stops everything', async () => {
    // The script npm runs ("demo": "node scripts/demo.ts"), started directly so the signal reaches it.
    demo = spawn(process.execPath, [join(repo, 'scripts', 'demo.ts')], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AIRLOCK_PORT: '0' } });
    demo.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    demo.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));

    const get = await waitFor(/^KUBECONFIG=(\S+) kubectl get pods -n prod\b/m, 120_000);
    const kubeconfig = get[1]!;
    const home = join(kubeconfig, '..');
    expect(stdout).toMatch(new RegExp(`^KUBECONFIG=${kubeconfig} kubectl delete configmap app-config -n prod\\b`, 'm'));
    const state = JSON.parse(readFileSync(join(home, 'test-cluster', 'state.json'), 'utf8')) as ClusterState;
    const adminKubeconfig = join(home, 'test-cluster', 'admin.kubeconfig');

    const pods = await kubectl(['get', 'pods', '-n', 'prod', '-o', 'name'], { kubeconfig });
    expect(pods.code, pods.stderr).toBe(0);
    expect(pods.stdout).toContain('pod/web-0');

    const held = await kubectl(['delete', 'configmap', 'app-config', '-n', 'prod'], { kubeconfig });
    expect(held.code).not.toBe(0);
    const approvalId = /(apr_[A-Za-z0-9_-]+)/.exec(held.stderr)?.[1];
    expect(approvalId, held.stderr).toBeDefined();
    await waitFor(new RegExp(`^approval page for ${approvalId} \\(as oncall@example.com\\): https://127\\.0\\.0\\.1:\\d+/approvals/${approvalId}\\?sig=\\S+$`, 'm'), 15_000);
    const still = await kubectl(['get', 'configmap', 'app-config', '-n', 'prod', '-o', 'name'], { kubeconfig: adminKubeconfig });
    expect(still.stdout.trim()).toBe('configmap/app-config');

    const exited = new Promise<number | null>((done) => demo!.once('exit', (code) => done(code)));
    demo.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stderr).toContain('[demo] stopped');
    expect(isAlive(state.pids.apiserver)).toBe(false);
    expect(isAlive(state.pids.etcd)).toBe(false);
    expect(existsSync(home)).toBe(false);
  }, 180_000);
});
