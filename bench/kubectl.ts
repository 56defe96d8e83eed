// What an agent waits for: `kubectl get pods -n prod` as a whole process,
// directly against the test kube-apiserver (the connection's own token) and
// through Airlock (the agent's kubeconfig from `airlock kubeconfig`, whose exec
// plugin is `airlock token`), in turn, N runs each; wall and CPU (kubectl and
// its plugin, from the rusage of the waited process) medians and their ratios.
// Also: how many times kubectl ran the plugin per command, and how long one
// `airlock token` takes with a cached token (as kubeconfigs run it: the sh fast path,
// cli/airlock-token.sh; and the Node entry alone) and when it must ask.
//
//   npm run bench -- kubectl [--runs 15]
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml, stringify } from 'yaml';
import { down, kubectlBinary, up } from '../test/cluster/harness.ts';
import { agentProfile, agentToken, createConnection, READ_PROD_POLICY, startStackProcess, stopStack } from './support.ts';

interface Run {
  wallMs: number;
  cpuMs: number;
  code: number;
  stderr: string;
}

/** Runs a command under /usr/bin/time (its CPU includes every child it waited for: kubectl's plugin). */
function timed(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'cpu %U %S', command, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - started;
      const match = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(stderr);
      resolve({ wallMs, cpuMs: match ? (Number(match[1]) + Number(match[2])) * 1000 : NaN, code: code ?? -1, stderr: stderr.replace(/cpu [\d.]+ [\d.]+\s*$/, '') });
    });
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

interface ExecUser {
  exec: { command: string; args: string[]; env?: { name: string; value: string }[] };
}

