// Load: N agents × M requests, concurrently, through Airlock (`npm start`'s
// stack, its own process) against the test kube-apiserver; a fixed mix of
// allowed reads, policy refusals, refusals outside the window and bad tokens.
// Then the proof: for every agent, its records are exactly the requests it
// sent (by the x-airlock-request-id of each response), no record twice, every
// record complete, every transcript in S3. Bounded (hard timeout), loopback only.
//
//   npm run bench -- load [--agents 20] [--requests 200] [--sockets 4] [--timeout 600]
import { parseArgs } from 'node:util';
import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { down, up, type UpResult } from '../test/cluster/harness.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION, TRANSCRIPT_BUCKET } from '../local/stack.ts';
import { transcriptKeyFor } from '../lambdas/core/transcripts.ts';
import { agentToken, createConnection, keepAliveClient, readText, startStackProcess, stats, stopStack, windowToken, type StackProcess } from './support.ts';

const CONNECTION = 'load';
/** Same cluster and policy; every window on it is revoked before the run. */
const CLOSED = 'load-closed';
const UNAUTHENTICATED = '(unauthenticated)';
const SETUP_CONCURRENCY = 5;
const SETTLE_MS = 60_000;

type Kind = 'get' | 'list' | 'secrets' | 'staging' | 'closed' | 'bad-token';
type Category = 'allowed' | 'policy' | 'window' | 'bad-token';

const KINDS: Record<Kind, { category: Category; connection: string; path: string; status: number; what: string }> = {
  get: { category: 'allowed', connection: CONNECTION, path: '/api/v1/namespaces/prod/configmaps/app-config', status: 200, what: 'GET configmap in prod' },
  list: { category: 'allowed', connection: CONNECTION, path: '/api/v1/namespaces/prod/pods', status: 200, what: 'LIST pods in prod' },
  secrets: { category: 'policy', connection: CONNECTION, path: '/api/v1/namespaces/prod/secrets', status: 403, what: 'LIST secrets in prod (deny rule)' },
  staging: { category: 'policy', connection: CONNECTION, path: '/api/v1/namespaces/staging/pods', status: 403, what: 'LIST pods in staging (no rule)' },
  closed: { category: 'window', connection: CLOSED, path: '/api/v1/namespaces/prod/pods', status: 403, what: `LIST pods in prod on "${CLOSED}" (window revoked)` },
  'bad-token': { category: 'bad-token', connection: CONNECTION, path: '/api/v1/namespaces/prod/pods', status: 401, what: 'LIST pods in prod, token garbage/truncated/tampered/other connection' },
};
/** The fixed mix: 20 slots (70% allowed, 20% policy, 5% window, 5% bad token); agent i starts at slot i. */
const SLOTS: Kind[] = ['get', 'list', 'secrets', 'get', 'list', 'staging', 'get', 'list', 'closed', 'get', 'list', 'secrets', 'get', 'list', 'bad-token', 'get', 'list', 'staging', 'get', 'list'];
const CATEGORIES: Category[] = ['allowed', 'policy', 'window', 'bad-token'];

const policy = 'windowApproval: none\nrules:\n  - effect: deny\n    resources: [secrets]\n  - effect: allow\n    verbs: [get, list, watch]\n    namespaces: [prod]\n';

interface Sample {
  agent: string;
  kind: Kind;
  status: number;
  ms: number;
  requestId?: string;
  error?: string;
}

interface AuditItem {
  id: string;
  time: string;
  agent: string;
  connection: string;
  decision: string;
  status: number | null;
  phase?: string;
}

interface Agent {
  name: string;
  token: string;
  closedToken: string;
}

/** The bad tokens an agent sends, in turn. */
function badToken(agent: Agent, turn: number): string {
  const [header, payload, signature = ''] = agent.token.split('.');
  const middle = Math.floor(signature.length / 2);
  const flipped = `${signature.slice(0, middle)}${signature[middle] === 'A' ? 'B' : 'A'}${signature.slice(middle + 1)}`;
  const tokens = ['not-a-token', agent.token.slice(0, -12), `${header}.${payload}.${flipped}`, agent.closedToken];
  return tokens[turn % tokens.length]!;
}

