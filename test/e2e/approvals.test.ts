// A destructive kubectl command is held until a human approves that exact
// request in a real browser (Debian's Chromium via playwright-core); then it
// passes once. Screenshot: test-results/approval-page.png.
import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { chromiumMissing, launchChromium } from '../support/browser.ts';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubectl } from '../support/kubectl.ts';
import { EXAMPLE_POLICY, startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');
const browserMissing = chromiumMissing('approval browser test');

describe.skipIf(!cluster || browserMissing)('destructive requests wait for a human (real kubectl, real Chromium)', () => {
  let env: TestStack;
  let agent: TestAgent;
  let kubeconfig: string;
  let browser: Browser;
  const suffix = Date.now().toString(36);
  const podA = `held-a-${suffix}`;
  const podB = `held-b-${suffix}`;

  const admin = (args: string[]) => kubectl(args, { kubeconfig: cluster!.adminKubeconfig });
  const podExists = async (name: string) => (await admin(['get', 'pod', name, '-n', 'prod', '-o', 'name'])).code === 0;
  const createPod = (name: string) => admin(['run', name, '-n', 'prod', '--image=nginx:1.27', '--restart=Never']);
  const heldApproval = (stderr: string) => /airlock approvals wait (apr_[A-Za-z0-9_-]{22})/.exec(stderr)?.[1];

  beforeAll(async () => {
    env = await startTestStack();
    await env.createConnection('prod-cluster', { cluster: cluster!, policy: EXAMPLE_POLICY });
    agent = await env.createAgent('careful-agent');
    const window = await agent.cli(['access', 'request', '--connection', 'prod-cluster', '--duration', '30m', '--reason', 'clean up stuck pods', '--ticket', 'CHG-7']);
    expect(window.code, window.stderr).toBe(0);
    kubeconfig = await agent.kubeconfig('prod-cluster');
    for (const pod of [podA, podB]) expect((await createPod(pod)).code).toBe(0);
    browser = await launchChromium(env);
  });
  afterAll(async () => {
    await browser?.close();
    await env?.stop();
    for (const pod of [podA, podB]) await admin(['delete', 'pod', pod, '-n', 'prod', '--wait=false', '--ignore-not-found']);
  });

  it('holds the delete, is approved in the browser, passes once, then holds again', async () => {
    const held = await kubectl(['delete', 'pod', podA, '-n', 'prod'], { kubeconfig });
    expect(held.code).not.toBe(0);
    expect(held.stderr).toContain('Error from server (Forbidden): airlock: DELETE pods/');
    expect(held.stderr).toContain('needs a one-time human approval');
    const approvalId = heldApproval(held.stderr)!;
    expect(approvalId).toBeDefined();
    expect(await podExists(podA)).toBe(true);

    // Retrying before the decision: still held, same approval, no second email.
    const early = await kubectl(['delete', 'pod', podA, '-n', 'prod'], { kubeconfig });
    expect(heldApproval(early.stderr)).toBe(approvalId);

    const pending = await agent.cli(['approvals', 'wait', approvalId, '--timeout', '0']);
    expect(pending.code).toBe(3);

    const link = await env.approvalLink(approvalId, 'oncall@example.com');
    const page = await browser.newPage();
    await page.goto(link);
    const text = await page.locator('body').innerText();
    expect(text).toContain('careful-agent');
    expect(text).toContain(`DELETE pods/${podA} in prod`);
    expect(text).toContain('clean up stuck pods');
    expect(text).toContain('CHG-7');
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/approval-page.png', fullPage: true });
    expect(await env.stack.services.state.getApproval(approvalId)).toMatchObject({ status: 'pending' }); // viewing decided nothing
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForSelector('text=Approved');
    await page.close();

    const waited = await agent.cli(['approvals', 'wait', approvalId, '--timeout', '10']);
    expect(waited.code, waited.stderr).toBe(0);

    const passed = await kubectl(['delete', 'pod', podA, '-n', 'prod'], { kubeconfig });
    expect(passed.code, passed.stderr).toBe(0);
    expect(passed.stdout).toContain(`pod "${podA}" deleted`);
    expect(await podExists(podA)).toBe(false);

    // Used once: the identical request is held again, under a new approval.
    expect((await createPod(podA)).code).toBe(0);
    const again = await kubectl(['delete', 'pod', podA, '-n', 'prod'], { kubeconfig });
    expect(again.code).not.toBe(0);
    const second = heldApproval(again.stderr);
    expect(second).toBeDefined();
    expect(second).not.toBe(approvalId);
    expect(await podExists(podA)).toBe(true);
    expect((await agent.cli(['approvals', 'wait', approvalId, '--timeout', '0'])).code).toBe(1); // consumed
  });

  it('a different pod needs its own approval', async () => {
    const other = await kubectl(['delete', 'pod', podB, '-n', 'prod'], { kubeconfig });
    expect(other.code).not.toBe(0);
    const approvalB = heldApproval(other.stderr)!;
    const approvalsForA = (await env.stack.services.state.listApprovals({ agentId: agent.id })).filter((approval) => approval.summary.includes(podA)).map((a) => a.id);
    expect(approvalsForA).not.toContain(approvalB);
    expect(await podExists(podB)).toBe(true);
  });

  it('records the held and the approved request, naming the approval', async () => {
    const audit = JSON.parse((await env.cli(['--json', 'audit', 'list', '--agent', 'careful-agent', '--limit', '200'])).stdout) as {
      items: { verb: string; name: string; decision: string; status: number; approvalId?: string }[];
    };
    const deletes = audit.items.filter((item) => item.verb === 'delete' && item.name === podA);
    expect(deletes.filter((item) => item.decision === 'held').length).toBeGreaterThanOrEqual(2);
    expect(deletes).toContainEqual(expect.objectContaining({ decision: 'allowed', status: 200, approvalId: expect.stringMatching(/^apr_/) }));
    for (const item of deletes.filter((d) => d.decision === 'held')) expect(item.approvalId).toMatch(/^apr_/);
    const events = JSON.parse((await env.cli(['--json', 'audit', 'list', '--events', '--agent', 'careful-agent'])).stdout) as { items: { type: string; actor: string }[] };
    expect(events.items.map((e) => e.type)).toEqual(expect.arrayContaining(['approval.requested', 'approval.notified', 'approval.approve', 'approval.consumed']));
    expect(events.items).toContainEqual(expect.objectContaining({ type: 'approval.approve', actor: 'oncall@example.com' }));
  });
});