export async function runKubectlBench(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { runs: { type: 'string', default: '15' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    console.error('usage: npm run bench -- kubectl [--runs 15]');
    return 2;
  }
  const cluster = await up({ ownerPid: process.pid });
  const stack = await startStackProcess();
  const work = mkdtempSync(join(tmpdir(), 'airlock-bench-kubectl-'));
  try {
    await createConnection(stack, cluster.info, 'bench', READ_PROD_POLICY);
    await agentToken(stack, 'bench', 'kubectl-agent');
    const issued = await stack.cli([...agentProfile(stack, 'kubectl-agent'), 'kubeconfig', '--connection', 'bench']);
    if (issued.code) throw new Error(issued.stderr);
    const airlockConfig = join(work, 'airlock.kubeconfig');
    writeFileSync(airlockConfig, issued.stdout, { mode: 0o600 });

    // Direct: the same server, CA and the connection's own token (what Airlock forwards with).
    const directConfig = join(work, 'direct.kubeconfig');
    writeFileSync(
      directConfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'direct', cluster: { server: cluster.info.server, 'certificate-authority': cluster.info.caFile } }],
        users: [{ name: 'direct', user: { token: cluster.info.connectionToken } }],
        contexts: [{ name: 'direct', context: { cluster: 'direct', user: 'direct' } }],
        'current-context': 'direct',
      }),
      { mode: 0o600 },
    );

    // A copy whose plugin counts its runs (a shell wrapper around the same command).
    const config = parseYaml(issued.stdout) as { users: { user: ExecUser }[] };
    const exec = config.users[0]!.user.exec;
    const counter = join(work, 'plugin-runs');
    const wrapper = join(work, 'counting-plugin.sh');
    writeFileSync(wrapper, `#!/bin/sh\necho run >> '${counter}'\nexec "$@"\n`);
    chmodSync(wrapper, 0o755);
    config.users[0]!.user.exec = { ...exec, command: wrapper, args: [exec.command, ...exec.args] };
    const countingConfig = join(work, 'counting.kubeconfig');
    writeFileSync(countingConfig, stringify(config), { mode: 0o600 });

    const kubectlArgs = (kubeconfig: string) => ['--kubeconfig', kubeconfig, '--cache-dir', join(work, 'kube-cache'), 'get', 'pods', '-n', 'prod'];
    // Warm: discovery cached for both servers, the compile cache written, a token cached.
    for (const kubeconfig of [directConfig, airlockConfig, directConfig, airlockConfig]) {
      const run = await timed(kubectlBinary(), kubectlArgs(kubeconfig));
      if (run.code) throw new Error(`kubectl failed (${kubeconfig}): ${run.stderr}`);
    }
    writeFileSync(counter, '');
    const counted = await timed(kubectlBinary(), kubectlArgs(countingConfig));
    if (counted.code) throw new Error(`kubectl failed: ${counted.stderr}`);
    const pluginRuns = readFileSync(counter, 'utf8').split('\n').filter(Boolean).length;
    // The same count for a trivial plugin (a shell script printing the connection's token) straight
    // against the API server: how often kubectl itself runs an exec plugin, Airlock or not.
    const trivialPlugin = join(work, 'trivial-plugin.sh');
    const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: cluster.info.connectionToken } });
    writeFileSync(trivialPlugin, `#!/bin/sh\necho run >> '${counter}'\ncat <<'EOF'\n${credential}\nEOF\n`, { mode: 0o700 });
    const trivialConfig = join(work, 'trivial.kubeconfig');
    writeFileSync(
      trivialConfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'direct', cluster: { server: cluster.info.server, 'certificate-authority': cluster.info.caFile } }],
        users: [{ name: 'direct', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: trivialPlugin, interactiveMode: 'Never' } } }],
        contexts: [{ name: 'direct', context: { cluster: 'direct', user: 'direct' } }],
        'current-context': 'direct',
      }),
      { mode: 0o600 },
    );
    writeFileSync(counter, '');
    const trivial = await timed(kubectlBinary(), kubectlArgs(trivialConfig));
    if (trivial.code) throw new Error(`kubectl failed: ${trivial.stderr}`);
    const trivialRuns = readFileSync(counter, 'utf8').split('\n').filter(Boolean).length;

    const direct: Run[] = [];
    const airlock: Run[] = [];
    for (let i = 0; i < runs; i++) {
      direct.push(await timed(kubectlBinary(), kubectlArgs(directConfig)));
      airlock.push(await timed(kubectlBinary(), kubectlArgs(airlockConfig)));
    }
    const failed = [...direct, ...airlock].filter((run) => run.code !== 0);
    if (failed.length) throw new Error(`${failed.length} kubectl runs failed: ${failed[0]!.stderr}`);

    // `airlock token` alone, as kubectl runs it: with the token cached, and when it must ask.
    const pluginEnv = Object.fromEntries((exec.env ?? []).map(({ name, value }) => [name, value]));
    // Where there is a /bin/sh the kubeconfig runs cli/airlock-token.sh, which prints a cached token
    // without Node and otherwise runs the Node entry (the arguments after its own three).
    const nodeEntry = exec.command === '/bin/sh' ? { command: exec.args[3]!, args: exec.args.slice(4) } : undefined;
    const hit: Run[] = [];
    const nodeHit: Run[] = [];
    const miss: Run[] = [];
    const tokensDir = join(stack.dir, 'profile-kubectl-agent', 'tokens');
    for (let i = 0; i < runs; i++) {
      hit.push(await timed(exec.command, exec.args, pluginEnv));
      if (nodeEntry) nodeHit.push(await timed(nodeEntry.command, nodeEntry.args, pluginEnv));
      rmSync(tokensDir, { recursive: true, force: true });
      miss.push(await timed(exec.command, exec.args, pluginEnv));
    }

    const row = (name: string, list: Run[]) =>
      `${name.padEnd(42)} ${median(list.map((run) => run.wallMs))
        .toFixed(0)
        .padStart(6)} ms wall ${median(list.map((run) => run.cpuMs))
        .toFixed(0)
        .padStart(6)} ms CPU`;
    console.log(`kubectl get pods -n prod as a whole process — ${runs} runs each, in turn; medians (machine shared: walls are noisy, CPU less so)`);
    console.log(row('direct', direct));
    console.log(row('through Airlock', airlock));
    const wallRatio = median(airlock.map((run) => run.wallMs)) / median(direct.map((run) => run.wallMs));
    const cpuRatio = median(airlock.map((run) => run.cpuMs)) / median(direct.map((run) => run.cpuMs));
    console.log(`ratio through Airlock / direct: wall ${wallRatio.toFixed(2)}×, CPU ${cpuRatio.toFixed(2)}× (target ≤ 1.3× wall)`);
    console.log(
      `plugin runs per kubectl command: ${pluginRuns} (a trivial shell plugin straight against the API server: ${trivialRuns} — kubectl's own; every run after the first is a token-cache hit)`,
    );
    console.log(row(`airlock token, token cached${nodeEntry ? ' (sh)' : ''}`, hit), '(target ≤ 100 ms)');
    if (nodeEntry) console.log(row('airlock token, token cached, Node entry', nodeHit), '(where there is no /bin/sh)');
    console.log(row('airlock token, asks the gateway', miss), '(target ≤ 200 ms)');
    return 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
    await stopStack(stack);
    if (cluster.started) await down({ quiet: true });
  }
}