function isLoopback(url: string): boolean {
  return ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname);
}

/** Runs `work` over `items`, at most `limit` at a time. */
async function pool<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]!);
      }
    }),
  );
  return results;
}

async function auditList(stack: StackProcess, filter: string[]): Promise<AuditItem[]> {
  const listed = await stack.cli(['--json', 'audit', 'list', ...filter, '--limit', '1000', '--all']);
  if (listed.code) throw new Error(`audit list ${filter.join(' ')}: ${listed.stdout}${listed.stderr}`);
  return (JSON.parse(listed.stdout) as { items: AuditItem[] }).items;
}

/** Record ids named by transcript objects under transcripts/{connection}/ (one paginated listing). */
async function transcriptIds(s3: S3Client, connection: string): Promise<string[]> {
  const ids: string[] = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: TRANSCRIPT_BUCKET, Prefix: `transcripts/${connection}/`, ContinuationToken }));
    for (const object of page.Contents ?? []) ids.push(/([^/]+)\.json$/.exec(object.Key ?? '')?.[1] ?? object.Key ?? '');
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  return ids;
}

const sameSet = (a: Set<string>, b: Set<string>) => a.size === b.size && [...a].every((id) => b.has(id));
const f = (n: number) => n.toFixed(2).padStart(8);

export async function runLoadBench(args: string[]): Promise<number> {
  let options: { agents: number; requests: number; sockets: number; timeout: number };
  try {
    const { values } = parseArgs({
      args,
      options: { agents: { type: 'string', default: '20' }, requests: { type: 'string', default: '200' }, sockets: { type: 'string', default: '4' }, timeout: { type: 'string', default: '600' } },
    });
    options = { agents: Number(values.agents), requests: Number(values.requests), sockets: Number(values.sockets), timeout: Number(values.timeout) };
    for (const [name, value] of Object.entries(options)) if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: a positive integer`);
    if (options.agents > 99) throw new Error('--agents: at most 99');
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\nusage: npm run bench -- load [--agents 20] [--requests 200] [--sockets 4] [--timeout 600 (seconds)]`);
    return 2;
  }

  const aborted = new AbortController();
  const held: { cluster?: UpResult; stack?: StackProcess; clients: { close(): void }[] } = { clients: [] };
  const run = runLoad(options, aborted.signal, held);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<number>((resolve) => {
    timer = setTimeout(() => {
      console.error(`load: hard timeout after ${options.timeout} s; stopping everything`);
      resolve(124);
    }, options.timeout * 1000);
  });
  try {
    return await Promise.race([run, timeout]);
  } catch (error) {
    console.error(`load: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return 1;
  } finally {
    clearTimeout(timer);
    aborted.abort();
    // Nothing new starts; a step in flight (each is bounded: the stack's start at 30 s, a request
    // at 30 s) finishes and registers what it started. Then every socket closes and the processes stop.
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([run.catch(() => undefined), new Promise((resolve) => (grace = setTimeout(resolve, 35_000)))]);
    clearTimeout(grace);
    for (const client of held.clients) client.close();
    if (held.stack) await stopStack(held.stack);
    if (held.cluster?.started) await down({ quiet: true });
  }
}

async function runLoad(
  options: { agents: number; requests: number; sockets: number },
  signal: AbortSignal,
  held: { cluster?: UpResult; stack?: StackProcess; clients: { close(): void }[] },
): Promise<number> {
  const cluster = await up({ ownerPid: process.pid });
  held.cluster = cluster;
  if (signal.aborted) return 124;
  const stack = await startStackProcess();
  held.stack = stack;
  if (signal.aborted) return 124;
  for (const url of [stack.url, stack.endpoints.s3, cluster.info.server]) {
    if (!isLoopback(url)) throw new Error(`${url} is not on loopback; the load benchmark runs on loopback only`);
  }

  // Two connections to the same cluster; every agent gets a window and a token on both, then "load-closed" is revoked.
  for (const name of [CONNECTION, CLOSED]) await createConnection(stack, cluster.info, name, policy);
  const setupStarted = performance.now();
  const names = Array.from({ length: options.agents }, (_, i) => `load-agent-${String(i + 1).padStart(2, '0')}`);
  const agents: Agent[] = await pool(names, SETUP_CONCURRENCY, async (name) => {
    if (signal.aborted) throw new Error('aborted');
    const token = await agentToken(stack, CONNECTION, name);
    return { name, token, closedToken: await windowToken(stack, CLOSED, name) };
  });
  const revoked = await stack.cli(['revoke', '--connection', CLOSED]);
  if (revoked.code) throw new Error(revoked.stderr);
  const ca = readText(`${stack.home}/ca.crt`);

  const counts = Object.fromEntries(SLOTS.map((kind) => [kind, SLOTS.filter((slot) => slot === kind).length])) as Record<Kind, number>;
  const share = (category: Category) => (SLOTS.filter((kind) => KINDS[kind].category === category).length / SLOTS.length) * 100;
  console.log(
    `Airlock load benchmark — ${options.agents} agents × ${options.requests} requests, ${options.sockets} keep-alive sockets (and requests in flight) per agent, recording on; set-up ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`,
  );
  console.log(`mix per ${SLOTS.length} requests (agent i starts at slot i): ${CATEGORIES.map((category) => `${category} ${share(category)}%`).join(', ')}`);
  for (const kind of Object.keys(KINDS) as Kind[])
    console.log(`  ${String(counts[kind]).padStart(2)}/${SLOTS.length}  ${KINDS[kind].category.padEnd(9)}  ${KINDS[kind].what} -> ${KINDS[kind].status}`);

  // The load: every agent at once, each with its own client, its requests in order over its sockets.
  const samples: Sample[] = [];
  const started = performance.now();
  await Promise.all(
    agents.map(async (agent, index) => {
      const client = keepAliveClient(ca, options.sockets);
      held.clients.push(client);
      let next = 0;
      let bad = 0;
      try {
        await Promise.all(
          Array.from({ length: options.sockets }, async () => {
            while (next < options.requests && !signal.aborted) {
              const kind = SLOTS[(index + next++) % SLOTS.length]!;
              const spec = KINDS[kind];
              const token = kind === 'bad-token' ? badToken(agent, bad++) : kind === 'closed' ? agent.closedToken : agent.token;
              try {
                const sent = await client.get(`${stack.url}/k8s/${spec.connection}${spec.path}`, token);
                samples.push({ agent: agent.name, kind, ...sent });
              } catch (error) {
                samples.push({ agent: agent.name, kind, status: 0, ms: 0, error: error instanceof Error ? error.message : String(error) });
              }
            }
          }),
        );
      } finally {
        client.close();
      }
    }),
  );
  const wallMs = performance.now() - started;
  if (signal.aborted) return 124;

  const answered = samples.filter((sample) => !sample.error);
  const overall = stats(
    answered.map((sample) => sample.ms),
    wallMs,
  );
  console.log(`\nthroughput: ${samples.length} requests in ${(wallMs / 1000).toFixed(2)} s = ${overall.rps.toFixed(0)} req/s (all agents, whole run)`);
  console.log('category      count  p50 ms   p99 ms');
  console.log(`${'all'.padEnd(12)} ${String(overall.count).padStart(6)} ${f(overall.p50)} ${f(overall.p99)}`);
  for (const category of CATEGORIES) {
    const of = stats(
      answered.filter((sample) => KINDS[sample.kind].category === category).map((sample) => sample.ms),
      wallMs,
    );
    console.log(`${category.padEnd(12)} ${String(of.count).padStart(6)} ${f(of.p50)} ${f(of.p99)}`);
  }

  // Verification.
  const checks: { name: string; pass: boolean; evidence: string }[] = [];
  const check = (name: string, pass: boolean, evidence: string) => checks.push({ name, pass, evidence });
  const errors = samples.filter((sample) => sample.error);
  const unexpected = answered.filter((sample) => sample.status !== KINDS[sample.kind].status);
  const noId = answered.filter((sample) => !sample.requestId);
  check(
    'every request answered',
    errors.length === 0 && samples.length === options.agents * options.requests,
    `${samples.length} sent of ${options.agents * options.requests}, ${errors.length} transport errors${errors[0] ? ` (first: ${errors[0].error})` : ''}`,
  );
  check(
    'every answer as expected',
    unexpected.length === 0 && noId.length === 0,
    `${unexpected.length} unexpected statuses${unexpected[0] ? ` (first: ${unexpected[0].kind} -> ${unexpected[0].status})` : ''}, ${noId.length} without x-airlock-request-id`,
  );

  // Records complete after the response has streamed: wait (bounded) until every one is written and complete.
  const settleStarted = performance.now();
  let byConnection: AuditItem[];
  for (;;) {
    byConnection = [...(await auditList(stack, ['--connection', CONNECTION])), ...(await auditList(stack, ['--connection', CLOSED]))];
    const settled = byConnection.length >= answered.length && byConnection.every((item) => item.phase !== 'started');
    if (settled || performance.now() - settleStarted > SETTLE_MS || signal.aborted) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  console.log(`\nrecords settled in ${((performance.now() - settleStarted) / 1000).toFixed(1)} s: ${byConnection.length} on "${CONNECTION}" and "${CLOSED}"`);

  // Per agent: its records are exactly the requests it sent with its own tokens.
  const all: AuditItem[] = [];
  const perAgentFailures: string[] = [];
  for (const agent of agents) {
    if (signal.aborted) return 124;
    const records = await auditList(stack, ['--agent', agent.name]);
    all.push(...records);
    const sent = answered.filter((sample) => sample.agent === agent.name && sample.kind !== 'bad-token');
    const expected = new Map(sent.map((sample) => [sample.requestId ?? '', sample]));
    const allowedSent = sent.filter((sample) => KINDS[sample.kind].category === 'allowed').length;
    const allowed = records.filter((item) => item.decision === 'allowed').length;
    const denied = records.filter((item) => item.decision === 'denied').length;
    const wrong = records.filter((item) => {
      const sample = expected.get(item.id);
      return (
        !sample ||
        item.decision !== (KINDS[sample.kind].category === 'allowed' ? 'allowed' : 'denied') ||
        item.status !== KINDS[sample.kind].status ||
        item.connection !== KINDS[sample.kind].connection ||
        item.agent !== agent.name
      );
    });
    const ok =
      records.length === sent.length &&
      allowed === allowedSent &&
      denied === sent.length - allowedSent &&
      sameSet(new Set(records.map((item) => item.id)), new Set(expected.keys())) &&
      wrong.length === 0;
    if (!ok)
      perAgentFailures.push(`${agent.name}: ${records.length} records (${allowed} allowed, ${denied} denied) for ${sent.length} sent (${allowedSent} allowed), ${wrong.length} not matching a request`);
  }
  const agentRecords = all.length;
  check(
    'records == requests, per agent',
    perAgentFailures.length === 0,
    perAgentFailures.length
      ? perAgentFailures.slice(0, 3).join('; ')
      : `${options.agents} agents: ${agentRecords} records for ${answered.filter((sample) => sample.kind !== 'bad-token').length} authenticated requests; allowed/denied and request ids match for each`,
  );

  // Bad tokens: recorded, without an agent, on the connection they were sent to.
  const unauthenticated = byConnection.filter((item) => item.agent === UNAUTHENTICATED);
  all.push(...unauthenticated);
  const badSent = answered.filter((sample) => sample.kind === 'bad-token');
  const badIds = new Set(badSent.map((sample) => sample.requestId ?? ''));
  const badWrong = unauthenticated.filter((item) => !badIds.has(item.id) || item.decision !== 'denied' || item.status !== 401 || item.connection !== CONNECTION);
  check(
    `bad tokens recorded as ${UNAUTHENTICATED}`,
    unauthenticated.length === badSent.length && sameSet(new Set(unauthenticated.map((item) => item.id)), badIds) && badWrong.length === 0,
    `${unauthenticated.length} records for ${badSent.length} bad-token requests, ${badWrong.length} not matching (denied, 401, "${CONNECTION}")`,
  );
  const others = byConnection.filter((item) => item.agent !== UNAUTHENTICATED && !agents.some((agent) => agent.name === item.agent));
  check(
    'nothing else recorded',
    byConnection.length === agentRecords + unauthenticated.length && others.length === 0,
    `${byConnection.length} records by connection = ${agentRecords} by agent + ${unauthenticated.length} unauthenticated; ${others.length} of unknown agents`,
  );

  const ids = new Set(all.map((item) => item.id));
  check('no duplicate record ids', ids.size === all.length, `${all.length} records, ${ids.size} distinct ids`);
  const incomplete = all.filter((item) => item.phase !== 'complete' || typeof item.status !== 'number');
  check(
    'every record complete',
    incomplete.length === 0,
    `${all.length - incomplete.length} of ${all.length} with phase "complete" and a status${incomplete[0] ? ` (first not: ${incomplete[0].id} phase ${incomplete[0].phase ?? '-'} status ${incomplete[0].status ?? '-'})` : ''}`,
  );

  if (signal.aborted) return 124;
  // Transcripts: one paginated listing per connection against the record ids; a record the
  // listing does not show is looked up by its key (HeadObject) before it counts as missing:
  // the local S3 emulator (fauxqs 2.4.1) pages ListObjectsV2 in locale order but continues
  // in byte order, so with mixed-case ids its pages skip and repeat keys.
  const s3 = new S3Client({ region: LOCAL_REGION, endpoint: stack.endpoints.s3, credentials: LOCAL_CREDENTIALS, forcePathStyle: true });
  try {
    const stored = [...(await transcriptIds(s3, CONNECTION)), ...(await transcriptIds(s3, CLOSED))];
    const storedSet = new Set(stored);
    const unlisted = all.filter((item) => !storedSet.has(item.id));
    const found = await pool(unlisted, 16, async (item) => {
      const Key = transcriptKeyFor({ id: item.id, connection: item.connection, time: Date.parse(item.time) });
      try {
        await s3.send(new HeadObjectCommand({ Bucket: TRANSCRIPT_BUCKET, Key }));
        return true;
      } catch (error) {
        if ((error as { name?: string }).name === 'NotFound') return false;
        throw error;
      }
    });
    const missing = unlisted.filter((_, index) => !found[index]);
    const extra = [...storedSet].filter((id) => !ids.has(id));
    check(
      'no transcript missing (S3)',
      missing.length === 0,
      `${ids.size - missing.length} of ${ids.size} records have theirs in s3://${TRANSCRIPT_BUCKET}/transcripts/{${CONNECTION},${CLOSED}}/ (listing: ${storedSet.size} distinct of ${stored.length} keys; ${unlisted.length - missing.length} found by HeadObject)${missing[0] ? `; first missing: ${missing[0].id}` : ''}; ${extra.length} objects without a record`,
    );
  } finally {
    s3.destroy();
  }

  console.log('\ncheck                                     result  evidence');
  for (const { name, pass, evidence } of checks) console.log(`${name.padEnd(41)} ${pass ? 'PASS' : 'FAIL'}    ${evidence}`);
  const pass = checks.every((item) => item.pass);
  console.log(pass ? '\nload: all checks pass' : '\nload: CHECKS FAILED');
  return pass ? 0 : 1;
}
