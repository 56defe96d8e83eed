// `npm run package-cli` builds a package an agent's host installs: the test installs the tarball
// with `npm install -g --prefix <tmp>` outside the repository and drives login, access request,
// kubeconfig and real kubectl through the installed `airlock` bin, on the project's Node.js 24
// (first on PATH, as on an agent host that has Node 24), against the local stack and the real
// API server; the cluster is checked directly with the admin kubeconfig.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { kubectl } from '../support/kubectl.ts';
import { EXAMPLE_POLICY, startTestStack, type CliResult, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');
const repo = join(import.meta.dirname, '..', '..');

describe.skipIf(!cluster)('the packaged CLI, installed outside the repository', () => {
  let env: TestStack;
  let work: string;
  let tarball: string;
  let bin: string;
  let agentKubeconfig: string;
  /** PATH with the project's Node.js 24 first (the machine's own Node may be older). */
  const path = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
  const installed = (args: string[]): Promise<CliResult> =>
    new Promise((resolve, reject) => {
      const child = spawn(bin, ['--endpoint', env.stack.url, '--endpoint-ca', env.stack.caFile, '--profile-dir', join(work, 'profiles'), ...args], {
        cwd: work,
        env: { ...process.env, PATH: path, HOME: work, AIRLOCK_HOME: join(work, 'no-home') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'airlock-cli-package-'));
    const built = execFileSync(process.execPath, [join(repo, 'scripts', 'package-cli.ts')], { cwd: repo, encoding: 'utf8', env: { ...process.env, PATH: path } });
    tarball = built.trim().split('\n').at(-1)!;
    execFileSync('npm', ['install', '-g', '--no-audit', '--no-fund', '--prefix', join(work, 'prefix'), tarball], { cwd: work, env: { ...process.env, PATH: path }, stdio: 'ignore' });
    bin = join(work, 'prefix', 'bin', 'airlock');
    env = await startTestStack();
    await env.createConnection('packaged', { cluster: cluster!, policy: EXAMPLE_POLICY });
  }, 180_000);
  afterAll(async () => {
    await env?.stop();
  });

  it('is one bundled file with no runtime dependencies and no TypeScript', () => {
    expect(tarball).toMatch(/airlock-cli-.+\.tgz$/);
    const manifest = JSON.parse(readFileSync(join(work, 'prefix', 'lib', 'node_modules', 'airlock-cli', 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest.bin).toEqual({ airlock: 'airlock.mjs' });
    expect(manifest.engines).toEqual({ node: '>=24' });
    expect(manifest.dependencies).toBeUndefined();
    expect(realpathSync(bin)).toBe(join(work, 'prefix', 'lib', 'node_modules', 'airlock-cli', 'airlock.mjs'));
    const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
    expect(listing).not.toMatch(/\.ts$/m);
  });

  it('logs in, opens a window, writes a kubeconfig, and kubectl reaches the cluster through it', async () => {
    const created = await env.cli(['--json', 'agents', 'create', 'packaged-agent']);
    expect(created.code, created.stderr).toBe(0);
    const { id, secret } = JSON.parse(created.stdout) as { id: string; secret: string };
    const secretFile = join(work, 'agent.key');
    writeFileSync(secretFile, secret, { mode: 0o600 });

    const login = await installed(['login', '--agent-id', id, '--secret-file', secretFile]);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain(`logged in as ${id}`);
    const window = await installed(['access', 'request', '--connection', 'packaged', '--duration', '10m', '--reason', 'packaged CLI e2e']);
    expect(window.code, window.stderr).toBe(0);
    expect(window.stdout).toMatch(/: active until /);
    const issued = await installed(['kubeconfig', '--connection', 'packaged']);
    expect(issued.code, issued.stderr).toBe(0);
    agentKubeconfig = join(work, 'agent.kubeconfig');
    writeFileSync(agentKubeconfig, issued.stdout, { mode: 0o600 });

    // The exec plugin runs the installed bundle on the Node.js that ran the CLI: nothing else from the repo
    // (here that Node.js is the project's own, in the repo's node_modules, as the machine's is older).
    const exec = (parseYaml(issued.stdout) as { users: { user: { exec: { command: string; args: string[] } } }[] }).users[0]!.user.exec;
    // The package's sh fast path (cli/airlock-token.sh): a cached token without starting Node; else, with the same
    // arguments, its token entry beside the bin (cli/airlock-token.ts), which answers from the cache without loading the CLI.
    const installedDir = dirname(realpathSync(bin));
    expect(exec.command).toBe('/bin/sh');
    expect(exec.args[0]).toBe(join(installedDir, 'airlock-token.sh'));
    expect(exec.args.slice(3, 5)).toEqual([process.execPath, join(installedDir, 'airlock-token.mjs')]);
    expect(issued.stdout.replaceAll(process.execPath, '<node>')).not.toContain(repo);

    const pods = await kubectl(['get', 'pods', '-n', 'prod', '-o', 'name'], { kubeconfig: agentKubeconfig, env: { PATH: path } });
    expect(pods.code, pods.stderr).toBe(0);
    expect(pods.stdout).toContain('pod/web-0');
    // kubectl's first plugin run cached a token: the packaged script prints it now with no Node to fall back to.
    const fast = spawnSync(
      exec.command,
      exec.args.map((arg) => (arg === process.execPath ? join(work, 'no-such-node') : arg)),
      { encoding: 'utf8' },
    );
    expect(fast.status).toBe(0);
    expect((JSON.parse(fast.stdout) as { kind: string }).kind).toBe('ExecCredential');

    // A delete is held for approval (the example policy) and the cluster still has the object.
    const held = await kubectl(['delete', 'configmap', 'app-config', '-n', 'prod'], { kubeconfig: agentKubeconfig, env: { PATH: path } });
    expect(held.code).not.toBe(0);
    expect(held.stderr).toMatch(/approval/i);
    const still = await kubectl(['get', 'configmap', 'app-config', '-n', 'prod', '-o', 'name'], { kubeconfig: cluster!.adminKubeconfig });
    expect(still.stdout.trim()).toBe('configmap/app-config');

    // Secrets stay denied through the installed CLI too.
    const secrets = await kubectl(['get', 'secrets', '-n', 'prod'], { kubeconfig: agentKubeconfig, env: { PATH: path } });
    expect(secrets.code).not.toBe(0);
    expect(secrets.stderr).toMatch(/Forbidden/);

    // Every request went through Airlock and is on record for this agent.
    const listed = await env.cli(['--json', 'audit', 'list', '--agent', 'packaged-agent', '--all']);
    expect(listed.code, listed.stderr).toBe(0);
    const items = (JSON.parse(listed.stdout) as { items: { verb: string; resource?: string }[] }).items;
    expect(items.some((item) => item.verb === 'list' && item.resource === 'pods')).toBe(true);
    expect(items.some((item) => item.verb === 'delete' && item.resource === 'configmaps')).toBe(true);
  });
});
