// Shared pieces for benchmarks: a local stack in its own process, the
// in-process CLI against it, an HTTPS client with keep-alive, statistics.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../cli/airlock.ts';
import type { StageReport } from '../local/stage-timing.ts';
import type { ClusterInfo } from '../test/cluster/harness.ts';

export interface StackProcess {
  url: string;
  home: string;
  dir: string;
  endpoints: { dynamodb: string; s3: string };
  child: ChildProcess;
  /** Per-stage timing in the stack's process (local/stage-timing.ts): reset before a case, report after it. */
  stages: { reset(withCpu?: boolean): Promise<void>; report(): Promise<StageReport & { emulatorCpuMs?: number }> };
  cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

export async function startStackProcess(): Promise<StackProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-bench-'));
  const home = join(dir, 'home');
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  // The emulators in their own process: the stack's CPU is then Airlock's alone.
  const child = spawn(process.execPath, [...profile, 'local/main.ts'], {
    env: { ...process.env, AIRLOCK_HOME: home, AIRLOCK_PORT: '0', POWERTOOLS_LOG_LEVEL: 'ERROR', AIRLOCK_EMULATORS: process.env.AIRLOCK_EMULATORS ?? 'process', AIRLOCK_STAGE_TIMING: '1' },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const deadline = Date.now() + 30_000;
  while (!output.includes('Next:')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`local stack did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const url = /listening on (\S+)/.exec(output)![1]!;
  const emulators = /DynamoDB (\S+), S3\/SNS (\S+)/.exec(output)!;
  const cli = async (args: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(['--endpoint', url, '--home', home, '--profile-dir', join(dir, 'profile'), ...args], {
      out: (text) => (stdout += `${text}\n`),
      err: (text) => (stderr += `${text}\n`),
    });
    return { code, stdout, stderr };
  };
  const ask = <T>(message: string, key: string) =>
    new Promise<T>((resolve) => {
      const answer = (reply: Record<string, unknown>) => {
        if (!(key in reply)) return;
        child.off('message', answer);
        resolve(reply[key] as T);
      };
      child.on('message', answer);
      child.send(message);
    });
  return {
    url,
    home,
    dir,
    endpoints: { dynamodb: emulators[1]!, s3: emulators[2]! },
    child,
    stages: { reset: (withCpu = false) => ask<void>(withCpu ? 'stage-reset-cpu' : 'stage-reset', 'stageReset'), report: () => ask('stage-report', 'stageReport') },
    cli,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The policy the proxy and kubectl benches use: reads in prod, windows without approval. */
export const READ_PROD_POLICY = 'windowApproval: none\nrules:\n  - effect: allow\n    verbs: [get, list, watch]\n    namespaces: [prod]\n';

/** Creates connection `name` to the test cluster, with `policy` (YAML). */
export async function createConnection(stack: StackProcess, cluster: ClusterInfo, name: string, policy: string): Promise<void> {
  const file = join(stack.dir, `${name}-policy.yaml`);
  writeFileSync(file, policy);
  const created = await stack.cli(['connections', 'create', name, '--server', cluster.server, '--ca-file', cluster.caFile, '--token-file', cluster.connectionTokenFile, '--policy', file]);
  if (created.code) throw new Error(created.stderr);
}

/** Creates an agent, logs it in, opens a window and returns a token for the connection. */
export async function agentToken(stack: StackProcess, connection: string, name: string): Promise<string> {
  const created = await stack.cli(['--json', 'agents', 'create', name]);
  if (created.code) throw new Error(created.stderr);
  const { id, secret } = JSON.parse(created.stdout) as { id: string; secret: string };
  const secretFile = join(stack.dir, `${name}.secret`);
  writeFileSync(secretFile, secret, { mode: 0o600 });
  const login = await stack.cli([...agentProfile(stack, name), 'login', '--agent-id', id, '--secret-file', secretFile]);
  if (login.code) throw new Error(login.stderr);
  return windowToken(stack, connection, name);
}

/** The CLI options that act as an agent logged in by agentToken(). */
export function agentProfile(stack: StackProcess, name: string): string[] {
  return ['--profile-dir', join(stack.dir, `profile-${name}`)];
}

/** For an agent agentToken() has logged in: opens a window on another connection and returns a token for it. */
export async function windowToken(stack: StackProcess, connection: string, name: string): Promise<string> {
  const profile = agentProfile(stack, name);
  const window = await stack.cli([...profile, 'access', 'request', '--connection', connection, '--duration', '1h', '--reason', 'benchmark']);
  if (window.code) throw new Error(window.stderr);
  const token = await stack.cli([...profile, 'token', '--connection', connection]);
  if (token.code) throw new Error(token.stderr);
  return (JSON.parse(token.stdout) as { status: { token: string } }).status.token;
}

/** Stops the stack process within `ms` (SIGKILL after that), also when it has already exited. */
export async function stopStack(stack: StackProcess, ms = 15_000): Promise<void> {
  const { child } = stack;
  if (child.exitCode !== null || child.signalCode !== null) return;
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([stack.stop().then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  clearTimeout(timer);
  if (!stopped && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

export interface Target {
  base: string;
  ca: string;
  token: string;
}

export function httpsClient(target: Target, maxSockets = 32) {
  const agent = new Agent({ keepAlive: true, maxSockets, ca: target.ca });
  const base = new URL(target.base);
  return {
    /** Resolves with status and elapsed milliseconds once the whole body has arrived. */
    get(path: string): Promise<{ status: number; ms: number }> {
      const started = process.hrtime.bigint();
      return new Promise((resolve, reject) => {
        const req = request(
          { hostname: base.hostname, port: base.port, path: `${base.pathname.replace(/\/$/, '')}${path}`, agent, headers: { authorization: `Bearer ${target.token}`, accept: 'application/json' } },
          (res) => {
            res.on('data', () => undefined);
            res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    },
    close: () => agent.destroy(),
  };
}

export interface Sent {
  status: number;
  ms: number;
  /** The x-airlock-request-id response header (every /k8s response carries one). */
  requestId?: string;
}

/**
 * A keep-alive HTTPS client for any URL and token on one pool of `maxSockets`
 * (one agent's view: several connections, tokens that change). Each request
 * fails after `timeoutMs`; close() ends every socket.
 */
export function keepAliveClient(ca: string, maxSockets = 4, timeoutMs = 30_000) {
  const agent = new Agent({ keepAlive: true, maxSockets, ca });
  return {
    /** Resolves with status, elapsed milliseconds and request id once the whole body has arrived. */
    get(url: string, token: string): Promise<Sent> {
      const target = new URL(url);
      const started = process.hrtime.bigint();
      return new Promise((resolve, reject) => {
        const req = request(
          {
            hostname: target.hostname,
            port: target.port,
            path: `${target.pathname}${target.search}`,
            agent,
            timeout: timeoutMs,
            headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
          },
          (res) => {
            const requestId = res.headers['x-airlock-request-id'];
            res.on('data', () => undefined);
            res.on('error', reject);
            res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Number(process.hrtime.bigint() - started) / 1e6, ...(typeof requestId === 'string' ? { requestId } : {}) }));
          },
        );
        req.on('timeout', () => req.destroy(new Error(`no response within ${timeoutMs} ms: ${target.pathname}`)));
        req.on('error', reject);
        req.end();
      });
    },
    close: () => agent.destroy(),
  };
}

export interface Stats {
  count: number;
  p50: number;
  p99: number;
  rps: number;
}

export function stats(samples: number[], wallMs: number): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { count: samples.length, p50: at(0.5), p99: at(0.99), rps: (samples.length / wallMs) * 1000 };
}

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}
