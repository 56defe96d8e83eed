// The test Kubernetes cluster: a real etcd and a real kube-apiserver, built
// from the Go module proxy (see go.mod beside this file), run on loopback.
//
//   npm run test-cluster -- up | down | env | build
//
// `up` is idempotent; `down` stops what `up` started (by recorded pid) and
// removes the state directory. Outputs land in $AIRLOCK_HOME/test-cluster/.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, realpathSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCertificateAuthority } from '../../local/tls.ts';

const moduleDir = dirname(fileURLToPath(import.meta.url));

/** The pinned release; go.mod carries the matching staging pins. */
export const KUBERNETES_VERSION = 'v1.33.13';

/** Who the narrow connection credential authenticates as. */
export const CONNECTION_USER = 'airlock-connection';

export class ClusterUnavailableError extends Error {
  override name = 'ClusterUnavailableError';
}

export interface ClusterInfo {
  server: string;
  caFile: string;
  caPem: string;
  adminKubeconfig: string;
  adminToken: string;
  connectionTokenFile: string;
  connectionToken: string;
  outputDir: string;
  /** The API server's own audit log (JSON lines, audit.k8s.io/v1 Events at Metadata level). */
  auditLog: string;
}

export interface ClusterState {
  stateDir: string;
  server: string;
  etcdClientUrl: string;
  binaries: { etcd: string; apiserver: string };
  pids: { etcd: number; apiserver: number; watchdog?: number };
  startedAt: string;
}

function airlockHome(): string {
  return resolve(process.env.AIRLOCK_HOME ?? './.airlock');
}

export function outputDir(home = airlockHome()): string {
  return join(home, 'test-cluster');
}

function statePath(home: string): string {
  return join(outputDir(home), 'state.json');
}

function log(message: string): void {
  process.stderr.write(`[test-cluster] ${message}\n`);
}

// ---------------------------------------------------------------- binaries

function cacheRoot(): string {
  return process.env.AIRLOCK_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'airlock');
}

/** Cache key: the release plus everything that decides what `go build` produces. */
function buildKey(): string {
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'cmd/etcd/main.go']) hash.update(readFileSync(join(moduleDir, file)));
  hash.update(goVersion() ?? 'no-go');
  return `${KUBERNETES_VERSION}-${hash.digest('hex').slice(0, 12)}`;
}

function goVersion(): string | undefined {
  const result = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) return undefined;
  return result.stdout.trim();
}

export interface Binaries {
  etcd: string;
  apiserver: string;
}

