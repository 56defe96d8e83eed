// The test Kubernetes cluster: a real etcd, kube-apiserver, kube-controller-manager
// and kube-scheduler, plus kwok's simulated nodes and kubelet API (pods run, logs and
// exec reach something real), all built from the Go module proxy (go.mod and
// kwok/go.mod beside this file) and run on loopback.
//
//   npm run test-cluster -- up | down | env | build
//
// `up` is idempotent; `down` stops what `up` started (by recorded pid) and
// removes the state directory. Outputs land in $AIRLOCK_HOME/test-cluster/.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, realpathSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
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
  binaries: Binaries;
  pids: { etcd: number; apiserver: number; controllerManager?: number; scheduler?: number; kwok?: number; watchdog?: number };
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

/** The kwok release (kwok/go.mod pins it with its own, newer Kubernetes libraries). */
export const KWOK_VERSION = 'v0.8.0';

/** Stamps the real release into the binaries, as Kubernetes' own build does (hack/lib/version.sh). */
const KUBERNETES_LDFLAGS = ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'].flatMap((pkg) => {
  const [major, minor] = KUBERNETES_VERSION.slice(1).split('.');
  return [`-X ${pkg}.gitVersion=${KUBERNETES_VERSION}`, `-X ${pkg}.gitMajor=${major}`, `-X ${pkg}.gitMinor=${minor}`, `-X ${pkg}.gitTreeState=clean`];
});

interface BuildTarget {
  pkg: string;
  out: keyof Binaries;
  ldflags: string[];
}

/** One cache directory: the binaries built from one Go module, keyed by what decides them. */
interface BuildGroup {
  /** Module directory the packages are built in. */
  cwd: string;
  /** Cache directory name: `<release>-<hash of the inputs and go version>`. */
  key: (goVersion: string) => string;
  targets: BuildTarget[];
  /** A dependency built from a patched copy: module path, file in it, the replacement beside this file. */
  patch?: { module: string; file: string; replacement: string };
}

/** kwok's own stage definitions (its "fast" set) and the CRDs of its kubelet-API simulation, copied from the module at build time. */
const KWOK_STAGES = ['node/fast/node-initialize.yaml', 'node/heartbeat-with-lease/node-heartbeat-with-lease.yaml', 'pod/fast/pod-ready.yaml', 'pod/fast/pod-complete.yaml', 'pod/fast/pod-delete.yaml'];
/** Kinds whose objects kwok reads from the API server, so tests can add rules (e.g. a Logs file per pod) at run time. */
export const KWOK_CRDS = ['Logs', 'ClusterLogs', 'Exec', 'ClusterExec', 'PortForward', 'ClusterPortForward'];
const KWOK_CRD_FILES = ['logs', 'clusterlogs', 'execs', 'clusterexecs', 'portforwards', 'clusterportforwards'].map((plural) => `kwok.x-k8s.io_${plural}.yaml`);

/** A cache key: the release plus everything that decides what `go build` produces. */
function cacheKey(release: string, files: string[], recipe: unknown, goVersion: string): string {
  const hash = createHash('sha256');
  for (const file of files) hash.update(readFileSync(join(moduleDir, file)));
  hash.update(JSON.stringify(recipe));
  hash.update(goVersion);
  return `${release}-${hash.digest('hex').slice(0, 12)}`;
}

