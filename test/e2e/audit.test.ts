// The auditor's side (issue 16) against the real API server, with real kubectl,
// the real record store (DynamoDB emulator) and transcript store (S3 emulator),
// and a real Chromium:
// - a week of traffic — six past days written through the real store and
//   sealed exactly as the gateway seals (core/audit-chain.ts sealRecord), then
//   today's requests by kubectl through Airlock — reviewed by `airlock policy
//   review`, which suggests the expected narrower policy;
// - `airlock audit export` events pass the API server's own audit.k8s.io/v1
//   types (test/cluster/cmd/auditcheck) and carry the auditID the API server
//   logged for the same request (its audit log is on in the test cluster), a
//   client-supplied Audit-ID notwithstanding; OCSF events are API Activity 6003;
// - `airlock audit verify` passes, then finds an edited record, a deleted one
//   and a replaced transcript (each changed behind Airlock's back with the SDK);
// - the /audit pages, in Chromium. Screenshots: test-results/audit-*.png.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteItemCommand, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sealRecord } from '../../lambdas/core/audit-chain.ts';
import type { RequestRecord } from '../../lambdas/core/model.ts';
import { evaluatePolicy } from '../../lambdas/core/policy.ts';
import { kubeRequestOf } from '../../lambdas/core/policy-review.ts';
import { newId } from '../../lambdas/core/ids.ts';
import { transcriptKeyFor } from '../../lambdas/core/transcripts.ts';
import { awsClientConfig } from '../../lambdas/runtime/services.ts';
import { chromiumMissing, launchChromium } from '../support/browser.ts';
import { kubectl } from '../support/kubectl.ts';
import { REVIEW_POLICY } from '../support/policies.ts';
import { startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';
import { ensureBinaries } from '../cluster/harness.ts';

const cluster = inject('cluster');
const browserMissing = chromiumMissing('the audit page browser test');

/** test/cluster/cmd/auditcheck, built with the test cluster (npm run test-cluster -- build). */
const auditcheck = () => ensureBinaries().auditcheck;

interface ApiserverEvent {
  auditID: string;
  verb: string;
  stage: string;
  requestURI: string;
  user: { username: string };
  objectRef?: { resource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
}

function apiserverEvents(): ApiserverEvent[] {
  return readFileSync(cluster!.auditLog, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as ApiserverEvent);
}

describe.skipIf(!cluster || browserMissing)("the auditor's side (real kubectl, real API server audit log, real Chromium)", () => {
  let env: TestStack;
  let agent: TestAgent;
  let kubeconfig: string;
  let browser: Browser;
  const suffix = Date.now().toString(36);
  const run = (args: string[]) => kubectl(args, { kubeconfig });
  const admin = (args: string[]) => kubectl(args, { kubeconfig: cluster!.adminKubeconfig });
  /** Today's records of the agent, oldest first. */
  const todays = async () => (await env.stack.services.records.query({ agent: agent.name, since: Date.now() - 3_600_000, limit: 1000 })).items.reverse();

  /** A past request as the gateway records it (the engine's decision and reason), with its transcript, sealed into its chain. */
  async function pastRequest(at: number, verb: string, resource: string, namespace: string, options: { apiGroup?: string; name?: string } = {}): Promise<void> {
    const connection = (await env.stack.services.state.getConnection('prod-cluster'))!;
    const base = { verb, apiGroup: options.apiGroup ?? '', resource, subresource: '', namespace, name: options.name ?? '' };
    const path = `/${base.apiGroup ? `apis/${base.apiGroup}/v1` : 'api/v1'}/namespaces/${namespace}/${resource}${base.name ? `/${base.name}` : ''}`;
    const decision = evaluatePolicy(connection.policy, kubeRequestOf({ ...base, path, query: '' } as RequestRecord));
    const record: RequestRecord = {
      id: newId('req'),
      time: at,
      agentId: agent.id,
      agent: agent.name,
      connection: 'prod-cluster',
      method: { get: 'GET', list: 'GET', patch: 'PATCH' }[verb] ?? 'GET',
      path,
      query: '',
      ...base,
      decision: decision.effect === 'allow' ? 'allowed' : decision.effect === 'approve' ? 'held' : 'denied',
      reason: decision.reason,
      policyVersion: connection.policyVersion,
      phase: 'started',
      userAgent: 'kubectl/v1.33.13',
    };
    const { records, transcripts } = env.stack.services;
    await records.begin(record);
    const completed = { ...record, status: decision.effect === 'allow' ? 200 : 403, durationMs: 12, transcriptKey: transcriptKeyFor(record) };
    const transcript = JSON.stringify({ id: record.id, request: { method: record.method, path }, response: { status: completed.status } });
    await transcripts.put(completed.transcriptKey, transcript);
    await sealRecord(records, completed, transcript, () => at + 12, { phase: 'complete' });
  }

  beforeAll(async () => {
    env = await startTestStack();
    await env.createConnection('prod-cluster', { cluster: cluster!, policy: REVIEW_POLICY });
    agent = await env.createAgent('audit-agent');
    const window = await agent.cli(['access', 'request', '--connection', 'prod-cluster', '--duration', '30m', '--reason', 'weekly rollout']);
    expect(window.code, window.stderr).toBe(0);
    kubeconfig = await agent.kubeconfig('prod-cluster');

    // Six past days: the agent read pods every day, read and patched the web deployment, and kept trying a Secret.
    const now = Date.now();
    for (let day = 6; day >= 1; day--) {
      const at = now - day * 86_400_000;
      await pastRequest(at, 'list', 'pods', 'prod');
      await pastRequest(at + 1000, 'get', 'deployments', 'prod', { apiGroup: 'apps', name: 'web' });
      await pastRequest(at + 2000, 'get', 'secrets', 'prod', { name: 'db-password' });
    }
    await pastRequest(now - 3 * 86_400_000 + 5000, 'patch', 'deployments', 'prod', { apiGroup: 'apps', name: 'web' });

    // Today, through Airlock with kubectl.
    expect((await run(['get', 'configmaps', '-n', 'prod'])).code).toBe(0);
    const created = await run(['create', 'configmap', `audit-${suffix}`, '-n', 'prod', '--from-literal=owner=audit']);
    expect(created.code, created.stderr).toBe(0);
    expect((await run(['get', 'secrets', '-n', 'prod'])).code).not.toBe(0);
    const held = await run(['delete', 'configmap', `audit-${suffix}`, '-n', 'prod']);
    expect(held.stderr).toMatch(/approval/i);
    const approvalId = /(apr_[A-Za-z0-9_-]{22})/.exec(held.stderr)![1]!;
    const decided = await env.decide(await env.approvalLink(approvalId, 'oncall@example.com'), 'deny');
    expect(decided.status).toBe(200);

    browser = await launchChromium(env);
  });
  afterAll(async () => {
    await browser?.close();
    await env?.stop();
    await admin(['delete', 'configmap', `audit-${suffix}`, `audit-json-${suffix}`, '-n', 'prod', '--ignore-not-found']);
  });

  it('reviews the week: rule use, what was refused, approvals, and the expected narrower policy (checked, not applied)', async () => {
    const before = (await env.stack.services.state.getConnection('prod-cluster'))!.policyVersion;
    const reviewed = await env.cli(['--json', 'policy', 'review', '--connection', 'prod-cluster', '--since', '7d']);
    expect(reviewed.code, reviewed.stderr).toBe(0);
    const review = JSON.parse(reviewed.stdout) as {
      rules: { rule: number; allowed: number; held: number; denied: number; lastMatched: string | null }[];
      unusedRules: number[];
      refused: { request: string; decision: string; count: number }[];
      approvals: Record<string, number>;
      suggested: { policy: { rules: unknown[] }; diff: string; check: { allowedStillAllowed: number; allowedNowRefused: string[]; refusedNowAllowed: string[] } };
    };
    expect(review.rules.map((rule) => [rule.rule, rule.allowed, rule.held, rule.denied])).toEqual([
      [1, 0, 0, 7],
      [2, 0, 1, 0],
      [3, 13, 0, 0],
      [4, 1, 0, 0],
      [5, 1, 0, 0],
      [6, 0, 0, 0],
    ]);
    expect(review.unusedRules).toEqual([6]);
    expect(review.refused[0]).toMatchObject({ request: 'get secrets db-password in prod', decision: 'denied', count: 6 });
    expect(review.approvals).toMatchObject({ asked: 1, denied: 1 });
    expect(review.suggested.policy.rules).toEqual([
      { effect: 'deny', resources: ['secrets'] },
      { effect: 'approve', verbs: ['delete'], namespaces: ['prod'] },
      { effect: 'allow', verbs: ['get', 'list'], apiGroups: ['', 'apps'], resources: ['configmaps', 'deployments', 'pods'], namespaces: ['prod'] },
      { effect: 'allow', verbs: ['create'], apiGroups: [''], resources: ['configmaps'], namespaces: ['prod'] },
      { effect: 'allow', verbs: ['patch'], apiGroups: ['apps'], resources: ['deployments'], namespaces: ['prod'] },
    ]);
    expect(review.suggested.check).toMatchObject({ allowedStillAllowed: 15, allowedNowRefused: [], refusedNowAllowed: [] });
    expect(review.suggested.diff).toMatch(/^-\s+- statefulsets$/m);
    // Never applied by itself.
    expect((await env.stack.services.state.getConnection('prod-cluster'))!.policyVersion).toBe(before);
    const human = await env.cli(['policy', 'review', '--connection', 'prod-cluster', '--since', '7d']);
    expect(human.stdout).toContain('Suggested narrower policy');
    expect(human.stdout).toContain('+++ suggested');
  });

  it('exports audit.k8s.io/v1 events the API server’s own types accept, joined to its audit log by auditID', async () => {
    // A client-supplied Audit-ID must not replace Airlock's request id upstream.
    const issued = await agent.cli(['token', '--connection', 'prod-cluster']);
    const token = (JSON.parse(issued.stdout) as { status: { token: string } }).status.token;
    const forged = await env.https('GET', '/k8s/prod-cluster/api/v1/namespaces/prod/configmaps/app-config', { headers: { authorization: `Bearer ${token}`, 'audit-id': `forged-${suffix}` } });
    expect(forged.status).toBe(200);
    const forgedId = String(forged.headers['x-airlock-request-id']);
    // A JSON create (kubectl may speak protobuf, which transcripts do not keep): its bodies go into the RequestResponse export.
    const posted = await env.https('POST', '/k8s/prod-cluster/api/v1/namespaces/prod/configmaps', {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `audit-json-${suffix}` }, data: { owner: 'audit' } }),
    });
    expect(posted.status, posted.body).toBe(201);
    const postedId = String(posted.headers['x-airlock-request-id']);

    const file = join(env.dir, 'events.jsonl');
    const exported = await env.cli(['audit', 'export', '--since', '1h', '--format', 'k8s-audit', '--out', file]);
    expect(exported.code, exported.stderr).toBe(0);
    const checked = spawnSync(auditcheck(), { input: readFileSync(file), encoding: 'utf8' });
    expect(checked.stdout, checked.stdout).toMatch(/\d+ events valid/);
    expect(checked.status).toBe(0);

    const events = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as ApiserverEvent & { annotations: Record<string, string> });
    const ours = await todays();
    const create = ours.find((record) => record.verb === 'create' && record.resource === 'configmaps')!;
    const exportedCreate = events.find((event) => event.auditID === create.id)!;
    expect(exportedCreate).toMatchObject({
      verb: 'create',
      user: { username: agent.name },
      objectRef: { resource: 'configmaps', namespace: 'prod' },
      responseStatus: { code: 201 },
      annotations: { 'airlock.dev/decision': 'allowed' },
    });
    const denied = events.find((event) => event.annotations['airlock.dev/decision'] === 'denied' && event.objectRef?.resource === 'secrets')!;
    expect(denied).toMatchObject({ responseStatus: { code: 403 }, annotations: { 'authorization.k8s.io/decision': 'forbid' } });

    // The API server logged the same request under the same auditID (the connection's identity, as Airlock forwards it).
    const deadline = Date.now() + 10_000;
    let logged: ApiserverEvent[] = [];
    while (Date.now() < deadline) {
      logged = apiserverEvents().filter((event) => event.stage === 'ResponseComplete');
      if (logged.some((event) => event.auditID === forgedId)) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const upstream = logged.find((event) => event.auditID === create.id)!;
    expect(upstream).toMatchObject({ verb: 'create', objectRef: { resource: 'configmaps', namespace: 'prod' }, responseStatus: { code: 201 }, user: { username: 'airlock-connection' } });
    expect(logged.find((event) => event.auditID === forgedId)).toMatchObject({ verb: 'get', objectRef: { name: 'app-config' } });
    expect(logged.some((event) => event.auditID === `forged-${suffix}`)).toBe(false);
    // Every request Airlock forwarded today is in the API server's log under its record id; refused ones are not.
    for (const record of ours.filter((item) => item.decision === 'allowed' && item.status !== undefined)) expect(logged.map((event) => event.auditID)).toContain(record.id);
    expect(logged.some((event) => event.auditID === denied.auditID)).toBe(false);

    // At RequestResponse the bodies come along, from the redacted transcripts, and still pass the API server's types.
    const full = join(env.dir, 'events-full.jsonl');
    expect((await env.cli(['audit', 'export', '--since', '1h', '--format', 'k8s-audit', '--level', 'RequestResponse', '--out', full])).code).toBe(0);
    const checkedFull = spawnSync(auditcheck(), { input: readFileSync(full), encoding: 'utf8' });
    expect(checkedFull.status, checkedFull.stdout).toBe(0);
    const withBodies = readFileSync(full, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { auditID: string; requestObject?: { data?: Record<string, string> }; responseObject?: { kind?: string } });
    expect(withBodies.find((event) => event.auditID === postedId)).toMatchObject({
      requestObject: { data: { owner: 'audit' } },
      responseObject: { kind: 'ConfigMap', metadata: { name: `audit-json-${suffix}` } },
    });
    expect(events.find((event) => event.auditID === postedId)).not.toHaveProperty('requestObject');

    const ocsf = await env.cli(['audit', 'export', '--since', '1h', '--format', 'ocsf']);
    expect(ocsf.code, ocsf.stderr).toBe(0);
    const activities = ocsf.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown> & { metadata: { uid: string; version: string }; api: { operation: string } });
    expect(activities.length).toBe(events.length);
    for (const activity of activities) expect(activity).toMatchObject({ class_uid: 6003, category_uid: 6, type_uid: 600300 + Number(activity.activity_id), metadata: { version: '1.3.0' } });
    expect(activities.find((activity) => activity.metadata.uid === create.id)).toMatchObject({
      activity_id: 1,
      activity_name: 'Create',
      status_id: 1,
      api: { operation: 'create' },
      actor: { user: { name: agent.name } },
    });
  });

  it('verifies the chains, then finds an edited record, a deleted one and a replaced transcript', async () => {
    const clean = await env.cli(['audit', 'verify', '--since', '7d']);
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    expect(clean.stdout).toMatch(/^ok: \d+ record\(s\) in \d+ chain\(s\)/);

    const { config } = env.stack.services;
    // Locally the records table has its own emulator (as DynamoDB serves tables independently).
    const dynamodb = new DynamoDBClient(awsClientConfig(config, config.endpoints?.dynamodbRecords ? 'dynamodbRecords' : 'dynamodb'));
    const s3 = new S3Client(awsClientConfig(config, 's3'));
    const ours = (await todays()).filter((record) => record.chain);
    const [edited, deleted, replaced] = [ours[1]!, ours[2]!, ours[3]!];
    await dynamodb.send(
      new UpdateItemCommand({
        TableName: config.recordsTable,
        Key: { id: { S: edited.id } },
        UpdateExpression: 'SET #d = :d',
        ExpressionAttributeNames: { '#d': 'decision' },
        ExpressionAttributeValues: { ':d': { S: 'denied' } },
      }),
    );
    await dynamodb.send(new DeleteItemCommand({ TableName: config.recordsTable, Key: { id: { S: deleted.id } } }));
    await s3.send(new PutObjectCommand({ Bucket: config.transcriptBucket, Key: replaced.transcriptKey!, Body: JSON.stringify({ id: replaced.id, note: 'nothing to see' }) }));

    const tampered = await env.cli(['--json', 'audit', 'verify', '--since', '7d']);
    expect(tampered.code).toBe(1);
    const report = JSON.parse(tampered.stdout) as { ok: boolean; problems: { kind: string; recordId?: string; seq?: number; partition?: string }[] };
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'edited', recordId: edited.id }),
        expect.objectContaining({ kind: 'gap', seq: deleted.chain!.seq, partition: deleted.chain!.partition }),
        expect.objectContaining({ kind: 'transcript-replaced', recordId: replaced.id }),
      ]),
    );
    expect(report.problems).toHaveLength(3);
    const human = await env.cli(['audit', 'verify', '--since', '7d']);
    expect(human.stdout).toMatch(/^FAILED: 3 problem\(s\)/);
    expect(human.stdout).toContain(edited.id);
    dynamodb.destroy();
    s3.destroy();
  });

  it('shows /audit in Chromium: search, a record with its transcript and approval story, an agent timeline', async () => {
    const adminKey = readFileSync(join(env.stack.home, 'admin.key'), 'utf8').trim();
    const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${adminKey}` } });
    const page = await context.newPage();
    mkdirSync('test-results', { recursive: true });

    await page.goto(`${env.stack.url}/audit?agent=${agent.name}&since=7d`);
    const rows = page.locator('tbody tr');
    expect(await rows.count()).toBeGreaterThan(20);
    await page.screenshot({ path: 'test-results/audit-list.png', fullPage: true });

    await page.selectOption('select[name=decision]', 'held');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/decision=held/);
    expect(await rows.count()).toBe(1);
    expect(await rows.first().innerText()).toContain(`delete configmaps audit-${suffix} in prod`);
    await page.screenshot({ path: 'test-results/audit-held.png', fullPage: true });

    await rows
      .first()
      .getByRole('link', { name: /delete configmaps/ })
      .click();
    await page.waitForURL(/\/audit\/req_/);
    const record = await page.locator('body').innerText();
    expect(record).toMatch(/Approval apr_\S+ — denied/);
    expect(record).toContain(`${agent.name} asked: `);
    expect(record).toContain('oncall@example.com decided: deny');
    expect(record).toContain('"status": 403');
    await page.screenshot({ path: 'test-results/audit-record.png', fullPage: true });

    await page.getByRole('link', { name: agent.name }).first().click();
    await page.waitForURL(/\/audit\/agents\//);
    const timeline = await page.locator('body').innerText();
    expect(timeline).toMatch(/opened on prod-cluster until/);
    expect(timeline).toMatch(/refusal\s+get secrets db-password in prod on prod-cluster — denied/);
    expect(timeline).toMatch(/request\s+create configmaps in prod on prod-cluster — allowed/);
    await page.screenshot({ path: 'test-results/audit-timeline.png', fullPage: true });

    // Without the admin key there is no page.
    const anonymous = await browser.newPage();
    const refused = await anonymous.goto(`${env.stack.url}/audit`);
    expect(refused?.status()).toBe(401);
    await context.close();

    // `airlock audit ui` (a separate process) serves the pages on loopback, signing as the admin: the browser holds no key.
    const ui = spawn(process.execPath, [new URL('../../cli/airlock.ts', import.meta.url).pathname, '--endpoint', env.stack.url, '--home', env.stack.home, 'audit', 'ui', '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const address = await new Promise<string>((resolve, reject) => {
        let output = '';
        ui.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const url = /http:\/\/127\.0\.0\.1:\d+\/audit/.exec(output)?.[0];
          if (url) resolve(url);
        });
        ui.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
        ui.once('exit', (code) => reject(new Error(`audit ui exited ${code}: ${output}`)));
      });
      await anonymous.goto(`${address}?agent=${agent.name}&decision=denied&since=7d&q=secrets`);
      expect(await anonymous.locator('tbody tr').count()).toBe(7);
      await anonymous.screenshot({ path: 'test-results/audit-ui-denied.png', fullPage: true });
      const outside = await anonymous.goto(address.replace('/audit', '/v1/agents'));
      expect(outside?.status()).toBe(404);
    } finally {
      ui.kill('SIGTERM');
      await anonymous.close();
    }
  });
});
