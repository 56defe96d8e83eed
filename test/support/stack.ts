// A local stack per test file, in-process, on a temp AIRLOCK_HOME and a free
// port; the CLI runs in-process too (same code as `npx airlock`), and kubectl
// runs for real with a kubeconfig from `airlock kubeconfig`.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import type { ClusterInfo } from '../cluster/harness.ts';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../local/stack.ts';
import { runCli } from '../../cli/airlock.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestAgent {
  id: string;
  name: string;
  secret: string;
  profileDir: string;
  kubeconfig(connection: string): Promise<string>;
  cli(args: string[]): Promise<CliResult>;
}

export interface TestStack {
  stack: LocalStack;
  dir: string;
  cli(args: string[]): Promise<CliResult>;
  createAgent(name: string): Promise<TestAgent>;
  createConnection(name: string, options: { cluster: ClusterInfo; policy: string; token?: string; server?: string }): Promise<void>;
  https(method: string, path: string, options?: { headers?: Record<string, string | string[]>; body?: string | Buffer }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;
  stop(): Promise<void>;
}

export async function startTestStack(options: LocalStackOptions = {}): Promise<TestStack> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-test-'));
  const stack = await startLocalStack({ home: join(dir, 'home'), port: 0, ...options });
  const caPem = readFileSync(stack.caFile, 'utf8');
  const globals = ['--endpoint', stack.url, '--home', stack.home];

  const cli = async (args: string[], extra: string[] = []): Promise<CliResult> => {
    let stdout = '';
    let stderr = '';
    const code = await runCli([...globals, ...extra, ...args], { out: (text) => (stdout += `${text}\n`), err: (text) => (stderr += `${text}\n`) });
    return { code, stdout, stderr };
  };

  const testStack: TestStack = {
    stack,
    dir,
    cli: (args) => cli(args),
    async createAgent(name) {
      const created = await cli(['--json', 'agents', 'create', name]);
      if (created.code !== 0) throw new Error(`agents create failed: ${created.stderr}`);
      const { id, secret } = JSON.parse(created.stdout) as { id: string; secret: string };
      const profileDir = join(dir, `profile-${name}`);
      const secretFile = join(dir, `${name}.secret`);
      writeFileSync(secretFile, secret, { mode: 0o600 });
      const agentCli = (args: string[]) => cli(args, ['--profile-dir', profileDir]);
      const login = await agentCli(['login', '--agent-id', id, '--secret-file', secretFile]);
      if (login.code !== 0) throw new Error(`login failed: ${login.stderr}`);
      return {
        id,
        name,
        secret,
        profileDir,
        cli: agentCli,
        async kubeconfig(connection) {
          const result = await agentCli(['kubeconfig', '--connection', connection]);
          if (result.code !== 0) throw new Error(`kubeconfig failed: ${result.stderr}`);
          const file = join(dir, `${name}-${connection}.kubeconfig`);
          writeFileSync(file, result.stdout, { mode: 0o600 });
          return file;
        },
      };
    },
    async createConnection(name, { cluster, policy, token, server }) {
      const policyFile = join(dir, `${name}.policy.yaml`);
      writeFileSync(policyFile, policy);
      const tokenFile = join(dir, `${name}.token`);
      writeFileSync(tokenFile, token ?? cluster.connectionToken, { mode: 0o600 });
      const result = await cli(['connections', 'create', name, '--server', server ?? cluster.server, '--ca-file', cluster.caFile, '--token-file', tokenFile, '--policy', policyFile]);
      if (result.code !== 0) throw new Error(`connections create failed: ${result.stderr}`);
    },
    https(method, path, { headers = {}, body } = {}) {
      return new Promise((resolve, reject) => {
        const req = request(new URL(path, stack.url), { method, ca: caPem, headers }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    },
    stop: () => stack.stop(),
  };
  return testStack;
}

/** A policy that lets agents do everything in prod but touch secrets. */
export const PROD_POLICY = `
maxWindow: 1h
windowApproval: none
rules:
  - effect: deny
    resources: [secrets]
  - effect: allow
    namespaces: [prod]
`;