function buildGroups(): { controlPlane: BuildGroup; kwok: BuildGroup; tools: BuildGroup } {
  const controlPlane: BuildTarget[] = [
    { pkg: 'k8s.io/kubernetes/cmd/kube-apiserver', out: 'apiserver', ldflags: KUBERNETES_LDFLAGS },
    { pkg: 'k8s.io/kubernetes/cmd/kube-controller-manager', out: 'controllerManager', ldflags: KUBERNETES_LDFLAGS },
    { pkg: 'k8s.io/kubernetes/cmd/kube-scheduler', out: 'scheduler', ldflags: KUBERNETES_LDFLAGS },
    { pkg: './cmd/etcd', out: 'etcd', ldflags: [] },
  ];
  const kwok: BuildTarget[] = [{ pkg: 'sigs.k8s.io/kwok/cmd/kwok', out: 'kwok', ldflags: [`-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION}`] }];
  // Test tools from this module, built with the cluster (not on first use inside a timed test).
  const tools: BuildTarget[] = [{ pkg: './cmd/auditcheck', out: 'auditcheck', ldflags: [] }];
  // kwok wraps a command's exit error, and the kubelet streaming code it uses then reports a
  // non-zero exit as an internal error; the patch unwraps it (see the file's comment).
  const patch = { module: 'k8s.io/cri-streaming', file: 'pkg/streaming/remotecommand/exec.go', replacement: 'kwok/patch/cri-streaming-remotecommand-exec.go.patched' };
  return {
    controlPlane: {
      cwd: moduleDir,
      key: (go) => cacheKey(KUBERNETES_VERSION, ['go.mod', 'go.sum', 'cmd/etcd/main.go'], controlPlane, go),
      targets: controlPlane,
    },
    kwok: {
      cwd: join(moduleDir, 'kwok'),
      key: (go) => cacheKey(`kwok-${KWOK_VERSION}`, ['kwok/go.mod', 'kwok/go.sum', patch.replacement], [kwok, patch, KWOK_STAGES, KWOK_CRD_FILES], go),
      targets: kwok,
      patch,
    },
    tools: {
      cwd: moduleDir,
      key: (go) => cacheKey('tools', ['go.mod', 'go.sum', 'cmd/auditcheck/main.go'], tools, go),
      targets: tools,
    },
  };
}

function goVersion(): string | undefined {
  const result = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) return undefined;
  return result.stdout.trim();
}

export interface Binaries {
  etcd: string;
  apiserver: string;
  controllerManager: string;
  scheduler: string;
  kwok: string;
  /** kwok's stages (node and pod lifecycle), one multi-document YAML file. */
  kwokStages: string;
  /** The CRDs of kwok's Logs/Exec/PortForward rules, one multi-document YAML file. */
  kwokCrds: string;
  /** Reads audit.k8s.io/v1 events strictly into the API server's own types (test/e2e/audit.test.ts). */
  auditcheck: string;
}

