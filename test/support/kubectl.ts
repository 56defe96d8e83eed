// Runs the machine's real kubectl. Every e2e test goes through here.
import { spawn, type ChildProcess } from 'node:child_process';
import { kubectlBinary } from '../cluster/harness.ts';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  kubeconfig: string;
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export function kubectl(args: string[], options: KubectlOptions): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(kubectlBinary(), ['--kubeconfig', options.kubeconfig, ...args], {
      env: { ...process.env, ...options.env, KUBECONFIG: options.kubeconfig },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

export interface StreamingKubectl {
  child: ChildProcess;
  /** Resolves with everything printed so far once stdout contains `text`. */
  waitFor(text: string, timeoutMs?: number): Promise<string>;
  output(): string;
  /** Everything printed to stderr so far. */
  errors(): string;
  stop(): void;
}

/** Starts a long-running kubectl (e.g. `get -w`) and lets the test wait for lines. */
export function kubectlStream(args: string[], options: KubectlOptions): StreamingKubectl {
  const child = spawn(kubectlBinary(), ['--kubeconfig', options.kubeconfig, ...args], {
    env: { ...process.env, ...options.env, KUBECONFIG: options.kubeconfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: { text: string; resolve: (s: string) => void }[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const waiter of waiters.splice(0)) {
      if (stdout.includes(waiter.text)) waiter.resolve(stdout);
      else waiters.push(waiter);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return {
    child,
    output: () => stdout,
    errors: () => stderr,
    waitFor(text, timeoutMs = 20_000) {
      if (stdout.includes(text)) return Promise.resolve(stdout);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`kubectl ${args.join(' ')}: no "${text}" after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`)), timeoutMs);
        waiters.push({
          text,
          resolve: (s) => {
            clearTimeout(timer);
            resolve(s);
          },
        });
      });
    },
    stop() {
      child.kill('SIGTERM');
    },
  };
}
