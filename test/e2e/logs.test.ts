// Issue 13 §2: `kubectl logs` through Airlock against a running pod (a kwok node; kwok's kubelet
// API reads the log files this test writes, in the CRI log format a kubelet keeps). Every read is
// recorded (the transcript holds the lines, credentials redacted); an agent's read that names no
// bound gets Airlock's (small here, so they bite), stated in a Warning kubectl prints and in the
// record; `logs -f` streams lines as they are written and ends at the window's end.
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { criLogLines } from '../cluster/harness.ts';
import { admin } from '../support/clients.ts';
import { kubectl, kubectlStream, type StreamingKubectl } from '../support/kubectl.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');

/** Pods and their logs in prod, but not web-0's; nothing else. The seeded connection credential may read pods/log in prod. */
const POLICY = `maxWindow: 1h
windowApproval: none
rules:
  - effect: deny
    resources: [pods/log]
    names: [web-0]
  - effect: allow
    verbs: [get, list, watch]
    resources: [pods]
    namespaces: [prod]
  - effect: allow
    verbs: [get]
    resources: [pods/log]
    namespaces: [prod]
`;
const LIMITS = { limitBytes: 4096, tailLines: 4 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Shown {
  record: { id: string; query: string; phase: string; logBound?: string; streamEnd?: string; decision: string; subresource: string };
  transcript?: { response: { body: unknown; status: number; headers: Record<string, string> } };
}

describe.skipIf(!cluster)('kubectl logs through Airlock: bounded, recorded, ended with the window', () => {
  let env: TestStack;
  let kubeconfig: string;
  let clockOffset = 0;
  const suffix = Date.now().toString(36);
  const pod = `logs-${suffix}`;
  const agentName = `logs-${suffix}`;
  const dir = mkdtempSync(join(tmpdir(), 'airlock-logs-'));
  const files = { app: join(dir, 'app.log'), previous: join(dir, 'app-previous.log'), sidecar: join(dir, 'sidecar.log') };
  const lines = ['line-1 starting', 'line-2 listening on :8080', 'line-3 connected with token=supersecret-value-1', 'line-4 ok', 'line-5 ok', 'line-6 ready'];

  beforeAll(async () => {
    env = await startTestStack({ configure: (config) => ({ ...config, logReadLimits: LIMITS, now: () => Date.now() + clockOffset }) });
    await env.createConnection('logs', { cluster: cluster!, policy: POLICY });
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    writeFileSync(files.app, criLogLines(['old-1 yesterday', 'old-2 yesterday'], 'stdout', twoHoursAgo) + criLogLines(lines));
    writeFileSync(files.previous, criLogLines(['previous-1 crashed: out of memory']));
    writeFileSync(files.sidecar, criLogLines(['sidecar-1 proxying'], 'stderr'));
    admin(
      cluster!,
      ['apply', '-f', '-'],
      `
apiVersion: v1
kind: Pod
metadata: {name: ${pod}, namespace: prod}
spec:
  automountServiceAccountToken: false
  containers: [{name: app, image: busybox:1.36}, {name: sidecar, image: busybox:1.36}]
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Logs
metadata: {name: ${pod}, namespace: prod}
spec:
  logs:
    - {containers: [app], logsFile: ${files.app}, previousLogsFile: ${files.previous}, follow: true}
    - {containers: [sidecar], logsFile: ${files.sidecar}}
`,
    );
    admin(cluster!, ['wait', '--for=condition=Ready', `pod/${pod}`, '-n', 'prod', '--timeout=60s']);
    // kwok picks the Logs rule up from its watch; until then the cluster-wide default answers.
    for (let attempt = 0; !admin(cluster!, ['logs', pod, '-n', 'prod', '-c', 'app']).includes('line-6'); attempt++) {
      if (attempt > 50) throw new Error('kwok never served the Logs rule');
      await sleep(200);
    }
    const agent = await env.createAgent(agentName);
    const window = await agent.cli(['access', 'request', '--connection', 'logs', '--duration', '30m', '--reason', 'logs e2e']);
    expect(window.code, window.stderr).toBe(0);
    kubeconfig = await agent.kubeconfig('logs');
  });
  afterAll(async () => {
    clockOffset = 0;
    await env?.stop();
    if (cluster) admin(cluster, ['delete', 'pod,logs.kwok.x-k8s.io', pod, '-n', 'prod', '--ignore-not-found', '--wait=false']);
  });

  /** The completed records of this agent's log reads whose forwarded query matches, newest first, with transcripts. */
  async function logReads(agent: string, match: (query: string) => boolean): Promise<Shown[]> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const listed = await env.cli(['--json', 'audit', 'list', '--agent', agent, '--all']);
      const items = (JSON.parse(listed.stdout) as { items: { id: string; resource: string }[] }).items.filter((item) => item.resource === 'pods/log');
      const shown = await Promise.all(items.map(async (item) => JSON.parse((await env.cli(['audit', 'show', item.id])).stdout) as Shown));
      const matching = shown.filter((one) => match(one.record.query));
      if (matching.length > 0 && matching.every((one) => one.record.phase !== 'started' && one.transcript)) return matching;
      await sleep(200);
    }
    throw new Error(`no completed log read for ${agent}`);
  }

  it('an unbounded read gets the default bounds: the last lines, a Warning kubectl prints, the bound in the record; the transcript holds the lines, redacted', async () => {
    const logs = await kubectl(['logs', pod, '-n', 'prod', '-c', 'app'], { kubeconfig });
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout.trim().split('\n')).toEqual(lines.slice(-4));
    expect(logs.stderr).toContain('Warning: airlock: this log read is bounded to limitBytes=4096, tailLines=4');

    const [read] = await logReads(agentName, (query) => !query.includes('previous') && !query.includes('sinceSeconds') && query.includes('tailLines=4'));
    expect(read!.record).toMatchObject({ decision: 'allowed', logBound: 'limitBytes=4096, tailLines=4' });
    expect(new URLSearchParams(read!.record.query).get('limitBytes')).toBe('4096');
    const body = JSON.stringify(read!.transcript!.response.body);
    expect(body).toContain('line-6 ready');
    expect(body).toContain('token=[REDACTED]');
    expect(body).not.toContain('supersecret-value-1');
    expect(read!.transcript!.response.headers.warning).toContain('airlock: this log read is bounded');
  });

  it('--tail, --since and --limit-bytes are the client’s: Airlock adds only the bound left out', async () => {
    const tail = await kubectl(['logs', pod, '-n', 'prod', '-c', 'app', '--tail=2'], { kubeconfig });
    expect(tail.code, tail.stderr).toBe(0);
    expect(tail.stdout.trim().split('\n')).toEqual(lines.slice(-2));
    expect(tail.stderr).toContain('bounded to limitBytes=4096 (');

    const since = await kubectl(['logs', pod, '-n', 'prod', '-c', 'app', '--since=1h', '--tail=100', '--limit-bytes=100000'], { kubeconfig });
    expect(since.code, since.stderr).toBe(0);
    expect(since.stdout.trim().split('\n')).toEqual(lines);
    expect(since.stderr).not.toContain('bounded');
    const [read] = await logReads(agentName, (query) => query.includes('sinceSeconds=3600'));
    expect(read!.record.logBound).toBeUndefined();

    // Asked for, everything comes back, the old lines too.
    const all = await kubectl(['logs', pod, '-n', 'prod', '-c', 'app', '--tail=100'], { kubeconfig });
    expect(all.stdout).toContain('old-1 yesterday');
  });

  it('-c picks the container and --previous the previous instance', async () => {
    const sidecar = await kubectl(['logs', pod, '-n', 'prod', '-c', 'sidecar'], { kubeconfig });
    expect(sidecar.code, sidecar.stderr).toBe(0);
    expect(sidecar.stdout.trim()).toBe('sidecar-1 proxying');
    const previous = await kubectl(['logs', pod, '-n', 'prod', '-c', 'app', '--previous'], { kubeconfig });
    expect(previous.code, previous.stderr).toBe(0);
    expect(previous.stdout.trim()).toBe('previous-1 crashed: out of memory');
  });

  it('the policy still decides: logs it does not allow are refused and nothing is forwarded', async () => {
    // kubectl reads the pod (allowed), then its log (denied by name).
    const refused = await kubectl(['logs', 'web-0', '-n', 'prod'], { kubeconfig });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/airlock: get pods\/log\/web-0 in namespace prod is not allowed on "logs": rule 1 \(deny/);
  });

  it("logs -f streams lines as they are written and ends at the window's end; the record and transcript say so", async () => {
    const follower = `${agentName}-f`;
    const agent = await env.createAgent(follower);
    const window = await agent.cli(['--json', 'access', 'request', '--connection', 'logs', '--duration', '1m', '--reason', 'logs -f e2e']);
    expect(window.code, window.stderr).toBe(0);
    const expiresAt = Date.parse((JSON.parse(window.stdout) as { expiresAt: string }).expiresAt);
    const followKubeconfig = await agent.kubeconfig('logs');
    // The gateway's clock moves to 20 s before this window's end (room for kubectl's credential
    // plugin to start on a loaded machine: a token is refused in a window's last second).
    clockOffset = expiresAt - Date.now() - 20_000;
    const windowEndsAt = expiresAt - clockOffset; // in real time
    let follow: StreamingKubectl | undefined;
    try {
      follow = kubectlStream(['logs', '-f', pod, '-n', 'prod', '-c', 'app', '--tail=1'], { kubeconfig: followKubeconfig });
      const exited = new Promise<number>((resolve) => follow!.child.once('exit', () => resolve(Date.now())));
      await follow.waitFor('line-6 ready');
      appendFileSync(files.app, criLogLines(['follow-1 written while following']));
      await follow.waitFor('follow-1 written while following');
      const endedAt = await Promise.race([exited, sleep(30_000).then(() => Infinity)]);
      expect(endedAt).toBeLessThanOrEqual(windowEndsAt + 3000);
      appendFileSync(files.app, criLogLines(['after-the-window']));
      await sleep(500);
      expect(follow.output()).not.toContain('after-the-window');

      const [read] = await logReads(follower, (query) => query.includes('follow=true'));
      expect(read!.record).toMatchObject({ streamEnd: 'window-ended', phase: 'complete', logBound: 'limitBytes=4096' });
      expect(JSON.stringify(read!.transcript!.response.body)).toContain('follow-1 written while following');
    } finally {
      follow?.stop();
      clockOffset = 0;
    }
  });
});
