// `airlock verify --connection NAME`: walks the boundary as an agent meets it
// and prints one line of evidence per control. It only ever reads, or
// deletes an object that does not exist with dryRun=All: it cannot change the
// cluster. Requests it uses are chosen with the real policy engine from the
// connection's own policy.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseKubeRequest } from '../lambdas/core/kube-request.ts';
import { evaluatePolicy, type Policy } from '../lambdas/core/policy.ts';
import type { AirlockClient } from './client.ts';
import { ApiError } from './client.ts';
import { EKS_SIDE_DOOR_ACTIONS, type IamSimulator } from './iam-simulator.ts';

export interface VerifyCheck {
  control: string;
  pass: boolean;
  evidence: string;
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

function decodeClaims(token: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Kubeconfig files an agent process could read: KUBECONFIG and ~/.kube/config. */
export function reachableKubeconfigs(env: NodeJS.ProcessEnv = process.env): string[] {
  const files = (env.KUBECONFIG ?? '').split(':').filter(Boolean);
  files.push(join(env.HOME ?? homedir(), '.kube', 'config'));
  return [...new Set(files)].filter((file) => existsSync(file));
}

/** Contexts in those files that hold a credential for `server` other than the Airlock exec plugin. */
export function kubeconfigSideDoors(files: string[], server: string): string[] {
  const found: string[] = [];
  const normalize = (url: string) => url.replace(/\/+$/, '').toLowerCase();
  for (const file of files) {
    let config: { clusters?: { name: string; cluster?: { server?: string } }[]; users?: { name: string; user?: Record<string, unknown> }[]; contexts?: { name: string; context?: { cluster?: string; user?: string } }[] };
    try {
      config = (parseYaml(readFileSync(file, 'utf8')) ?? {}) as typeof config;
    } catch {
      continue;
    }
    const clusters = new Set((config.clusters ?? []).filter((c) => c.cluster?.server && normalize(c.cluster.server) === normalize(server)).map((c) => c.name));
    for (const context of config.contexts ?? []) {
      if (!context.context?.cluster || !clusters.has(context.context.cluster)) continue;
      const user = (config.users ?? []).find((u) => u.name === context.context?.user)?.user ?? {};
      const credentials = ['token', 'tokenFile', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'username', 'password', 'auth-provider', 'exec'].filter((key) => user[key] !== undefined);
      if (credentials.length) found.push(`${file}: context ${context.name} (${credentials.join(', ')})`);
    }
  }
  return found;
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
    return { pass: false, text: `IAM simulation failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}

export async function runVerify(options: VerifyOptions): Promise<VerifyCheck[]> {
  const checks: VerifyCheck[] = [];
  const seen: Raw[] = [];
  const transcriptTexts: string[] = [];
  const { connection, agent } = options;
  const add = (control: string, pass: boolean, evidence: string) => {
    checks.push({ control, pass, evidence });
    options.progress(`${pass ? 'PASS' : 'FAIL'}  ${control}: ${evidence}`);
  };
  const k8s = async (client: AirlockClient, method: string, path: string, token?: string): Promise<Raw> => {
    const raw = await client.raw(method, `k8s/${connection}${path}`, token ? { authorization: `Bearer ${token}` } : {});
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
  let credentialType = 'unknown';
  let eks: EksTarget | undefined;
  if (options.admin) {
    const shown = await call<{ policy: Policy; server: string; credential: { type: string; clusterName?: string; region?: string; roleArn?: string } }>(options.admin, 'GET', `v1/connections/${encodeURIComponent(connection)}`);
    if (shown.ok) {
      policy = shown.body.policy;
      upstreamServer = shown.body.server;
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
  add('timing: no window', !noWindow.ok && noWindow.error.status === 403, `token for a window that does not exist -> ${noWindow.ok ? 'TOKEN ISSUED' : `${noWindow.error.status} ${noWindow.error.code}`}`);

  // timing: a bounded window.
  const requested = await call<{ id: string; status: string; expiresAt?: string; approvalId?: string }>(agent, 'POST', 'v1/access-requests', { connection, duration: '5m', reason: 'airlock verify: boundary proof', ticket: 'airlock-verify' });
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

  // side doors.
  const files = reachableKubeconfigs();
  if (!upstreamServer) {
    add('side door: kubeconfig', false, 'no admin access: the connection server is unknown');
  } else {
    const doors = kubeconfigSideDoors(files, upstreamServer);
    add('side door: kubeconfig', doors.length === 0, doors.length ? `credentials for ${upstreamServer} in ${doors.join('; ')}` : `checked ${files.length} kubeconfig file(s) (${files.join(', ') || 'none present'}): none holds a credential for ${upstreamServer}`);
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