/** Build (or reuse from ~/.cache/airlock) the control plane and etcd, kwok (its own module), and the test tools — each group its own cache directory. */
export function ensureBinaries(): Binaries {
  const version = goVersion();
  const groups = buildGroups();
  const root = join(cacheRoot(), 'test-cluster');
  const controlPlaneDir = join(root, version ? groups.controlPlane.key(version) : `${KUBERNETES_VERSION}-prebuilt`);
  const kwokDir = join(root, version ? groups.kwok.key(version) : `kwok-${KWOK_VERSION}-prebuilt`);
  const toolsDir = join(root, version ? groups.tools.key(version) : 'tools-prebuilt');
  const binaries: Binaries = {
    etcd: join(controlPlaneDir, 'etcd'),
    apiserver: join(controlPlaneDir, 'kube-apiserver'),
    controllerManager: join(controlPlaneDir, 'kube-controller-manager'),
    scheduler: join(controlPlaneDir, 'kube-scheduler'),
    kwok: join(kwokDir, 'kwok'),
    kwokStages: join(kwokDir, 'kwok-stages.yaml'),
    kwokCrds: join(kwokDir, 'kwok-crds.yaml'),
    auditcheck: join(toolsDir, 'auditcheck'),
  };
  if (Object.values(binaries).every((file) => existsSync(file))) return binaries;
  if (!version) {
    throw new ClusterUnavailableError('Go is not installed (needed once to build the test cluster from the Go module proxy)');
  }
  const env = { ...process.env, GOFLAGS: '-mod=readonly', CGO_ENABLED: '0' };
  const moduleSource = (cwd: string, module: string) => {
    // `go list -m` names a module's directory only once it is in the module cache: on a fresh machine, download it first.
    const download = spawnSync('go', ['mod', 'download', module], { cwd, encoding: 'utf8', env });
    if (download.status !== 0) throw new ClusterUnavailableError(`go mod download ${module} failed: ${download.stderr}`);
    const list = spawnSync('go', ['list', '-m', '-f', '{{.Dir}}', module], { cwd, encoding: 'utf8', env });
    const dir = list.stdout.trim();
    if (list.status !== 0 || !dir) throw new ClusterUnavailableError(`go list -m ${module} failed: ${list.stderr}`);
    return dir;
  };
  for (const group of [groups.controlPlane, groups.kwok, groups.tools]) {
    const missing = group.targets.filter((target) => !existsSync(binaries[target.out]));
    if (!missing.length) continue;
    const dir = dirname(binaries[missing[0]!.out]);
    mkdirSync(dir, { recursive: true });
    const patchArgs: string[] = [];
    const scratch = mkdtempSync(join(tmpdir(), 'airlock-build-'));
    if (group.patch) {
      // Go refuses to overlay files in the module cache, so the dependency is built from a patched
      // copy, through a go.mod that replaces it (the committed go.mod and go.sum stay as they are).
      const copy = join(scratch, group.patch.module.replaceAll('/', '_'));
      cpSync(moduleSource(group.cwd, group.patch.module), copy, { recursive: true });
      spawnSync('chmod', ['-R', 'u+w', copy]); // the module cache is read-only
      copyFileSync(join(moduleDir, group.patch.replacement), join(copy, group.patch.file));
      const modFile = join(scratch, 'go.mod');
      writeFileSync(modFile, `${readFileSync(join(group.cwd, 'go.mod'), 'utf8')}\nreplace ${group.patch.module} => ${copy}\n`);
      copyFileSync(join(group.cwd, 'go.sum'), join(scratch, 'go.sum'));
      patchArgs.push(`-modfile=${modFile}`);
    }
    try {
      for (const { pkg, out: name, ldflags } of missing) {
        const out = binaries[name];
        const started = Date.now();
        log(`building ${pkg} with ${version}; the first build takes minutes, later runs use ${dir}`);
        const partial = `${out}.partial-${process.pid}`;
        const result = spawnSync('go', ['build', '-trimpath', ...patchArgs, `-ldflags=-s -w ${ldflags.join(' ')}`, '-o', partial, pkg], {
          cwd: group.cwd,
          stdio: ['ignore', 'inherit', 'inherit'],
          env,
        });
        if (result.status !== 0) {
          rmSync(partial, { force: true });
          throw new ClusterUnavailableError(`go build ${pkg} failed (exit ${result.status ?? result.signal})`);
        }
        renameSync(partial, out);
        log(`built ${pkg} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  if (!existsSync(binaries.kwokStages) || !existsSync(binaries.kwokCrds)) {
    const kwokSource = moduleSource(groups.kwok.cwd, 'sigs.k8s.io/kwok');
    const concat = (files: string[]) => files.map((file) => readFileSync(join(kwokSource, file), 'utf8').trimEnd()).join('\n---\n') + '\n';
    writeAtomically(binaries.kwokStages, concat(KWOK_STAGES.map((file) => join('kustomize/stage', file))));
    writeAtomically(binaries.kwokCrds, concat(KWOK_CRD_FILES.map((file) => join('kustomize/crd/bases', file))));
  }
  return binaries;
}

function writeAtomically(file: string, content: string): void {
  const partial = `${file}.partial-${process.pid}`;
  writeFileSync(partial, content);
  renameSync(partial, file);
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
  const { binaries, pids } = state;
  const processes: [number | undefined, string | undefined][] = [
    [pids.etcd, binaries.etcd],
    [pids.apiserver, binaries.apiserver],
    [pids.controllerManager, binaries.controllerManager],
    [pids.scheduler, binaries.scheduler],
    [pids.kwok, binaries.kwok],
  ];
  if (!processes.every(([pid, binary]) => binary !== undefined && runs(pid, binary))) return false;
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
  const [etcdClientPort, etcdPeerPort, apiserverPort, kubeletPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
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
  // kwok serves the simulated kubelet API (logs, exec, port-forward) on 127.0.0.1 for every node;
  // the apiserver verifies it against the cluster CA and presents its own client certificate.
  const kubeletServing = await ca.issue({ commonName: 'kwok-kubelet', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] });
  const kubeletClient = await ca.issue({ commonName: 'kube-apiserver-kubelet-client', organization: 'system:masters', usage: 'client' });
  const serviceAccount = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const token = () => randomBytes(32).toString('base64url');
  const adminToken = token();
  const connectionToken = token();
  const components = {
    controllerManager: { user: 'system:kube-controller-manager', token: token() },
    scheduler: { user: 'system:kube-scheduler', token: token() },
    // kwok writes node and pod status for every simulated node and deletes pods; a test-only
    // controller, it runs as an admin rather than with a hand-kept copy of kwok's RBAC.
    kwok: { user: 'kwok-controller', token: token(), groups: 'system:masters' },
  };
  const files = {
    ca: join(stateDir, 'ca.crt'),
    cert: join(stateDir, 'apiserver.crt'),
    key: join(stateDir, 'apiserver.key'),
    saPub: join(stateDir, 'sa.pub'),
    saKey: join(stateDir, 'sa.key'),
    tokens: join(stateDir, 'tokens.csv'),
    kubeletCert: join(stateDir, 'kubelet.crt'),
    kubeletKey: join(stateDir, 'kubelet.key'),
    kubeletClientCert: join(stateDir, 'apiserver-kubelet-client.crt'),
    kubeletClientKey: join(stateDir, 'apiserver-kubelet-client.key'),
    etcdLog: join(stateDir, 'etcd.log'),
    apiserverLog: join(stateDir, 'kube-apiserver.log'),
    controllerManagerLog: join(stateDir, 'kube-controller-manager.log'),
    schedulerLog: join(stateDir, 'kube-scheduler.log'),
    kwokLog: join(stateDir, 'kwok.log'),
    kwokConfig: join(stateDir, 'kwok.yaml'),
    execDir: join(stateDir, 'exec'),
    defaultPodLog: join(stateDir, 'pod-logs', 'default.log'),
    auditPolicy: join(stateDir, 'audit-policy.yaml'),
  };
  writeFileSync(files.ca, ca.certPem);
  writeFileSync(files.cert, serving.certPem);
  writeFileSync(files.key, serving.keyPem, { mode: 0o600 });
  writeFileSync(files.saPub, serviceAccount.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(files.saKey, serviceAccount.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(files.kubeletCert, kubeletServing.certPem);
  writeFileSync(files.kubeletKey, kubeletServing.keyPem, { mode: 0o600 });
  writeFileSync(files.kubeletClientCert, kubeletClient.certPem);
  writeFileSync(files.kubeletClientKey, kubeletClient.keyPem, { mode: 0o600 });
  const tokenLines = [
    `${adminToken},airlock-test-admin,uid-admin,"system:masters"`,
    `${connectionToken},${CONNECTION_USER},uid-connection`,
    ...Object.entries(components).map(([name, c]) => `${c.token},${c.user},uid-${name}${'groups' in c ? `,"${c.groups}"` : ''}`),
  ];
  writeFileSync(files.tokens, `${tokenLines.join('\n')}\n`, { mode: 0o600 });
  const componentKubeconfig = (name: keyof typeof components) => {
    const file = join(stateDir, `${name}.kubeconfig`);
    writeFileSync(file, kubeconfig(server, ca.certPem, components[name].user, components[name].token), { mode: 0o600 });
    return file;
  };
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
      `--kubelet-certificate-authority=${files.ca}`,
      `--kubelet-client-certificate=${files.kubeletClientCert}`,
      `--kubelet-client-key=${files.kubeletClientKey}`,
      '--kubelet-preferred-address-types=InternalIP',
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

  const adminKubeconfig = join(out, 'admin.kubeconfig');
  const alive = () => {
    for (const [what, pid, logFile] of [
      ['kube-apiserver', state.pids.apiserver, files.apiserverLog],
      ['kube-controller-manager', state.pids.controllerManager, files.controllerManagerLog],
      ['kube-scheduler', state.pids.scheduler, files.schedulerLog],
      ['kwok', state.pids.kwok, files.kwokLog],
    ] as const) {
      if (pid !== undefined && !isAlive(pid)) throw new Error(`${what} exited during start-up. Last lines of ${logFile}:\n${tail(logFile)}`);
    }
  };

  state.pids.controllerManager = startDetached(
    binaries.controllerManager,
    [
      `--kubeconfig=${componentKubeconfig('controllerManager')}`,
      '--leader-elect=false',
      '--secure-port=0',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${files.saKey}`,
      `--root-ca-file=${files.ca}`,
      '--profiling=false',
      '--v=1',
    ],
    files.controllerManagerLog,
  );
  state.pids.scheduler = startDetached(
    binaries.scheduler,
    [`--kubeconfig=${componentKubeconfig('scheduler')}`, '--leader-elect=false', '--secure-port=0', '--profiling=false', '--v=1'],
    files.schedulerLog,
  );
  saveState();

  // kwok reads its Logs/Exec/PortForward rules from the API server, so the CRDs come first.
  await kubectlAdmin(adminKubeconfig, ['apply', '-f', binaries.kwokCrds]);
  await kubectlAdmin(adminKubeconfig, ['wait', '--for=condition=Established', '--timeout=60s', '-f', binaries.kwokCrds]);
  mkdirSync(files.execDir, { recursive: true });
  mkdirSync(dirname(files.defaultPodLog), { recursive: true });
  writeFileSync(files.defaultPodLog, criLogLines(['airlock test cluster: no log file is set for this container (add a kwok Logs rule)']));
  state.pids.kwok = startDetached(
    binaries.kwok,
    [
      `--kubeconfig=${componentKubeconfig('kwok')}`,
      `--config=${binaries.kwokStages}`,
      `--enable-crds=${KWOK_CRDS.join(',')}`,
      '--manage-all-nodes=false',
      `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
      '--node-ip=127.0.0.1',
      `--node-port=${kubeletPort}`,
      `--server-address=127.0.0.1:${kubeletPort}`,
      `--tls-cert-file=${files.kubeletCert}`,
      `--tls-private-key-file=${files.kubeletKey}`,
      '--node-lease-duration-seconds=40',
      '--cidr=10.244.0.0/16',
    ],
    files.kwokLog,
  );
  saveState();

  await seed(adminKubeconfig, [
    ...seedNodes(),
    {
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'ClusterExec',
      metadata: { name: 'local' },
      // Commands run as local processes of the test machine, in a scratch directory.
      spec: { execs: [{ local: { workDir: files.execDir } }] },
    },
    {
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'ClusterPortForward',
      metadata: { name: 'echo' },
      // Every pod port echoes what it is sent (a local `cat` per forwarded connection).
      spec: { forwards: [{ command: ['cat'] }] },
    },
    {
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'ClusterLogs',
      metadata: { name: 'default' },
      spec: { logs: [{ logsFile: files.defaultPodLog, previousLogsFile: files.defaultPodLog, follow: true }] },
    },
  ]);
  // Up means: nodes Ready, the seeded pods Running and the seeded Deployment rolled out.
  alive();
  for (const args of [
    ['wait', '--for=condition=Ready', 'nodes', '--all', '--timeout=90s'],
    ['wait', '--for=condition=Ready', 'pods', '--all', '-A', '--timeout=90s'],
    ['rollout', 'status', 'deployment/web', '-n', 'prod', '--timeout=90s'],
  ]) {
    try {
      await kubectlAdmin(adminKubeconfig, args);
    } catch (error) {
      alive();
      throw error;
    }
  }
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

/** kwok manages the nodes that carry this annotation (value "fake"). */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
/** The simulated nodes every test cluster starts with. */
export const KWOK_NODES = ['kwok-node-0', 'kwok-node-1'];

function seedNodes(): object[] {
  return KWOK_NODES.map((name) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, annotations: { [KWOK_NODE_ANNOTATION]: 'fake' }, labels: { 'kubernetes.io/hostname': name, type: 'kwok' } },
  }));
}

/** Lines in the CRI log format kwok (like a kubelet) reads container logs in. */
export function criLogLines(lines: string[], stream: 'stdout' | 'stderr' = 'stdout', at = new Date()): string {
  return lines.map((line) => `${at.toISOString()} ${stream} F ${line}\n`).join('');
}

function kubectlAdmin(adminKubeconfig: string, args: string[], input?: string): Promise<void> {
  return new Promise((resolveRun, reject) => {
    const child = execFile(kubectlBinary(), ['--kubeconfig', adminKubeconfig, ...args], (error, _stdout, stderr) => {
      if (error) reject(new Error(`kubectl ${args.join(' ')} failed: ${stderr || error.message}`));
      else resolveRun();
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function seed(adminKubeconfig: string, generated: object[]): Promise<void> {
  const manifest = await readFile(join(moduleDir, 'seed.yaml'), 'utf8');
  const documents = [...generated.map((object) => JSON.stringify(object)), manifest];
  await kubectlAdmin(adminKubeconfig, ['apply', '-f', '-'], documents.join('\n---\n'));
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
  await stopProcess(state.pids.kwok, state.binaries.kwok);
  await stopProcess(state.pids.scheduler, state.binaries.scheduler);
  await stopProcess(state.pids.controllerManager, state.binaries.controllerManager);
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
      process.stdout.write(`${Object.values(binaries).join('\n')}\n`);
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
