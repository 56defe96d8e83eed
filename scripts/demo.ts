// `npm run demo`: the whole thing working, in one command. Brings up the test cluster (a real
// kube-apiserver; built from the Go module proxy the first time, with progress), the local stack,
// a connection with the example approval policy (examples/policy-approval.yaml), an agent logged in
// with its own profile, and a window — which that policy holds for a human, so the demo approves it
// through the emailed link, as an approver's browser would. Then it prints the lines a person pastes,
// and the approval link of every request held from then on. Ctrl-C stops everything and removes the
// demo's temporary home.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../cli/airlock.ts';
import { down, up } from '../test/cluster/harness.ts';
import { startLocalStack, type LocalStack } from '../local/stack.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CONNECTION = 'demo';
const AGENT = 'demo-agent';
const APPROVER = 'oncall@example.com';

const home = mkdtempSync(join(tmpdir(), 'airlock-demo-'));
const say = (line: string) => process.stdout.write(`${line}\n`);
const step = (line: string) => process.stderr.write(`[demo] ${line}\n`);

let stack: LocalStack | undefined;
let clusterStarted = false;
let ready = false;
let stopping = false;

async function stop(signal: string, exitCode = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  step(`${signal}: stopping the local stack and the test cluster`);
  try {
    await stack?.stop();
    if (clusterStarted) await down({ home, quiet: true });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
  step('stopped');
  process.exit(exitCode);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));

/** The CLI in this process (the same code as `npx airlock`); fails the demo with its message. */
async function airlock(args: string[], options: { profile?: boolean } = {}): Promise<string> {
  let out = '';
  let err = '';
  const globals = ['--endpoint', stack!.url, '--endpoint-ca', stack!.caFile, '--home', stack!.home];
  const profile = options.profile ? ['--profile-dir', join(home, 'profile')] : [];
  const code = await runCli([...globals, ...profile, ...args], { out: (text) => (out += `${text}\n`), err: (text) => (err += `${text}\n`) });
  if (code !== 0 && code !== 3) throw new Error(`airlock ${args.join(' ')} failed (exit ${code}): ${err.trim()}`);
  return out;
}

function https(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(stack!.url);
  return new Promise((done, reject) => {
    const req = request({ hostname, port, path, method, ca: readFileSync(stack!.caFile, 'utf8'), headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => done({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The link emailed to the approver for `approvalId` (the local outbox). */
async function approvalLink(approvalId: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    await stack!.mail.poll();
    const file = readdirSync(stack!.outboxDir).find((name) => name.includes(approvalId) && name.endsWith(`-${APPROVER}.eml`));
    const link = file && /https:\/\/\S+\/approvals\/\S+/.exec(readFileSync(join(stack!.outboxDir, file), 'utf8'))?.[0];
    if (link) return link;
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(`no approval email for ${approvalId} in ${stack!.outboxDir}`);
}

/** Opens the approval page and presses "approve", as the approver's browser does. */
async function approve(link: string): Promise<void> {
  const url = new URL(link);
  const page = await https('GET', url.pathname + url.search);
  const form = /name="form" value="([^"]+)"/.exec(page.body)?.[1];
  if (!form) throw new Error(`the approval page had no form (HTTP ${page.status})`);
  const body = new URLSearchParams({ sig: url.searchParams.get('sig')!, form, decision: 'approve' }).toString();
  const decided = await https('POST', url.pathname, { 'content-type': 'application/x-www-form-urlencoded' }, body);
  if (decided.status !== 200) throw new Error(`approving the window failed (HTTP ${decided.status})`);
}

try {
  step(`temporary home ${home} (removed on Ctrl-C)`);
  step('starting the test cluster (the first run builds kube-apiserver and etcd from the Go module proxy: minutes)');
  const cluster = await up({ home, ownerPid: process.pid });
  clusterStarted = cluster.started;
  const { info } = cluster;

  step('starting the local stack');
  stack = await startLocalStack({
    home: join(home, 'stack'),
    port: Number(process.env.AIRLOCK_PORT ?? 0),
    // After set-up, the link of each held request is printed as it is emailed.
    log: (line) => {
      const emailed = /^\[airlock\] approval (\S+) -> (\S+): (https:\S+)/.exec(line);
      if (ready && emailed) say(`approval page for ${emailed[1]} (as ${emailed[2]}): ${emailed[3]}`);
    },
  });

  step(`connection "${CONNECTION}" with examples/policy-approval.yaml`);
  await airlock([
    'connections',
    'create',
    CONNECTION,
    '--server',
    info.server,
    '--ca-file',
    info.caFile,
    '--token-file',
    info.connectionTokenFile,
    '--policy',
    join(root, 'examples', 'policy-approval.yaml'),
  ]);

  step(`agent "${AGENT}", logged in with its own profile`);
  const { id, secret } = JSON.parse(await airlock(['--json', 'agents', 'create', AGENT])) as { id: string; secret: string };
  const secretFile = join(home, `${AGENT}.key`);
  writeFileSync(secretFile, secret, { mode: 0o600 });
  await airlock(['login', '--agent-id', id, '--secret-file', secretFile], { profile: true });

  step('a 1 h window; the policy needs a human for it, so the demo approves it through the emailed link');
  const window = JSON.parse(await airlock(['--json', 'access', 'request', '--connection', CONNECTION, '--duration', '1h', '--reason', 'npm run demo'], { profile: true })) as {
    id: string;
    status: string;
    approvalId?: string;
  };
  if (window.status === 'pending' && window.approvalId) await approve(await approvalLink(window.approvalId));
  for (let i = 0; i < 60; i++) {
    const status = JSON.parse(await airlock(['--json', 'access', 'status', window.id], { profile: true })) as { status: string };
    if (status.status === 'active') break;
    if (status.status !== 'pending') throw new Error(`window ${window.id} is ${status.status}`);
    await new Promise((done) => setTimeout(done, 500));
  }

  const kubeconfig = join(home, 'agent.kubeconfig');
  writeFileSync(kubeconfig, await airlock(['kubeconfig', '--connection', CONNECTION], { profile: true }), { mode: 0o600 });

  ready = true;
  say('');
  say(`Airlock demo is up: ${stack.url} in front of ${info.server}, window ${window.id} open for 1 h. Paste into another terminal:`);
  say('');
  say(`KUBECONFIG=${kubeconfig} kubectl get pods -n prod                          # allowed, recorded`);
  say(`KUBECONFIG=${kubeconfig} kubectl delete configmap app-config -n prod      # held for a one-time approval`);
  say(`KUBECONFIG=${kubeconfig} kubectl get secrets -n prod                       # Forbidden by the policy`);
  say('');
  say(`The approval page of each held request is printed here as it is emailed (emails: ${stack.outboxDir}/*.eml);`);
  say(`approve it in a browser (the page is signed by the demo's own CA, ${stack.caFile}), then run the delete again.`);
  say(`Audit: npx airlock --endpoint ${stack.url} --home ${stack.home} audit list`);
  say('Ctrl-C stops everything.');
} catch (error) {
  step(`failed: ${error instanceof Error ? error.message : String(error)}`);
  await stop('error', 1);
}
