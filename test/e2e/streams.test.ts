// Issue 9 §2 and §4: a stream lives no longer than the access it was allowed
// under, and the record holds everything that was forwarded.
//
// The connection points at an upstream tap in front of the real kube-apiserver,
// so the test sees the query the cluster got (the capped timeoutSeconds) and
// compares it with the record byte for byte. Streams are real: kubectl get -w
// and raw watches with timeoutSeconds=3600. After each kill switch a ConfigMap
// is created with the admin token directly, once the stated bound has passed,
// and the agent's watch must not have received it: the stream had ended.
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubectl, kubectlStream, type StreamingKubectl } from '../support/kubectl.ts';
import { startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';
import { startUpstreamTap, type UpstreamTap } from '../support/upstream-tap.ts';
import { FaultProxy } from '../support/fault-proxy.ts';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { TRANSCRIPT_BUCKET } from '../../local/stack.ts';
import { transcriptKeyFor } from '../../lambdas/core/transcripts.ts';

const cluster = inject('cluster');

const POLICY = `maxWindow: 1h
windowApproval: none
rules:
  - effect: allow
    verbs: [get, list, watch, create]
    resources: [configmaps]
    namespaces: [prod]
`;

/** CONTRACT.md: a stream outlives a revoke or disable by at most 5 s (2 s recheck + 3 s read timeout). */
const REVOKE_BOUND_MS = 5000;
const CONFIGMAPS = '/api/v1/namespaces/prod/configmaps';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface RecordShown {
  id: string;
  query: string;
  path: string;
  phase: string;
  verb: string;
  decision: string;
  status?: number;
  userAgent?: string;
  forwardedHeaders?: Record<string, string>;
  streamEnd?: string;
  streamEndReason?: string;
  durationMs?: number;
}

interface RawWatch {
  requestId: Promise<string>;
  /** Resolves when the response ends: the lines received and when. */
  ended: Promise<{ lines: string[]; endedAt: number; aborted: boolean }>;
  text(): string;
}

describe.skipIf(!cluster)('streams end with the window, a revoke or a disable; the record holds all that was forwarded', () => {
  let env: TestStack;
  let tap: UpstreamTap;
  let caPem: string;
  // The gateway's clock runs this far ahead of the real one: a test moves a window to its last seconds.
  let clockOffset = 0;
  const suffix = Date.now().toString(36);

  beforeAll(async () => {
    env = await startTestStack({ configure: (config) => ({ ...config, now: () => Date.now() + clockOffset }) });
    tap = await startUpstreamTap({ server: cluster!.server, caPem: cluster!.caPem });
    await env.createConnection('streams', { cluster: { ...cluster!, server: tap.url, caFile: tap.caFile }, policy: POLICY });
    caPem = readFileSync(env.stack.caFile, 'utf8');
  });
  afterAll(async () => {
    clockOffset = 0;
    await env?.stop();
    await tap?.stop();
  });

  async function agentWithWindow(name: string, duration = '30m'): Promise<{ agent: TestAgent; kubeconfig: string; expiresAt: number }> {
    const agent = await env.createAgent(name);
    const window = await agent.cli(['--json', 'access', 'request', '--connection', 'streams', '--duration', duration, '--reason', 'streams e2e']);
    expect(window.code, window.stderr).toBe(0);
    const expiresAt = Date.parse((JSON.parse(window.stdout) as { expiresAt: string }).expiresAt);
    expect(expiresAt).toBeGreaterThan(Date.now());
    return { agent, kubeconfig: await agent.kubeconfig('streams'), expiresAt };
  }

  async function tokenOf(agent: TestAgent): Promise<string> {
    const result = await agent.cli(['token', '--connection', 'streams']);
    expect(result.code, result.stderr).toBe(0);
    return (JSON.parse(result.stdout) as { status: { token: string } }).status.token;
  }

  function rawWatch(token: string, query: string): RawWatch {
    const { hostname, port } = new URL(env.stack.url);
    let text = '';
    let resolveId!: (id: string) => void;
    const requestId = new Promise<string>((resolve) => (resolveId = resolve));
    const ended = new Promise<{ lines: string[]; endedAt: number; aborted: boolean }>((resolve, reject) => {
      const req = request({ hostname, port, path: `/k8s/streams${CONFIGMAPS}?${query}`, ca: caPem, headers: { authorization: `Bearer ${token}` } }, (res) => {
        resolveId(String(res.headers['x-airlock-request-id']));
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        const done = (aborted: boolean) => resolve({ lines: text.split('\n').filter(Boolean), endedAt: Date.now(), aborted });
        res.on('end', () => done(false));
        res.on('aborted', () => done(true));
        res.on('error', () => done(true));
      });
      req.on('error', reject);
      req.end();
    });
    return { requestId, ended, text: () => text };
  }

  async function recordOf(id: string): Promise<RecordShown> {
    for (let attempt = 0; attempt < 100; attempt++) {
      // A refusal's record is written after its response.
      const shown = await env.cli(['audit', 'show', id]);
      if (shown.code === 0) {
        const { record } = JSON.parse(shown.stdout) as { record: RecordShown };
        if (record.phase !== 'started') return record;
      }
      await sleep(100);
    }
    throw new Error(`record ${id} never completed`);
  }

  async function watchRecordsOf(agent: string): Promise<RecordShown[]> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const list = await env.cli(['--json', 'audit', 'list', '--agent', agent]);
      const items = (JSON.parse(list.stdout) as { items: RecordShown[] }).items.filter((item) => item.verb === 'watch' && item.decision === 'allowed');
      if (items.length > 0 && items.every((item) => item.phase !== 'started')) return Promise.all(items.map((item) => recordOf(item.id)));
      await sleep(100);
    }
    throw new Error(`no completed watch record for ${agent}`);
  }

  const forwardedQuery = (requestId: string) => {
    const url = tap.forwarded(requestId)?.url ?? '';
    return url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  };

  async function adminCreate(name: string): Promise<void> {
    const created = await kubectl(['create', 'configmap', name, '-n', 'prod', '--from-literal=secret=after-the-end'], { kubeconfig: cluster!.adminKubeconfig });
    expect(created.code, created.stderr).toBe(0);
  }

  function exited(watch: StreamingKubectl): Promise<number> {
    return new Promise((resolve) => {
      if (watch.child.exitCode !== null) resolve(Date.now());
      else watch.child.once('exit', () => resolve(Date.now()));
    });
  }

  /** Runs the kill switch against two open watches (kubectl and a raw timeoutSeconds=3600), then proves both ended within the bound. */
  async function killSwitchEndsStreams(name: string, killSwitch: () => Promise<void>, expected: { streamEnd: string; message: RegExp }) {
    const { agent, kubeconfig } = await agentWithWindow(name);
    const watch = kubectlStream(['get', 'configmaps', '-n', 'prod', '-w', '--output-watch-events', '--request-timeout=0'], { kubeconfig });
    const kubectlExit = exited(watch);
    const raw = rawWatch(await tokenOf(agent), 'watch=1&timeoutSeconds=3600');
    try {
      await watch.waitFor('app-config');
      const rawId = await raw.requestId;
      await sleep(500);
      const before = `before-${name}-${suffix}`;
      await adminCreate(before);
      await watch.waitFor(before);

      await killSwitch();
      const switchedAt = Date.now();
      const { lines, endedAt, aborted } = await raw.ended;
      const kubectlEndedAt = await Promise.race([kubectlExit, sleep(REVOKE_BOUND_MS + 2000).then(() => Infinity)]);
      // Both streams ended within the bound, the raw one cleanly with a final ERROR event carrying the reason.
      expect(endedAt - switchedAt).toBeLessThanOrEqual(REVOKE_BOUND_MS);
      expect(kubectlEndedAt - switchedAt).toBeLessThanOrEqual(REVOKE_BOUND_MS + 1000);
      expect(aborted).toBe(false);
      const last = JSON.parse(lines.at(-1)!) as { type: string; object: { kind: string; code: number; reason: string; message: string } };
      expect(last).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
      expect(last.object.message).toMatch(expected.message);
      expect(last.object.message).toContain('Airlock ended this stream');
      // kubectl prints the reason as the watch's last line.
      expect(watch.output()).toMatch(new RegExp(`ERROR\\s+Failure\\s+Expired\\s+airlock: .*${expected.message.source}.*\\(Airlock ended this stream\\)`));

      // An object created once the bound has passed reaches neither watch.
      await sleep(Math.max(0, switchedAt + REVOKE_BOUND_MS + 200 - Date.now()));
      const after = `after-${name}-${suffix}`;
      await adminCreate(after);
      await sleep(1500);
      expect(raw.text()).not.toContain(after);
      expect(watch.output()).not.toContain(after);
      expect(raw.text()).toContain(before);

      // The records say how and why each stream ended; the raw watch forwarded the window's deadline, recorded as forwarded.
      const record = await recordOf(rawId);
      expect(record).toMatchObject({ streamEnd: expected.streamEnd, phase: 'complete' });
      expect(record.streamEndReason).toMatch(expected.message);
      expect(record.query).toBe(forwardedQuery(rawId));
      const seconds = Number(new URLSearchParams(record.query).get('timeoutSeconds'));
      expect(seconds).toBeGreaterThan(1700);
      expect(seconds).toBeLessThanOrEqual(1800);
      const records = await watchRecordsOf(name);
      expect(records.map((item) => item.streamEnd)).toContain(expected.streamEnd);
      const shown = JSON.parse((await env.cli(['audit', 'show', rawId])).stdout) as { transcript: { streamEnd: { how: string; reason: string } } };
      expect(shown.transcript.streamEnd.how).toBe(expected.streamEnd);
    } finally {
      watch.stop();
      for (const prefix of ['before', 'after'])
        await kubectl(['delete', 'configmap', `${prefix}-${name}-${suffix}`, '-n', 'prod', '--ignore-not-found', '--wait=false'], { kubeconfig: cluster!.adminKubeconfig });
    }
  }

  it('airlock revoke --agent ends open watches within 5 s, with a final ERROR event saying why', async () => {
    const name = 'revoked-agent';
    await killSwitchEndsStreams(
      name,
      async () => {
        const revoked = await env.cli(['revoke', '--agent', name]);
        expect(revoked.code, revoked.stderr).toBe(0);
      },
      { streamEnd: 'revoked', message: /was revoked/ },
    );
  });

  it('agents disable ends open watches within 5 s', async () => {
    const name = 'disabled-agent';
    await killSwitchEndsStreams(
      name,
      async () => {
        const disabled = await env.cli(['agents', 'disable', name]);
        expect(disabled.code, disabled.stderr).toBe(0);
      },
      { streamEnd: 'agent-disabled', message: /is disabled/ },
    );
  });

  it('airlock revoke --connection ends open watches within 5 s', async () => {
    await killSwitchEndsStreams(
      'revoked-connection',
      async () => {
        const revoked = await env.cli(['revoke', '--connection', 'streams']);
        expect(revoked.code, revoked.stderr).toBe(0);
      },
      { streamEnd: 'revoked', message: /was revoked/ },
    );
  });

  it("a watch asking timeoutSeconds=3600 is capped to the window and ends at the window's end; nothing created after reaches it", async () => {
    const name = 'window-end';
    const { agent, kubeconfig, expiresAt } = await agentWithWindow(name, '1m');
    const token = await tokenOf(agent);
    // The gateway's clock moves to 8 s before this window's end.
    clockOffset = expiresAt - Date.now() - 8000;
    const watch = kubectlStream(['get', 'configmaps', '-n', 'prod', '-w', '--output-watch-events', '--request-timeout=0'], { kubeconfig });
    const kubectlExit = exited(watch);
    const raw = rawWatch(token, 'watch=true&timeoutSeconds=3600');
    try {
      const rawId = await raw.requestId;
      await watch.waitFor('app-config');
      const windowEndsAt = expiresAt - clockOffset; // in real time
      const { lines, endedAt, aborted } = await raw.ended;
      const kubectlEndedAt = await Promise.race([kubectlExit, sleep(10_000).then(() => Infinity)]);
      expect(aborted).toBe(false);
      expect(endedAt).toBeLessThanOrEqual(windowEndsAt + 1000);
      expect(kubectlEndedAt).toBeLessThanOrEqual(windowEndsAt + 3000);
      const last = JSON.parse(lines.at(-1)!) as { type: string; object: { code: number; reason: string; message: string } };
      expect(last).toMatchObject({ type: 'ERROR', object: { code: 410, reason: 'Expired' } });
      expect(last.object.message).toMatch(/access window \S+ ended at .*Airlock ended this stream/);
      expect(watch.output()).toMatch(/ERROR\s+Failure\s+Expired\s+airlock: access window \S+ ended at/);

      const after = `after-window-${suffix}`;
      await adminCreate(after);
      await sleep(1500);
      expect(raw.text()).not.toContain(after);
      expect(watch.output()).not.toContain(after);

      // The cluster was told the window's deadline, and the record holds exactly that query.
      const record = await recordOf(rawId);
      const seconds = Number(new URLSearchParams(record.query).get('timeoutSeconds'));
      expect(seconds).toBeGreaterThanOrEqual(6);
      expect(seconds).toBeLessThanOrEqual(8);
      expect(record.query).toBe(forwardedQuery(rawId));
      expect(record).toMatchObject({ streamEnd: 'window-ended', phase: 'complete' });
      const records = await watchRecordsOf(name);
      for (const item of records) {
        expect(item.streamEnd).toBe('window-ended');
        expect(Number(new URLSearchParams(item.query).get('timeoutSeconds'))).toBeLessThanOrEqual(8);
        expect(item.query).toBe(forwardedQuery(item.id));
      }
    } finally {
      clockOffset = 0;
      watch.stop();
      await kubectl(['delete', 'configmap', `after-window-${suffix}`, '-n', 'prod', '--ignore-not-found', '--wait=false'], { kubeconfig: cluster!.adminKubeconfig });
    }
  });

  describe('the record holds the whole of what was forwarded (§4)', () => {
    let token: string;
    beforeAll(async () => {
      token = await tokenOf((await agentWithWindow('long-request')).agent);
    });

    async function send(path: string, headers: Record<string, string> = {}) {
      const response = await env.https('GET', `/k8s/streams${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } });
      return { ...response, requestId: String(response.headers['x-airlock-request-id']) };
    }

    it('a fieldSelector padded past 2048 characters is recorded whole: the record query is what the cluster got, byte for byte', async () => {
      const padded = `metadata.name=${'x'.repeat(3000)}`;
      const response = await send(`${CONFIGMAPS}?fieldSelector=${encodeURIComponent(padded)}&limit=5`);
      expect(response.status, response.body).toBe(200);
      const record = await recordOf(response.requestId);
      const tapped = forwardedQuery(response.requestId);
      expect(tapped.length).toBeGreaterThan(3000);
      expect(record.query).toBe(tapped);
      const shown = JSON.parse((await env.cli(['audit', 'show', response.requestId])).stdout) as { transcript: { request: { query: string } } };
      expect(shown.transcript.request.query).toBe(tapped);
    });

    it('a path past 2048 characters is recorded whole, as forwarded', async () => {
      const path = `${CONFIGMAPS}/${'n'.repeat(2500)}`;
      const response = await send(path);
      const forwarded = tap.forwarded(response.requestId)!;
      expect(forwarded.url).toBe(path);
      expect((await recordOf(response.requestId)).path).toBe(path);
    });

    it('a long user-agent is recorded whole, as forwarded; one longer than the limit is refused (431) and nothing reaches the cluster', async () => {
      const agentString = `kubectl/v1.33 ${'u'.repeat(1000)}`;
      const response = await send(CONFIGMAPS, { 'user-agent': agentString, 'kubectl-command': 'kubectl get' });
      expect(response.status, response.body).toBe(200);
      const forwarded = tap.forwarded(response.requestId)!;
      expect(forwarded.headers['user-agent']).toEqual([agentString]);
      const record = await recordOf(response.requestId);
      expect(record.userAgent).toBe(agentString);
      expect(record.forwardedHeaders).toEqual({ 'user-agent': agentString, 'kubectl-command': 'kubectl get' });
      const shown = JSON.parse((await env.cli(['audit', 'show', response.requestId])).stdout) as { transcript: { request: { headers: Record<string, string>; forwarded: Record<string, string> } } };
      expect(shown.transcript.request.headers['user-agent']).toBe(agentString);
      expect(shown.transcript.request.forwarded['user-agent']).toBe(agentString);

      const tooLong = await send(CONFIGMAPS, { 'user-agent': 'u'.repeat(1025) });
      expect(tooLong.status).toBe(431);
      expect(JSON.parse(tooLong.body)).toMatchObject({ kind: 'Status', code: 431, details: { causes: [{ reason: 'header_too_long' }] } });
      expect(tap.forwarded(tooLong.requestId)).toBeUndefined();
      expect((await recordOf(tooLong.requestId)).decision).toBe('denied');
    });
  });
});

describe.skipIf(!cluster)('a stream whose window cannot be re-checked ends (fail closed)', () => {
  let env: TestStack;
  let dynamodb: FaultProxy;

  beforeAll(async () => {
    env = await startTestStack({
      configure: async (config) => {
        dynamodb = new FaultProxy(config.endpoints!.dynamodb!);
        await dynamodb.listen();
        return { ...config, endpoints: { ...config.endpoints, dynamodb: dynamodb.url('http') } };
      },
    });
    await env.createConnection('streams', { cluster: cluster!, policy: POLICY });
  });
  afterAll(async () => {
    dynamodb?.up();
    await env?.stop();
    await dynamodb?.close();
  });

  it('the state store going away ends an open watch within 5 s with a 503 Status; the transcript says state-unavailable', async () => {
    const agent = await env.createAgent('state-gone');
    expect((await agent.cli(['access', 'request', '--connection', 'streams', '--duration', '30m', '--reason', 'fail closed'])).code).toBe(0);
    const token = JSON.parse((await agent.cli(['token', '--connection', 'streams'])).stdout).status.token as string;
    const response = env.https('GET', `/k8s/streams${CONFIGMAPS}?watch=1`, { headers: { authorization: `Bearer ${token}` } });
    await sleep(1000);
    dynamodb.down();
    const downAt = Date.now();
    let answer: Awaited<typeof response>;
    try {
      answer = await response;
    } finally {
      dynamodb.up();
    }
    expect(Date.now() - downAt).toBeLessThanOrEqual(REVOKE_BOUND_MS);
    const last = JSON.parse(answer.body.trim().split('\n').at(-1)!) as { type: string; object: { code: number; details: { causes: { reason: string }[] } } };
    expect(last).toMatchObject({ type: 'ERROR', object: { code: 503, details: { causes: [{ reason: 'state_unavailable' }] } } });

    // The record could not be completed while DynamoDB was away (it stays "started", so an auditor sees it was not);
    // the transcript in S3 says how the stream ended.
    const id = String(answer.headers['x-airlock-request-id']);
    const shown = JSON.parse((await env.cli(['audit', 'show', id])).stdout) as { record: { time: string; connection: string } };
    const key = transcriptKeyFor({ id, connection: shown.record.connection, time: Date.parse(shown.record.time) });
    const s3 = new S3Client({ region: 'us-east-1', endpoint: env.stack.endpoints.s3, forcePathStyle: true, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    let transcript: { streamEnd?: { how: string } } = {};
    for (let attempt = 0; attempt < 50 && !transcript.streamEnd; attempt++) {
      try {
        transcript = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: TRANSCRIPT_BUCKET, Key: key }))).Body!.transformToString()) as typeof transcript;
      } catch {
        await sleep(100);
      }
    }
    s3.destroy();
    expect(transcript.streamEnd?.how).toBe('state-unavailable');
  });
});