/** Build (or reuse from ~/.cache/airlock) kube-apiserver and etcd. */
export function ensureBinaries(): Binaries {
  const version = goVersion();
  const dir = join(cacheRoot(), 'test-cluster', version ? buildKey() : `${KUBERNETES_VERSION}-prebuilt`);
  const binaries = { etcd: join(dir, 'etcd'), apiserver: join(dir, 'kube-apiserver') };
  if (existsSync(binaries.etcd) && existsSync(binaries.apiserver)) return binaries;
  if (!version) {
    throw new ClusterUnavailableError('Go is not installed (needed once to build kube-apiserver and etcd from the Go module proxy)');
  }
  mkdirSync(dir, { recursive: true });
  const targets: [string, string][] = [
    ['k8s.io/kubernetes/cmd/kube-apiserver', binaries.apiserver],
    ['./cmd/etcd', binaries.etcd],
  ];
  for (const [pkg, out] of targets) {
    if (existsSync(out)) continue;
    const started = Date.now();
    log(`building ${pkg} (${KUBERNETES_VERSION}) with ${version}; the first build takes minutes, later runs use ${dir}`);
    const partial = `${out}.partial-${process.pid}`;
    const result = spawnSync('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', partial, pkg], {
      cwd: moduleDir,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, GOFLAGS: '-mod=readonly', CGO_ENABLED: '0' },
    });
    if (result.status !== 0) {
      rmSync(partial, { force: true });
      throw new ClusterUnavailableError(`go build ${pkg} failed (exit ${result.status ?? result.signal})`);
    }
    renameSync(partial, out);
    log(`built ${pkg} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  return binaries;
}

// ---------------------------------------------------------------- processes

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True when pid is alive and runs the given binary (guards against pid reuse). */
function runs(pid: number | undefined, binary: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] === binary;
  } catch {
    return true; // no /proc: trust the liveness check
  }
}

async function stopProcess(pid: number | undefined, binary: string | undefined, timeoutMs = 10_000): Promise<void> {
  if (!pid || !isAlive(pid)) return;
  if (binary && !runs(pid, binary)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function startDetached(binary: string, args: string[], logFile: string): number {
  const fd = openSync(logFile, 'a');
  const child = spawn(binary, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  if (!child.pid) throw new Error(`could not start ${binary}`);
  return child.pid;
}

interface ProbeOptions {
  url: string;
  ca?: string;
  token?: string;
}

function probe({ url, ca, token }: ProbeOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolveProbe, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(target, { method: 'GET', ca, headers: token ? { authorization: `Bearer ${token}` } : {}, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolveProbe({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function waitReady(what: string, pid: number, logFile: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) {
      throw new Error(`${what} exited during start-up. Last lines of ${logFile}:\n${tail(logFile)}`);
    }
    if (await check().catch(() => false)) return;
    await sleep(250);
  }
  throw new Error(`${what} was not ready after ${timeoutMs / 1000} s. Last lines of ${logFile}:\n${tail(logFile)}`);
}

// ---------------------------------------------------------------- up / down

export function readState(home: string): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(statePath(home), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

export function readClusterInfo(home = airlockHome()): ClusterInfo {
  const dir = outputDir(home);
  const adminToken = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
  return {
    server: readFileSync(join(dir, 'server'), 'utf8').trim(),
    caFile: join(dir, 'ca.crt'),
    caPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    adminKubeconfig: join(dir, 'admin.kubeconfig'),
    adminToken,
    connectionTokenFile: join(dir, 'connection.token'),
    connectionToken: readFileSync(join(dir, 'connection.token'), 'utf8').trim(),
    outputDir: dir,
    auditLog: join(dir, 'audit.log'),
  };
}

/** Healthy = both processes alive and /readyz answers ok with the admin token. */
async function isHealthy(home: string, state: ClusterState): Promise<boolean> {
  if (!runs(state.pids.etcd, state.binaries.etcd) || !runs(state.pids.apiserver, state.binaries.apiserver)) return false;
  try {
    const info = readClusterInfo(home);
    const ready = await probe({ url: `${state.server}/readyz`, ca: info.caPem, token: info.adminToken });
    return ready.status === 200;
  } catch {
    return false;
  }
}

export interface UpOptions {
  home?: string;
  /** Stop the cluster when this process exits (a watchdog checks once a second). */
  ownerPid?: number;
  /** Extra kube-apiserver flags (tests use a bad one to prove crash reporting). */
  extraApiserverArgs?: string[];
}

export interface UpResult {
  info: ClusterInfo;
  /** False when a healthy cluster was already running and was reused. */
  started: boolean;
}

export async function up(options: UpOptions = {}): Promise<UpResult> {
  const home = resolve(options.home ?? airlockHome());
  const existing = readState(home);
  if (existing) {
    if (await isHealthy(home, existing)) {
      log(`already up at ${existing.server} (state ${existing.stateDir})`);
      return { info: readClusterInfo(home), started: false };
    }
    log('found a previous cluster that is not healthy; stopping what is left of it and starting fresh');
    await down({ home });
  }
  const binaries = ensureBinaries();
  let lastError: unknown;
  // A free port can be taken between probing and binding; one retry with fresh ports covers that race.
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      const info = await start(home, binaries, options);
      return { info, started: true };
    } catch (error) {
      lastError = error;
      const message = error instanceof Error ? error.message : String(error);
      await down({ home, quiet: true });
      if (!/address already in use/i.test(message)) break;
      log('a port was taken while starting; retrying with fresh ports');
    }
  }
  throw lastError;
}

async function start(home: string, binaries: Binaries, options: UpOptions): Promise<ClusterInfo> {
  const out = outputDir(home);
  mkdirSync(out, { recursive: true });
  const stateDir = mkdtempSync(join(tmpdir(), 'airlock-cluster-'));
  const [etcdClientPort, etcdPeerPort, apiserverPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const etcdClientUrl = `http://127.0.0.1:${etcdClientPort}`;
  const etcdPeerUrl = `http://127.0.0.1:${etcdPeerPort}`;
  const server = `https://127.0.0.1:${apiserverPort}`;

  // Certificates and credentials.
  const ca = await createCertificateAuthority('airlock-test-cluster-ca');
  const serving = await ca.issue({
    commonName: 'kube-apiserver',
    dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
    ipAddresses: ['127.0.0.1'],
  });
  const serviceAccount = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const adminToken = randomBytes(32).toString('base64url');
  const connectionToken = randomBytes(32).toString('base64url');
  const files = {
    ca: join(stateDir, 'ca.crt'),
    cert: join(stateDir, 'apiserver.crt'),
    key: join(stateDir, 'apiserver.key'),
    saPub: join(stateDir, 'sa.pub'),
    saKey: join(stateDir, 'sa.key'),
    tokens: join(stateDir, 'tokens.csv'),
    etcdLog: join(stateDir, 'etcd.log'),
    apiserverLog: join(stateDir, 'kube-apiserver.log'),
    auditPolicy: join(stateDir, 'audit-policy.yaml'),
  };
  writeFileSync(files.ca, ca.certPem);
  writeFileSync(files.cert, serving.certPem);
  writeFileSync(files.key, serving.keyPem, { mode: 0o600 });
  writeFileSync(files.saPub, serviceAccount.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(files.saKey, serviceAccount.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(files.tokens, `${adminToken},airlock-test-admin,uid-admin,"system:masters"\n${connectionToken},${CONNECTION_USER},uid-connection\n`, { mode: 0o600 });
  // Every request at Metadata level, so a test can join Airlock's records to the cluster's own log by auditID.
  writeFileSync(files.auditPolicy, 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n');

  const state: ClusterState = {
    stateDir,
    server,
    etcdClientUrl,
    binaries,
    pids: { etcd: 0, apiserver: 0 },
    startedAt: new Date().toISOString(),
  };
  const saveState = () => writeFileSync(statePath(home), JSON.stringify(state, null, 2));

  state.pids.etcd = startDetached(
    binaries.etcd,
    [
      '--name=airlock-test',
      `--data-dir=${join(stateDir, 'etcd')}`,
      `--listen-client-urls=${etcdClientUrl}`,
      `--advertise-client-urls=${etcdClientUrl}`,
      `--listen-peer-urls=${etcdPeerUrl}`,
      `--initial-advertise-peer-urls=${etcdPeerUrl}`,
      `--initial-cluster=airlock-test=${etcdPeerUrl}`,
      '--unsafe-no-fsync', // test data only; fsync dominates etcd latency on shared disks
      '--log-level=warn',
    ],
    files.etcdLog,
  );
  saveState();
  await waitReady('etcd', state.pids.etcd, files.etcdLog, async () => {
    const health = await probe({ url: `${etcdClientUrl}/health` });
    return health.status === 200 && health.body.includes('"health":"true"');
  });

  state.pids.apiserver = startDetached(
    binaries.apiserver,
    [
      `--etcd-servers=${etcdClientUrl}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${apiserverPort}`,
      `--tls-cert-file=${files.cert}`,
      `--tls-private-key-file=${files.key}`,
      `--client-ca-file=${files.ca}`,
      `--token-auth-file=${files.tokens}`,
      '--anonymous-auth=false',
      '--authorization-mode=RBAC',
      `--service-account-key-file=${files.saPub}`,
      `--service-account-signing-key-file=${files.saKey}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      '--service-cluster-ip-range=10.96.0.0/24',
      '--endpoint-reconciler-type=none',
      `--cert-dir=${join(stateDir, 'certs')}`,
      '--profiling=false',
      `--audit-policy-file=${files.auditPolicy}`,
      `--audit-log-path=${join(out, 'audit.log')}`,
      '--audit-log-maxsize=100',
      '--v=1',
      ...(options.extraApiserverArgs ?? []),
    ],
    files.apiserverLog,
  );
  saveState();
  await waitReady('kube-apiserver', state.pids.apiserver, files.apiserverLog, async () => {
    const ready = await probe({ url: `${server}/readyz`, ca: ca.certPem, token: adminToken });
    return ready.status === 200;
  });

  // Outputs other tools and tests read.
  writeFileSync(join(out, 'ca.crt'), ca.certPem);
  writeFileSync(join(out, 'server'), `${server}\n`);
  writeFileSync(join(out, 'admin.token'), `${adminToken}\n`, { mode: 0o600 });
  writeFileSync(join(out, 'connection.token'), `${connectionToken}\n`, { mode: 0o600 });
  writeFileSync(join(out, 'admin.kubeconfig'), kubeconfig(server, ca.certPem, 'airlock-test-admin', adminToken), {
    mode: 0o600,
  });

  if (options.ownerPid) {
    state.pids.watchdog = spawnWatchdog(home, options.ownerPid);
    saveState();
  }

  await seed(join(out, 'admin.kubeconfig'));
  log(`up: ${server}`);
  log(`outputs in ${out} (admin.kubeconfig, ca.crt, server, connection.token); state and logs in ${stateDir}`);
  return readClusterInfo(home);
}

function spawnWatchdog(home: string, ownerPid: number): number {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'reap', '--owner', String(ownerPid)], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, AIRLOCK_HOME: home },
  });
  child.unref();
  return child.pid ?? 0;
}

export function kubeconfig(server: string, caPem: string, user: string, token: string): string {
  const ca = Buffer.from(caPem).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: airlock-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${ca}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: airlock-test',
    '  context:',
    '    cluster: airlock-test',
    `    user: ${user}`,
    'current-context: airlock-test',
    '',
  ].join('\n');
}

/** The kubectl the tests use (the machine's, unless KUBECTL says otherwise). */
export function kubectlBinary(): string {
  return process.env.KUBECTL ?? 'kubectl';
}

async function seed(adminKubeconfig: string): Promise<void> {
  const manifest = await readFile(join(moduleDir, 'seed.yaml'), 'utf8');
  execFileSync(kubectlBinary(), ['--kubeconfig', adminKubeconfig, 'apply', '-f', '-'], {
    input: manifest,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
}

export interface DownOptions {
  home?: string;
  quiet?: boolean;
}

export async function down(options: DownOptions = {}): Promise<void> {
  const home = resolve(options.home ?? airlockHome());
  const state = readState(home);
  if (!state) {
    if (!options.quiet) log('nothing to stop');
    return;
  }
  if (state.pids.watchdog && state.pids.watchdog !== process.pid) await stopProcess(state.pids.watchdog, undefined, 2000);
  await stopProcess(state.pids.apiserver, state.binaries.apiserver);
  await stopProcess(state.pids.etcd, state.binaries.etcd);
  if (state.stateDir.startsWith(join(tmpdir(), 'airlock-cluster-'))) rmSync(state.stateDir, { recursive: true, force: true });
  rmSync(outputDir(home), { recursive: true, force: true });
  if (!options.quiet) log('down');
}

async function reap(ownerPid: number): Promise<void> {
  while (isAlive(ownerPid)) await sleep(1000);
  await down({ quiet: true });
}

function printEnv(home: string): void {
  const info = readClusterInfo(home);
  const lines = {
    AIRLOCK_TEST_SERVER: info.server,
    AIRLOCK_TEST_CA_FILE: info.caFile,
    AIRLOCK_TEST_ADMIN_KUBECONFIG: info.adminKubeconfig,
    AIRLOCK_TEST_CONNECTION_TOKEN_FILE: info.connectionTokenFile,
  };
  for (const [key, value] of Object.entries(lines)) process.stdout.write(`export ${key}=${JSON.stringify(value)}\n`);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const home = airlockHome();
  switch (command) {
    case 'build': {
      const binaries = ensureBinaries();
      process.stdout.write(`${binaries.apiserver}\n${binaries.etcd}\n`);
      return 0;
    }
    case 'up': {
      const { info } = await up({ home });
      process.stdout.write(`server:            ${info.server}\n`);
      process.stdout.write(`admin kubeconfig:  ${info.adminKubeconfig}\n`);
      process.stdout.write(`CA:                ${info.caFile}\n`);
      process.stdout.write(`connection token:  ${info.connectionTokenFile}  (user ${CONNECTION_USER}, namespace prod only)\n`);
      return 0;
    }
    case 'down':
      await down({ home });
      return 0;
    case 'env':
      if (!readState(home)) {
        process.stderr.write('the test cluster is not up; run: npm run test-cluster -- up\n');
        return 1;
      }
      printEnv(home);
      return 0;
    case 'reap': {
      const owner = Number(rest[rest.indexOf('--owner') + 1]);
      if (!Number.isInteger(owner) || owner <= 0) return 2;
      await reap(owner);
      return 0;
    }
    default:
      process.stderr.write('usage: npm run test-cluster -- up | down | env | build\n');
      return 2;
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`[test-cluster] ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
