// `airlock verify --connection NAME`: walks the boundary as an agent meets it
// and prints one line of evidence per control. It only ever reads, or
// deletes an object that does not exist with dryRun=All: it cannot change the
// cluster. Requests it uses are chosen with the real policy engine from the
// connection's own policy. Side doors are found by trying: each credential the
// agent process could use is presented to the cluster as a SelfSubjectReview,
// which the API server answers without storing anything.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { homedir } from 'node:os';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { escalationOf, escalationSamples } from '../lambdas/core/effects.ts';
import { errorText } from '../lambdas/core/errors.ts';
import { parseKubeRequest } from '../lambdas/core/kube-request.ts';
import { evaluatePolicy, type Policy } from '../lambdas/core/policy.ts';
import type { AirlockClient } from './client.ts';
import { ApiError } from './client.ts';
import { EKS_SIDE_DOOR_ACTIONS, type IamSimulator } from './iam-simulator.ts';

export interface VerifyCheck {
  control: string;
  pass: boolean;
  evidence: string;
  /** Found but not tried (e.g. an exec plugin): no verdict either way, shown to the operator. */
  warnings?: string[];
}

export interface VerifyOptions {
  connection: string;
  agent: AirlockClient;
  /** Agent calls without credentials, and with a wrong key. */
  anonymous: AirlockClient;
  wrongKey: AirlockClient;
  agentId: string;
  /** Admin access (records, transcripts, the connection's policy); without it those checks fail with evidence. */
  admin?: AirlockClient;
  /** Local stack: approve via the link in the outbox. */
  outboxDir?: string;
  approveWithLink: boolean;
  timeoutSeconds: number;
  /** The connection's cluster credential, to prove it never appears in anything returned or recorded. */
  upstreamToken?: string;
  /** Where this process would find a pod's service-account token (default SERVICE_ACCOUNT_TOKEN_PATH). */
  serviceAccountTokenPath?: string;
  /** The environment an agent process would have (default process.env): KUBECONFIG, HOME, token variables. */
  env?: NodeJS.ProcessEnv;
  /** For EKS connections: IAM policy simulation with the caller's AWS credentials. */
  iam?: () => IamSimulator;
  progress: (line: string) => void;
}

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

interface Status {
  kind?: string;
  code?: number;
  details?: { name?: string; causes?: { reason?: string }[] };
  message?: string;
}

const KNOWN_RESOURCES: { resource: string; group: string; version: string }[] = [
  { resource: 'pods', group: '', version: 'v1' },
  { resource: 'configmaps', group: '', version: 'v1' },
  { resource: 'services', group: '', version: 'v1' },
  { resource: 'serviceaccounts', group: '', version: 'v1' },
  { resource: 'events', group: '', version: 'v1' },
  { resource: 'secrets', group: '', version: 'v1' },
  { resource: 'deployments', group: 'apps', version: 'v1' },
  { resource: 'statefulsets', group: 'apps', version: 'v1' },
  { resource: 'jobs', group: 'batch', version: 'v1' },
];

function collectionPath(resource: { resource: string; group: string; version: string }, namespace: string): string {
  const prefix = resource.group ? `/apis/${resource.group}/${resource.version}` : `/api/${resource.version}`;
  return `${prefix}/namespaces/${namespace}/${resource.resource}`;
}

function statusOf(raw: Raw): Status {
  try {
    return JSON.parse(raw.text) as Status;
  } catch {
    return {};
  }
}

function cause(raw: Raw): string {
  return statusOf(raw).details?.causes?.[0]?.reason ?? '';
}

function requestId(raw: Raw): string {
  const value = raw.headers['x-airlock-request-id'];
  return Array.isArray(value) ? value[0]! : (value ?? '');
}

/** Requests the policy allows, denies and holds, found by asking the policy engine itself. */
export function chooseRequests(policy: Policy): { read?: string; refused?: string; destructive?: { path: string; effect: 'approve' | 'deny' | 'allow' } } {
  const namespaces = new Set<string>();
  for (const rule of policy.rules) for (const namespace of rule.namespaces ?? []) if (namespace !== '*') namespaces.add(namespace);
  if (namespaces.size === 0) namespaces.add('default');
  const effect = (method: string, path: string) => evaluatePolicy(policy, parseKubeRequest(method, path, {})).effect;
  let read: string | undefined;
  let refused: string | undefined;
  for (const namespace of namespaces) {
    for (const resource of KNOWN_RESOURCES) {
      const path = collectionPath(resource, namespace);
      if (!read && effect('GET', path) === 'allow') read = path;
      if (!refused && effect('GET', path) === 'deny') refused = path;
    }
  }
  refused ??= ['/api/v1/namespaces/airlock-verify-outside/pods', '/api/v1/nodes'].find((path) => effect('GET', path) === 'deny');
  const name = `airlock-verify-${randomBytes(4).toString('hex')}`;
  let destructive: { path: string; effect: 'approve' | 'deny' | 'allow' } | undefined;
  for (const namespace of namespaces) {
    for (const resource of KNOWN_RESOURCES.filter((r) => r.resource !== 'secrets')) {
      const path = `${collectionPath(resource, namespace)}/${name}`;
      const result = effect('DELETE', path);
      if (result === 'approve') return { read, refused, destructive: { path, effect: result } };
      destructive ??= { path, effect: result };
    }
  }
  return { read, refused, destructive };
}

