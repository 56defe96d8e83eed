// A local stack per test file, in-process, on a temp AIRLOCK_HOME and a free
// port; the CLI runs in-process too (same code as `npx airlock`), and kubectl
// runs for real with a kubeconfig from `airlock kubeconfig`.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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
  /** `input`: what the command reads as its standard input (`airlock exec -i`). */
  cli(args: string[], input?: string): Promise<CliResult>;
}

export interface TestStack {
  stack: LocalStack;
  dir: string;
  cli(args: string[]): Promise<CliResult>;
  createAgent(name: string): Promise<TestAgent>;
  createConnection(name: string, options: { cluster: ClusterInfo; policy: string; token?: string; server?: string }): Promise<void>;
  https(
    method: string,
    path: string,
    options?: { headers?: Record<string, string | string[]>; body?: string | Buffer },
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;
  /** The link emailed to `approver` for `approvalId` (waits for the outbox). */
  approvalLink(approvalId: string, approver: string): Promise<string>;
  /** Opens the link (GET) and submits the form with `decision` (POST), as a browser would. */
  decide(link: string, decision: 'approve' | 'deny'): Promise<{ status: number; body: string }>;
  stop(): Promise<void>;
}

/** Pulls the one-line status message out of an approval page. */
export function pageStatus(html: string): string {
  return /<p class="status">([\s\S]*?)<\/p>/.exec(html)?.[1]?.replace(/<[^>]+>/g, '') ?? '';
}

/** `dir` reuses an earlier stack's directory (its AIRLOCK_HOME and agent profiles): a restart. */
export async function startTestStack(options: LocalStackOptions = {}, dir = mkdtempSync(join(tmpdir(), 'airlock-test-'))): Promise<TestStack> {
  const stack = await startLocalStack({ home: join(dir, 'home'), port: 0, log: () => undefined, ...options });
  const caPem = readFileSync(stack.caFile, 'utf8');
  const globals = ['--endpoint', stack.url, '--home', stack.home];

  const cli = async (args: string[], extra: string[] = [], input?: string): Promise<CliResult> => {
    let stdout = '';
    let stderr = '';
    const code = await runCli([...globals, ...extra, ...args], {
      out: (text) => (stdout += `${text}\n`),
      err: (text) => (stderr += `${text}\n`),
      write: (stream, text) => (stream === 'stdout' ? (stdout += text) : (stderr += text)),
      input: async () => input ?? '',
    });
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
      const agentCli = (args: string[], input?: string) => cli(args, ['--profile-dir', profileDir], input);
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
        // Raw path on purpose: URL() would normalize '..', '%2e%2e' and '.' away before they reach the server.
        const { hostname, port } = new URL(stack.url);
        // agent: false — a new connection each time: a pooled socket the server closed while this process was
        // busy in synchronous work (say, an npm install) would be reused once and fail with ECONNRESET.
        const req = request({ hostname, port, path, method, ca: caPem, headers, agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    },
    async approvalLink(approvalId, approver) {
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        await stack.mail.poll();
        const file = readdirSync(stack.outboxDir).find((name) => name.includes(approvalId) && name.endsWith(`-${approver}.eml`));
        if (file) {
          const link = /https:\/\/\S+\/approvals\/\S+/.exec(readFileSync(join(stack.outboxDir, file), 'utf8'))?.[0];
          if (link) return link;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`no email for ${approvalId} to ${approver} in ${stack.outboxDir}`);
    },
    async decide(link, decision) {
      const url = new URL(link);
      const page = await testStack.https('GET', url.pathname + url.search);
      const form = /name="form" value="([^"]+)"/.exec(page.body)?.[1];
      if (!form) return { status: page.status, body: page.body };
      const body = new URLSearchParams({ sig: url.searchParams.get('sig')!, form, decision }).toString();
      return testStack.https('POST', url.pathname, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
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

/** The contract's example policy with windows open at once (examples/policy.yaml). */
export const EXAMPLE_POLICY = readFileSync(new URL('../../examples/policy.yaml', import.meta.url), 'utf8');

/** The contract's example policy, windows needing approval (examples/policy-approval.yaml). */
export const APPROVAL_POLICY = readFileSync(new URL('../../examples/policy-approval.yaml', import.meta.url), 'utf8');
