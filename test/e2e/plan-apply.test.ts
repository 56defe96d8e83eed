// Plan, approve once, apply — with the machine's real kubectl against the real
// API server: `airlock plan` sends every change as a dry run (nothing on the
// cluster), one approval through the emailed link covers them all, and
// `airlock apply` lets exactly those changes through, once. Every change is
// checked on the cluster itself with the admin kubeconfig. The plan's page,
// with every change and its diff, is opened in real Chromium (screenshot:
// test-results/plan-apply-page.png).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { chromiumMissing, launchChromium } from '../support/browser.ts';
import { kubectlBinary } from '../cluster/harness.ts';
import { admin, APPROVER, createClientsConnection } from '../support/clients.ts';
import { startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');
const browserMissing = chromiumMissing('plan page browser test');
/** Creating, patching and deleting ConfigMaps in prod is held for approval; reading is allowed. */
const HELD_WRITES = `
maxWindow: 1h
windowApproval: none
approvers: [oncall@example.com]
rules:
  - effect: deny
    resources: [secrets]
  - effect: approve
    verbs: [create, patch, delete]
    resources: [configmaps]
    namespaces: [prod]
  - effect: allow
    verbs: [get, list, watch]
    resources: [configmaps]
    namespaces: [prod]
`;

describe.skipIf(!cluster || browserMissing)('airlock plan / apply with kubectl', () => {
  let env: TestStack;
  let agent: TestAgent;
  let browser: Browser;
  /** Past the old 2 KiB cut: shown whole on the page. */
  const PADDING = `pad-${'p'.repeat(2100)}-end`;
  const suffix = Date.now().toString(36);
  const names = ['one', 'two', 'three'].map((name) => `plan-${name}-${suffix}`);
  const exists = (name: string) => admin(cluster!, ['get', 'configmap', name, '-n', 'prod', '--ignore-not-found', '-o', 'name']).trim() !== '';

  function manifests(dir: string, cms: string[], padded: string[] = []): string {
    const path = join(env.dir, dir);
    mkdirSync(path, { recursive: true });
    for (const name of cms) {
      const annotations = padded.includes(name) ? `, annotations: {padding: ${PADDING}}` : '';
      writeFileSync(join(path, `${name}.yaml`), `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: prod${annotations}}\ndata: {key: ${name}}\n`);
    }
    return `${path}/`;
  }

  async function plan(who: TestAgent, command: string[]): Promise<{ planId: string; approvalId: string; changes: number }> {
    const planned = await who.cli(['plan', '--connection', 'plan-apply', '--reason', 'plan e2e', '--', kubectlBinary(), ...command]);
    expect(planned.code, planned.stderr).toBe(3);
    const match = /plan (pln_\S+) \((\d+) changes?\) pending approval (apr_\S+)/.exec(planned.stdout);
    expect(match, planned.stdout).not.toBeNull();
    return { planId: match![1]!, changes: Number(match![2]), approvalId: match![3]! };
  }

  async function approve(approvalId: string): Promise<void> {
    const decided = await env.decide(await env.approvalLink(approvalId, APPROVER), 'approve');
    expect(decided.status).toBe(200);
  }

  beforeAll(async () => {
    env = await startTestStack();
    await createClientsConnection(env, cluster!, 'plan-apply', HELD_WRITES);
    agent = await env.createAgent(`planner-${suffix}`);
    const window = await agent.cli(['access', 'request', '--connection', 'plan-apply', '--duration', '30m', '--reason', 'plan e2e']);
    expect(window.code, window.stderr).toBe(0);
    browser = await launchChromium(env);
  });
  afterAll(async () => {
    await browser?.close();
    await env?.stop();
    if (cluster) admin(cluster, ['delete', 'configmap', ...names, `plan-extra-${suffix}`, `plan-revoked-${suffix}`, `plan-ended-${suffix}`, '-n', 'prod', '--ignore-not-found']);
  });

  it('kubectl apply -f DIR/: three ConfigMaps planned as dry runs, each shown with its diff, one approval in Chromium, applied once', async () => {
    // One of the three is live already (kubectl apply patches it), one is padded past 2 KiB.
    expect(admin(cluster!, ['create', 'configmap', names[0]!, '-n', 'prod', '--from-literal=key=old-value']).trim()).not.toBe('');
    const dir = manifests('three', names, [names[2]!]);
    const planned = await plan(agent, ['apply', '-f', dir]);
    expect(planned.changes).toBe(3);
    expect(names.slice(1).some(exists)).toBe(false);
    expect(admin(cluster!, ['get', 'configmap', names[0]!, '-n', 'prod', '-o', 'jsonpath={.data.key}'])).toBe('old-value');

    // The approver sees every change (§1): its summary, body whole and redacted, and the dry run diffed against the live object.
    const link = await env.approvalLink(planned.approvalId, APPROVER);
    const page = await browser.newPage();
    await page.goto(link);
    const text = await page.locator('body').innerText();
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/plan-apply-page.png', fullPage: true });
    expect(text).toContain('Approve these 3 changes');
    expect(text).toContain('Change 3 of 3');
    expect(text).toMatch(/Change 1 of 3: PATCH configmaps\/plan-one-\S+ in prod \(patch\)/);
    expect(text.match(/Dry run against the live object/g)).toHaveLength(3);
    expect(text).toContain('-   key: old-value');
    expect(text).toContain(`+   key: ${names[0]}`);
    expect(text).toContain(`+   key: ${names[1]}`);
    expect(text).toContain(PADDING);
    expect(text).toContain(`ConfigMap prod/${names[2]}`);
    expect(text).not.toContain('cannot be approved');
    expect(text).toContain('This window');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForSelector('text=Approved. The agent may now apply exactly these changes, each once.');
    await page.close();

    const applied = await agent.cli(['apply', planned.planId, '--wait', '--', kubectlBinary(), 'apply', '-f', dir]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(names.every(exists)).toBe(true);
    expect(admin(cluster!, ['get', 'configmap', names[0]!, '-n', 'prod', '-o', 'jsonpath={.data.key}'])).toBe(names[0]);

    const twice = await agent.cli(['apply', planned.planId, '--', kubectlBinary(), 'apply', '-f', dir]);
    expect(twice.code).not.toBe(0);
    expect(twice.stderr).toMatch(/cannot be applied twice/);
  });

  it('a change not in the plan is held as usual', async () => {
    const extra = `plan-extra-${suffix}`;
    admin(cluster!, ['delete', 'configmap', names[0]!, '-n', 'prod', '--ignore-not-found']);
    const planned = await plan(agent, ['apply', '-f', manifests('first', [names[0]!])]);
    await approve(planned.approvalId);
    const applied = await agent.cli(['apply', planned.planId, '--', kubectlBinary(), 'apply', '-f', manifests('more', [names[0]!, extra])]);
    expect(applied.code).not.toBe(0);
    // Held (an approval of its own), not refused as out of the plan: its record says so and names the plan.
    const records = (await env.stack.services.records.query({ agent: agent.name, limit: 500 })).items;
    expect(records).toContainEqual(expect.objectContaining({ method: 'POST', decision: 'held', planId: planned.planId, approvalId: expect.stringMatching(/^apr_/) }));
    expect(exists(names[0]!)).toBe(true);
    expect(exists(extra)).toBe(false);
  });

  it('kubectl delete of several objects as one plan', async () => {
    const planned = await plan(agent, ['delete', 'configmap', ...names, '-n', 'prod', '--wait=false']);
    expect(planned.changes).toBe(3);
    expect(names.every(exists)).toBe(true);
    await approve(planned.approvalId);
    const applied = await agent.cli(['apply', planned.planId, '--', kubectlBinary(), 'delete', 'configmap', ...names, '-n', 'prod', '--wait=false']);
    expect(applied.code, applied.stderr).toBe(0);
    expect(names.some(exists)).toBe(false);
  });

  it('an approved plan cannot be applied after its window ends', async () => {
    const other = await env.createAgent(`ended-${suffix}`);
    const window = await other.cli(['--json', 'access', 'request', '--connection', 'plan-apply', '--duration', '30m', '--reason', 'plan e2e']);
    expect(window.code, window.stderr).toBe(0);
    const name = `plan-ended-${suffix}`;
    const dir = manifests('ended', [name]);
    const planned = await plan(other, ['apply', '-f', dir]);
    await approve(planned.approvalId);
    const ended = await other.cli(['access', 'end', (JSON.parse(window.stdout) as { id: string }).id]);
    expect(ended.code, ended.stderr).toBe(0);
    const applied = await other.cli(['apply', planned.planId, '--', kubectlBinary(), 'apply', '-f', dir]);
    expect(applied.code).not.toBe(0);
    expect(exists(name)).toBe(false);
  });

  it('an approved plan cannot be applied after `airlock revoke`', async () => {
    const other = await env.createAgent(`revoked-${suffix}`);
    const window = await other.cli(['access', 'request', '--connection', 'plan-apply', '--duration', '30m', '--reason', 'plan e2e']);
    expect(window.code, window.stderr).toBe(0);
    const name = `plan-revoked-${suffix}`;
    const dir = manifests('revoked', [name]);
    const planned = await plan(other, ['apply', '-f', dir]);
    await approve(planned.approvalId);
    const revoked = await env.cli(['revoke', '--agent', other.name]);
    expect(revoked.code, revoked.stderr).toBe(0);
    const applied = await other.cli(['apply', planned.planId, '--', kubectlBinary(), 'apply', '-f', dir]);
    expect(applied.code).not.toBe(0);
    expect(exists(name)).toBe(false);
  });
});