/**
 * The requests that mint a credential or widen rights (CONTRACT.md "Credentials and wider rights"),
 * evaluated against the policy: `loose` are let through by a rule that does not name them (the engine
 * must never do that), `named` by a rule that does (a deliberate grant, listed for the operator).
 */
export function escalationExposure(policy: Policy): { loose: string[]; named: string[]; namespace: string } {
  const namespaces = new Set<string>();
  for (const rule of policy.rules) for (const namespace of rule.namespaces ?? []) if (namespace !== '*') namespaces.add(namespace);
  if (namespaces.size === 0) namespaces.add('default');
  const loose = new Set<string>();
  const named = new Set<string>();
  for (const namespace of namespaces) {
    for (const request of escalationSamples(namespace)) {
      const decision = evaluatePolicy(policy, request);
      if (decision.effect === 'deny') continue;
      const entry = escalationOf(request)!.entry;
      const what = `${request.verb} ${entry}${request.namespace ? ` in ${request.namespace}` : ''} (${decision.effect} by ${decision.reason})`;
      (policy.rules[decision.ruleIndex]?.resources?.includes(entry) ? named : loose).add(what);
    }
  }
  return { loose: [...loose], named: [...named], namespace: [...namespaces][0]! };
}

function decodeClaims(token: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** Where a credential an agent process could use was found; never the credential itself in any output. */
export interface FoundCredential {
  /** e.g. `/home/a/.kube/config: user admin`, `env KUBE_TOKEN`, `service-account token /var/run/...`. */
  where: string;
  kind: 'kubeconfig' | 'service account' | 'environment';
  token?: string;
  basic?: { username: string; password: string };
  clientCert?: { cert: string; key: string };
  /** Found but not tried (an exec plugin is never run by verify; an unreadable file). */
  cannotTry?: string;
  /** Airlock's own exec plugin: its tokens are for Airlock, not the cluster. */
  airlock?: boolean;
}

/** Environment variables tools and scripts commonly read a Kubernetes bearer token from. */
export const TOKEN_ENV_VARS = ['KUBE_TOKEN', 'KUBE_BEARER_TOKEN', 'K8S_TOKEN', 'K8S_AUTH_API_KEY', 'KUBERNETES_TOKEN', 'KUBERNETES_BEARER_TOKEN', 'BEARER_TOKEN'];

/** The in-cluster service-account token a pod's processes can read. */
const SERVICE_ACCOUNT_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Kubeconfig files an agent process could read: every KUBECONFIG entry and every file in ~/.kube/. */
export function reachableKubeconfigs(env: NodeJS.ProcessEnv = process.env): string[] {
  const files = (env.KUBECONFIG ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((file) => resolve(file));
  const kubeDir = join(env.HOME ?? homedir(), '.kube');
  if (existsSync(kubeDir)) {
    for (const name of readdirSync(kubeDir)) {
      const file = join(kubeDir, name);
      try {
        if (statSync(file).isFile()) files.push(file);
      } catch {
        // vanished or unreadable: the agent cannot use it either
      }
    }
  }
  return [...new Set(files)].filter((file) => existsSync(file));
}

interface KubeconfigUser {
  name?: string;
  user?: {
    token?: string;
    tokenFile?: string;
    username?: string;
    password?: string;
    'client-certificate'?: string;
    'client-certificate-data'?: string;
    'client-key'?: string;
    'client-key-data'?: string;
    'auth-provider'?: { name?: string; config?: Record<string, string> };
    exec?: { command?: string; args?: string[] };
  };
}

/** `airlock token` as kubectl's exec plugin (any install: node + airlock.ts, the bin, npx airlock). */
function isAirlockPlugin(exec: { command?: string; args?: string[] }): boolean {
  const words = [exec.command ?? '', ...(exec.args ?? [])];
  return words.some((word) => /^airlock(-token)?(\.[cm]?[jt]s)?$/.test(basename(word))) && (exec.args ?? []).includes('token');
}

/** Every user of every kubeconfig, whether or not a context uses it. */
export function kubeconfigCredentials(files: string[], named: string[] = files): { found: FoundCredential[]; unreadable: string[] } {
  const found: FoundCredential[] = [];
  const unreadable: string[] = [];
  for (const file of files) {
    let config: { kind?: string; users?: KubeconfigUser[]; clusters?: unknown; contexts?: unknown } | null;
    try {
      if (statSync(file).size > 4 * 1024 * 1024) continue;
      config = parseYaml(readFileSync(file, 'utf8')) as typeof config;
    } catch {
      // ~/.kube holds other files too; only a file named by KUBECONFIG must be a kubeconfig.
      if (named.includes(file)) unreadable.push(file);
      continue;
    }
    if (!config || typeof config !== 'object' || !(config.users || config.clusters || config.kind === 'Config')) continue;
    const relative = (path: string) => resolve(dirname(file), path);
    const readOr = (path: string): string | undefined => {
      try {
        return readFileSync(relative(path), 'utf8');
      } catch {
        return undefined;
      }
    };
    for (const entry of Array.isArray(config.users) ? config.users : []) {
      const user = entry?.user ?? {};
      const where = `${file}: user ${entry?.name ?? '(unnamed)'}`;
      const add = (credential: Omit<FoundCredential, 'where' | 'kind'>) => found.push({ where, kind: 'kubeconfig', ...credential });
      if (user.token) add({ token: String(user.token).trim() });
      if (user.tokenFile) {
        const token = readOr(user.tokenFile)?.trim();
        add(token ? { token } : { cannotTry: `token file ${relative(user.tokenFile)} unreadable` });
      }
      if (user.username !== undefined && user.password !== undefined) add({ basic: { username: String(user.username), password: String(user.password) } });
      const cert = user['client-certificate-data']
        ? Buffer.from(user['client-certificate-data'], 'base64').toString('utf8')
        : user['client-certificate']
          ? readOr(user['client-certificate'])
          : undefined;
      const key = user['client-key-data'] ? Buffer.from(user['client-key-data'], 'base64').toString('utf8') : user['client-key'] ? readOr(user['client-key']) : undefined;
      if (cert && key) add({ clientCert: { cert, key } });
      else if (user['client-certificate-data'] || user['client-certificate'] || user['client-key-data'] || user['client-key']) add({ cannotTry: 'client certificate or key missing or unreadable' });
      const provider = user['auth-provider'];
      if (provider) {
        const token = provider.config?.['id-token'] ?? provider.config?.['access-token'];
        add(token ? { token } : { cannotTry: `auth-provider ${provider.name ?? '(unnamed)'} holds no token` });
      }
      if (user.exec) add(isAirlockPlugin(user.exec) ? { airlock: true } : { cannotTry: `exec plugin ${basename(user.exec.command ?? '?')} (verify never runs plugins)` });
    }
  }
  return { found, unreadable };
}

/** The service-account token and the well-known token environment variables. */
export function ambientCredentials(env: NodeJS.ProcessEnv, serviceAccountTokenPath: string): FoundCredential[] {
  const found: FoundCredential[] = [];
  if (existsSync(serviceAccountTokenPath)) {
    let token: string | undefined;
    try {
      token = readFileSync(serviceAccountTokenPath, 'utf8').trim();
    } catch {
      token = undefined;
    }
    found.push({ where: `service-account token ${serviceAccountTokenPath}`, kind: 'service account', ...(token ? { token } : { cannotTry: 'unreadable' }) });
  }
  for (const name of TOKEN_ENV_VARS) {
    const value = env[name]?.trim();
    if (value) found.push({ where: `env ${name}`, kind: 'environment', token: value.replace(/^Bearer\s+/i, '') });
  }
  return found;
}

export interface ClusterTarget {
  server: string;
  caPem?: string;
}

export interface TryResult {
  outcome: 'accepted' | 'rejected' | 'unknown';
  /** What the cluster says the credential is (accepted), or why the answer is unknown. */
  detail: string;
}

function post(url: string, credential: FoundCredential, target: ClusterTarget): Promise<{ status: number; text: string }> {
  const body = JSON.stringify({ apiVersion: url.includes('/v1beta1/') ? 'authentication.k8s.io/v1beta1' : 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json', 'content-length': String(Buffer.byteLength(body)) };
  if (credential.token) headers.authorization = `Bearer ${credential.token}`;
  if (credential.basic) headers.authorization = `Basic ${Buffer.from(`${credential.basic.username}:${credential.basic.password}`).toString('base64')}`;
  return new Promise((resolvePost, reject) => {
    const req = httpsRequest(
      url,
      { method: 'POST', headers, ca: target.caPem, cert: credential.clientCert?.cert, key: credential.clientCert?.key, rejectUnauthorized: true, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolvePost({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Presents one credential to the cluster (a SelfSubjectReview, through the connection's own server and CA) and says whether it is accepted. */
export async function tryCredential(credential: FoundCredential, target: ClusterTarget): Promise<TryResult> {
  const base = target.server.replace(/\/+$/, '');
  for (const version of ['v1', 'v1beta1']) {
    let answer: { status: number; text: string };
    try {
      answer = await post(`${base}/apis/authentication.k8s.io/${version}/selfsubjectreviews`, credential, target);
    } catch (error) {
      const code = (error as { code?: string }).code;
      return { outcome: 'unknown', detail: `cluster unreachable at ${base} (${code ?? errorText(error, { name: false })})` };
    }
    if (answer.status === 404) continue;
    if (answer.status === 401) return { outcome: 'rejected', detail: '401' };
    if (answer.status >= 200 && answer.status < 300) {
      let username = '(identity not shown)';
      try {
        username = (JSON.parse(answer.text) as { status?: { userInfo?: { username?: string } } }).status?.userInfo?.username ?? username;
      } catch {
        // keep the placeholder
      }
      return { outcome: 'accepted', detail: `accepted as ${username}` };
    }
    // 403: the cluster knows who this is and only forbids the review itself.
    if (answer.status === 403) {
      let message = answer.text;
      try {
        message = (JSON.parse(answer.text) as { message?: string }).message ?? message;
      } catch {
        // not a Status: search the text as it is
      }
      return { outcome: 'accepted', detail: `accepted as ${/User "([^"]*)"/.exec(message)?.[1] ?? '(identity not shown)'} (403 on the review)` };
    }
    return { outcome: 'unknown', detail: `HTTP ${answer.status} from ${base}` };
  }
  return { outcome: 'unknown', detail: `${base} serves no SelfSubjectReview (authentication.k8s.io v1 or v1beta1)` };
}

/** Tries every found credential once (the same secret found twice is presented once) and sums up one control. */
export async function sideDoorVerdict(found: FoundCredential[], target: ClusterTarget, nothingFound: string): Promise<{ pass: boolean; text: string; warnings: string[] }> {
  const tried = new Map<string, Promise<TryResult>>();
  const doors: string[] = [];
  const unknown: string[] = [];
  const warnings: string[] = [];
  let rejected = 0;
  let airlock = 0;
  for (const credential of found) {
    if (credential.airlock) {
      airlock++;
      continue;
    }
    if (credential.cannotTry) {
      warnings.push(`${credential.where}: cannot try: ${credential.cannotTry}`);
      continue;
    }
    const key = createHash('sha256')
      .update(JSON.stringify([credential.token, credential.basic, credential.clientCert]))
      .digest('hex');
    if (!tried.has(key)) tried.set(key, tryCredential(credential, target));
    const result = await tried.get(key)!;
    if (result.outcome === 'accepted') doors.push(`${credential.where} (${result.detail})`);
    else if (result.outcome === 'unknown') unknown.push(`${credential.where}: ${result.detail}`);
    else rejected++;
  }
  const parts: string[] = [];
  if (doors.length) parts.push(`SIDE DOOR: the cluster ${target.server} accepts ${doors.join('; ')}`);
  if (unknown.length) parts.push(`NOT PROVEN: ${unknown.join('; ')}`);
  const triedCount = rejected + doors.length + unknown.length;
  parts.push(
    triedCount || airlock || warnings.length
      ? `${triedCount} credential(s) tried against ${target.server}: ${rejected} rejected${airlock ? `; ${airlock} Airlock exec plugin(s) (not side doors)` : ''}`
      : nothingFound,
  );
  if (warnings.length) parts.push(`warning: ${warnings.join('; ')}`);
  return { pass: doors.length === 0 && unknown.length === 0, text: parts.join('; '), warnings };
}

export interface EksTarget {
  clusterName: string;
  region: string;
  roleArn: string;
}

/** IAM must deny the agent's principal every way around Airlock: assuming the connection role, or EKS itself. */
export async function checkIamSideDoor(principalArn: string | undefined, target: EksTarget, simulator?: () => IamSimulator): Promise<{ pass: boolean; text: string }> {
  if (!principalArn) return { pass: true, text: 'the agent has no IAM principal (key agent): it holds nothing AWS accepts' };
  if (!simulator) return { pass: false, text: `cannot simulate IAM for ${principalArn}: no AWS credentials` };
  try {
    const iam = simulator();
    const account = target.roleArn.split(':')[4]!;
    const assume = await iam.simulate({
      principalArn,
      actions: ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'],
      resourceArn: target.roleArn,
      resourcePolicy: await iam.trustPolicy(target.roleArn),
    });
    const cluster = await iam.simulate({ principalArn, actions: EKS_SIDE_DOOR_ACTIONS, resourceArn: `arn:aws:eks:${target.region}:${account}:cluster/${target.clusterName}` });
    const allowed = [...assume, ...cluster].filter((result) => result.decision === 'allowed');
    return {
      pass: allowed.length === 0 && assume.length > 0 && cluster.length > 0,
      text: allowed.length
        ? `${principalArn} is ALLOWED ${allowed.map((result) => result.action).join(', ')}`
        : `IAM simulation for ${principalArn}: ${assume.length} sts actions on ${target.roleArn} and ${cluster.length} eks actions on ${target.clusterName} all denied`,
    };
  } catch (error) {
    return { pass: false, text: `IAM simulation failed: ${errorText(error, { name: false })}` };
  }
}

export async function runVerify(options: VerifyOptions): Promise<VerifyCheck[]> {
  const checks: VerifyCheck[] = [];
  const seen: Raw[] = [];
  const transcriptTexts: string[] = [];
  const { connection, agent } = options;
  const add = (control: string, pass: boolean, evidence: string, warnings: string[] = []) => {
    checks.push({ control, pass, evidence, ...(warnings.length ? { warnings } : {}) });
    options.progress(`${pass ? 'PASS' : 'FAIL'}  ${control}: ${evidence}`);
  };
  const k8s = async (client: AirlockClient, method: string, path: string, token?: string, body?: string): Promise<Raw> => {
    const headers: Record<string, string> = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) };
    const raw = await client.raw(method, `k8s/${connection}${path}`, headers, undefined, body);
    seen.push(raw);
    return raw;
  };
  const call = async <T>(client: AirlockClient, method: string, path: string, body?: unknown): Promise<{ ok: true; body: T } | { ok: false; error: ApiError }> => {
    try {
      return { ok: true, body: (await client.call<T>(method, path, body)).body };
    } catch (error) {
      if (error instanceof ApiError) return { ok: false, error };
      throw error;
    }
  };

  // The connection's policy and upstream server (admin), to pick requests and to look for side doors.
  let policy: Policy | undefined;
  let upstreamServer: string | undefined;
  let upstreamCaPem: string | undefined;
  let credentialType = 'unknown';
  let eks: EksTarget | undefined;
  if (options.admin) {
    const shown = await call<{ policy: Policy; server: string; caPem?: string; credential: { type: string; clusterName?: string; region?: string; roleArn?: string } }>(
      options.admin,
      'GET',
      `v1/connections/${encodeURIComponent(connection)}`,
    );
    if (shown.ok) {
      policy = shown.body.policy;
      upstreamServer = shown.body.server;
      upstreamCaPem = shown.body.caPem;
      credentialType = shown.body.credential.type;
      const { clusterName, region, roleArn } = shown.body.credential;
      if (clusterName && region && roleArn) eks = { clusterName, region, roleArn };
    }
  }
  const chosen = policy ? chooseRequests(policy) : {};

  // identity: a wrong key gets nothing.
  const wrong = await call(options.wrongKey, 'POST', 'v1/tokens', { connection });
  const anonymous = await k8s(options.anonymous, 'GET', '/api');
  add(
    'identity',
    !wrong.ok && wrong.error.status === 401 && anonymous.status === 401,
    `wrong agent key -> ${wrong.ok ? 'TOKEN ISSUED' : `${wrong.error.status} ${wrong.error.code}`}; no token on /k8s -> ${anonymous.status} ${cause(anonymous)}`,
  );

  // timing: no window, no token.
  const noWindow = await call(agent, 'POST', 'v1/tokens', { connection, window: `gr_${randomBytes(16).toString('base64url')}` });
  add(
    'timing: no window',
    !noWindow.ok && noWindow.error.status === 403,
    `token for a window that does not exist -> ${noWindow.ok ? 'TOKEN ISSUED' : `${noWindow.error.status} ${noWindow.error.code}`}`,
  );

  // timing: a bounded window.
  const requested = await call<{ id: string; status: string; expiresAt?: string; approvalId?: string }>(agent, 'POST', 'v1/access-requests', {
    connection,
    duration: '5m',
    reason: 'airlock verify: boundary proof',
    ticket: 'airlock-verify',
  });
  if (!requested.ok) {
    add('timing: window', false, `window request refused: ${requested.error.status} ${requested.error.message}`);
    return finish();
  }
  let window = requested.body;
  if (window.status === 'pending' && window.approvalId) {
    await approve(window.approvalId, 'window');
    const deadline = Date.now() + options.timeoutSeconds * 1000;
    while (window.status === 'pending' && Date.now() < deadline) {
      await sleep(1000);
      const status = await call<typeof window>(agent, 'GET', `v1/access-requests/${window.id}`);
      if (status.ok) window = status.body;
    }
  }
  const bounded = window.status === 'active' && !!window.expiresAt && Date.parse(window.expiresAt) <= Date.now() + 5 * 60_000 + 5000;
  add('timing: window', bounded, `window ${window.id} ${window.status}${window.expiresAt ? ` until ${window.expiresAt}` : ''}${window.approvalId ? ` (approval ${window.approvalId})` : ''}`);
  if (window.status !== 'active') return finish();

  const issued = await call<{ token: string; expiresAt: string; window: string }>(agent, 'POST', 'v1/tokens', { connection, window: window.id });
  if (!issued.ok) {
    add('identity: token', false, `token refused: ${issued.error.message}`);
    return finish();
  }
  const token = issued.body.token;
  const claims = decodeClaims(token);
  const exp = Number(claims.exp) * 1000;
  add(
    'identity: token',
    claims.sub === options.agentId && claims.aud === connection && claims.win === window.id && exp <= Date.parse(window.expiresAt!) && exp - Date.now() <= 15 * 60_000 + 5000,
    `token ${String(claims.jti)} for agent ${String(claims.sub)} on ${String(claims.aud)}, window ${String(claims.win)}, expires ${new Date(exp).toISOString()} (≤ 15 min, ≤ window end)`,
  );

  // scope + record: an allowed read passes and is recorded with its transcript.
  if (!chosen.read) {
    add('scope + record', false, options.admin ? 'the policy allows no read this command knows how to make' : 'no admin access: cannot read the policy or the records');
  } else {
    const read = await k8s(agent, 'GET', chosen.read, token);
    const evidence = await recordEvidence(requestId(read), 'allowed');
    add('scope + record', read.status === 200 && evidence.pass, `GET ${chosen.read} -> ${read.status}; ${evidence.text}`);
  }

  // scope: outside the policy is refused, and recorded.
  if (!chosen.refused) {
    add('scope: refused', false, 'found no request this policy refuses (does it allow everything?)');
  } else {
    const refused = await k8s(agent, 'GET', chosen.refused, token);
    const evidence = await recordEvidence(requestId(refused), 'denied');
    add('scope: refused', refused.status === 403 && statusOf(refused).kind === 'Status' && evidence.pass, `GET ${chosen.refused} -> ${refused.status} ${cause(refused)}; ${evidence.text}`);
  }

  // mcp: the same read as an MCP tool call (/mcp) meets the same path and is recorded naming the tool;
  // the MCP token is refused on /k8s, and /mcp without a token gets nothing.
  add('mcp', ...(await mcpCheck()));

  // scope: escalation: the policy against every credential-minting and rights-widening request, and
  // one of them tried for real (minting a ServiceAccount token), which must be refused before the cluster.
  if (!policy) {
    add('scope: escalation', false, 'no admin access: cannot read the policy');
  } else {
    const exposure = escalationExposure(policy);
    const named = exposure.named.length ? `; allowed because a rule names them: ${exposure.named.join('; ')}` : '';
    const tokenPath = `/api/v1/namespaces/${exposure.namespace}/serviceaccounts/default/token`;
    if (exposure.named.some((what) => what.startsWith('create serviceaccounts/token'))) {
      add(
        'scope: escalation',
        exposure.loose.length === 0,
        `${exposure.loose.length ? `let through by a broad rule: ${exposure.loose.join('; ')}` : 'no escalation is let through by a broad rule'}${named}`,
      );
    } else {
      const minted = await k8s(agent, 'POST', `${tokenPath}?dryRun=All`, token, JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: {} }));
      const refusedHere = minted.status === 403 && statusOf(minted).message?.startsWith('airlock:') === true;
      add(
        'scope: escalation',
        exposure.loose.length === 0 && refusedHere,
        `${exposure.loose.length ? `let through by a broad rule: ${exposure.loose.join('; ')}` : 'no escalation is let through by a broad rule'}; POST ${tokenPath} -> ${minted.status} ${cause(minted)}${named}`,
      );
    }
  }

  // approval: a destructive request is held, recorded, and passes once after approval.
  if (!chosen.destructive) {
    add('approval', false, 'no admin access: cannot read the policy to find a destructive request');
  } else if (chosen.destructive.effect === 'deny') {
    const denied = await k8s(agent, 'DELETE', `${chosen.destructive.path}?dryRun=All`, token);
    add('approval', denied.status === 403, `DELETE ${chosen.destructive.path} (dry run) is refused by policy outright -> ${denied.status} ${cause(denied)} (no approval needed)`);
  } else if (chosen.destructive.effect === 'allow') {
    add('approval', false, `DELETE ${chosen.destructive.path} is allowed WITHOUT approval by this policy`);
  } else {
    const path = `${chosen.destructive.path}?dryRun=All`;
    const held = await k8s(agent, 'DELETE', path, token);
    const approvalId = statusOf(held).details?.name ?? '';
    const heldRecord = await recordEvidence(requestId(held), 'held');
    if (held.status !== 403 || cause(held) !== 'approval_required' || !approvalId) {
      add('approval', false, `DELETE ${path} -> ${held.status} ${cause(held)} (expected held for approval)`);
    } else {
      await approve(approvalId, 'request');
      const decided = await waitApproval(approvalId);
      const passed = await k8s(agent, 'DELETE', path, token);
      const passedThrough = cause(passed) === '' || statusOf(passed).message?.startsWith('airlock:') !== true;
      const again = await k8s(agent, 'DELETE', path, token);
      add(
        'approval',
        heldRecord.pass && decided === 'approved' && passedThrough && cause(again) === 'approval_required',
        `DELETE ${path} held (approval ${approvalId}; ${heldRecord.text}); ${decided}; retry reached the cluster (${passed.status}); identical retry held again (${again.status} ${cause(again)})`,
      );
    }
  }

  // timing again: after the window ends, the next request is refused.
  const ended = await call(agent, 'POST', `v1/access-requests/${window.id}/end`);
  const after = await k8s(agent, 'GET', chosen.read ?? '/api', token);
  add('timing: window end', ended.ok && after.status === 403 && cause(after) === 'window_revoked', `window ${window.id} ended; next request with the same token -> ${after.status} ${cause(after)}`);

  // side doors: every credential this process could use, presented to the cluster itself.
  const env = options.env ?? process.env;
  const files = reachableKubeconfigs(env);
  const fromKubeconfigs = kubeconfigCredentials(
    files,
    (env.KUBECONFIG ?? '')
      .split(delimiter)
      .filter(Boolean)
      .map((file) => resolve(file)),
  );
  const serviceAccountPath = options.serviceAccountTokenPath ?? SERVICE_ACCOUNT_TOKEN_PATH;
  const ambient = ambientCredentials(env, serviceAccountPath);
  const doorChecks: { control: string; found: FoundCredential[]; none: string; extra?: string }[] = [
    {
      control: 'side door: kubeconfig',
      found: fromKubeconfigs.found,
      none: `${files.length} kubeconfig file(s) (${files.join(', ') || 'none present'}): no credential but Airlock's`,
      extra: fromKubeconfigs.unreadable.length ? `KUBECONFIG file(s) not readable as kubeconfig: ${fromKubeconfigs.unreadable.join(', ')}` : undefined,
    },
    { control: 'side door: service account', found: ambient.filter((c) => c.kind === 'service account'), none: `no token at ${serviceAccountPath}` },
    { control: 'side door: environment', found: ambient.filter((c) => c.kind === 'environment'), none: `none of ${TOKEN_ENV_VARS.join(', ')} is set` },
  ];
  for (const door of doorChecks) {
    if (!upstreamServer) {
      add(door.control, false, `no admin access: the connection server is unknown, so ${door.found.length} credential(s) found cannot be tried`);
      continue;
    }
    const verdict = await sideDoorVerdict(door.found, { server: upstreamServer, caPem: upstreamCaPem }, door.none);
    const warnings = door.extra ? [...verdict.warnings, door.extra] : verdict.warnings;
    add(door.control, verdict.pass, door.extra ? `${verdict.text}; warning: ${door.extra}` : verdict.text, warnings);
  }
  if (credentialType !== 'eks' || !eks) {
    add('side door: IAM', credentialType === 'token', `${credentialType} connection: the cluster credential exists only in Airlock; no IAM path to the cluster`);
  } else {
    const iamCheck = await iamSideDoor(eks);
    add('side door: IAM', iamCheck.pass, iamCheck.text);
  }
  const leaks = seen.filter((raw) => (options.upstreamToken && raw.text.includes(options.upstreamToken)) || /k8s-aws-v1\./.test(raw.text) || raw.headers.authorization !== undefined);
  const transcriptLeaks = options.upstreamToken ? transcriptTexts.filter((text) => text.includes(options.upstreamToken!)).length : 0;
  add(
    'side door: credential',
    leaks.length === 0 && transcriptLeaks === 0,
    `${seen.length} responses and ${transcriptTexts.length} transcripts from this run ${options.upstreamToken ? 'searched for the connection credential' : 'searched for EKS tokens and Authorization headers'}: ${leaks.length + transcriptLeaks} found`,
  );
  return finish();

  /** The agent's own IAM principal must not be able to assume the connection role or use EKS. */
  async function iamSideDoor(target: EksTarget): Promise<{ pass: boolean; text: string }> {
    if (!options.admin) return { pass: false, text: 'no admin access: the agent principal is unknown' };
    const agents = await call<{ items: { id: string; principalArn?: string }[] }>(options.admin, 'GET', 'v1/agents');
    const principalArn = agents.ok ? agents.body.items.find((item) => item.id === options.agentId)?.principalArn : undefined;
    return checkIamSideDoor(principalArn, target, options.iam);
  }

  function finish(): VerifyCheck[] {
    return checks;
  }

  async function approve(approvalId: string, kind: string): Promise<void> {
    if (!options.approveWithLink) {
      options.progress(`waiting for a human to approve the ${kind} (approval ${approvalId}); approvers have been emailed`);
      return;
    }
    const link = await linkFromOutbox(approvalId);
    if (!link) {
      options.progress(`no emailed link for ${approvalId} in ${options.outboxDir ?? '(no outbox)'}; waiting for a human`);
      return;
    }
    const url = new URL(link);
    const page = await options.anonymous.raw('GET', url.pathname.slice(1) + url.search, {}, url.origin);
    const form = /name="form" value="([^"]+)"/.exec(page.text)?.[1];
    if (!form) return;
    const body = new URLSearchParams({ sig: url.searchParams.get('sig')!, form, decision: 'approve' }).toString();
    await options.anonymous.raw('POST', url.pathname.slice(1), { 'content-type': 'application/x-www-form-urlencoded' }, url.origin, body);
  }

  async function linkFromOutbox(approvalId: string): Promise<string | undefined> {
    const deadline = Date.now() + 15_000;
    while (options.outboxDir && Date.now() < deadline) {
      const file = existsSync(options.outboxDir) ? readdirSync(options.outboxDir).find((name) => name.includes(approvalId)) : undefined;
      if (file) return /https?:\/\/\S+\/approvals\/\S+/.exec(readFileSync(join(options.outboxDir, file), 'utf8'))?.[0];
      await sleep(250);
    }
    return undefined;
  }

  async function waitApproval(approvalId: string): Promise<string> {
    const deadline = Date.now() + options.timeoutSeconds * 1000;
    for (;;) {
      const status = await call<{ status: string }>(agent, 'GET', `v1/approvals/${approvalId}`);
      const value = status.ok ? status.body.status : `error ${status.error.status}`;
      if (value !== 'pending' || Date.now() > deadline) return value;
      await sleep(1000);
    }
  }

  async function mcpCheck(): Promise<[boolean, string]> {
    if (!chosen.read) return [false, options.admin ? 'the policy allows no read this command knows how to make' : 'no admin access: cannot read the policy or the records'];
    let mcpToken: string;
    try {
      mcpToken = (await agent.call<{ access_token: string }>('POST', 'v1/mcp/token', { grant_type: 'client_credentials' }, { form: true })).body.access_token;
    } catch (error) {
      return [false, `MCP token refused: ${error instanceof Error ? error.message : String(error)}`];
    }
    const kube = parseKubeRequest('GET', chosen.read, {});
    const message = {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'list', arguments: { connection, resource: kube.resource, apiVersion: /^\/apis?\/((?:[^/]+\/)?v[^/]+)\//.exec(chosen.read)?.[1], namespace: kube.namespace, limit: 1 } },
    };
    const post = (authorization?: string) =>
      agent.raw('POST', 'mcp', { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(authorization ? { authorization } : {}) }, undefined, JSON.stringify(message));
    const answered = await post(`Bearer ${mcpToken}`);
    const result = (JSON.parse(answered.text || '{}') as { result?: { isError?: boolean; _meta?: Record<string, unknown> } }).result;
    const ids = result?._meta?.['airlock.dev/requestIds'];
    const id = Array.isArray(ids) && typeof ids[0] === 'string' ? ids[0] : '';
    const evidence = await recordEvidence(id, 'allowed');
    const shown = options.admin && id ? await call<{ record: { mcpTool?: string; mcpCallId?: string } }>(options.admin, 'GET', `v1/audit/${id}`) : undefined;
    const named = shown?.ok ? shown.body.record : undefined;
    const onK8s = await k8s(agent, 'GET', chosen.read, mcpToken);
    const anonymous = await post();
    const pass = answered.status === 200 && result?.isError === false && evidence.pass && named?.mcpTool === 'list' && !!named.mcpCallId && onK8s.status === 401 && anonymous.status === 401;
    return [
      pass,
      `tools/call list (GET ${chosen.read}) -> ${answered.status}${result?.isError ? ' TOOL ERROR' : ''}; ${evidence.text}; record names tool ${named?.mcpTool ?? 'NONE'}, call ${named?.mcpCallId ?? 'NONE'}; MCP token on /k8s -> ${onK8s.status}; /mcp without a token -> ${anonymous.status}`,
    ];
  }

  async function recordEvidence(id: string, decision: string): Promise<{ pass: boolean; text: string }> {
    if (!options.admin) return { pass: false, text: 'no admin access: records not checked' };
    if (!id) return { pass: false, text: 'no request id in the response' };
    const deadline = Date.now() + 10_000;
    for (;;) {
      const shown = await call<{ record: { agent: string; decision: string; phase: string; status?: number }; transcript: { agent?: string } | null }>(options.admin, 'GET', `v1/audit/${id}`);
      if (shown.ok && shown.body.record.phase !== 'started') {
        if (shown.body.transcript) transcriptTexts.push(JSON.stringify(shown.body.transcript));
        const { record, transcript } = shown.body;
        const pass = record.decision === decision && transcript?.agent === record.agent && record.phase === 'complete';
        return { pass, text: `record ${id}: agent ${record.agent}, ${record.decision}, ${record.status ?? '-'}, ${record.phase}; transcript ${transcript ? `names ${transcript.agent}` : 'MISSING'}` };
      }
      if (Date.now() > deadline) return { pass: false, text: `record ${id} ${shown.ok ? 'not completed' : 'missing'}` };
      await sleep(200);
    }
  }
}
