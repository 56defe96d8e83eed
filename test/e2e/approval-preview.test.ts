// What the approver sees (issue 12 §1), against the real API server with real
// kubectl and a real Chromium: a privileged pod padded past 2 KiB is shown whole
// with its flags, a YAML body is shown, a patch shows the API server's dry-run
// diff, a delete shows the live object, and a request Airlock cannot show offers
// no Approve. Screenshots: test-results/approval-preview-*.png.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { chromiumMissing, launchChromium } from '../support/browser.ts';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubectl } from '../support/kubectl.ts';
import { EXAMPLE_POLICY, startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');
const browserMissing = chromiumMissing('approval preview browser test');

describe.skipIf(!cluster || browserMissing)('the approver sees what will happen (real kubectl, real Chromium)', () => {
  let env: TestStack;
  let agent: TestAgent;
  let kubeconfig: string;
  let token: string;
  let browser: Browser;
  const suffix = Date.now().toString(36);
  const PADDING = `pad-${'x'.repeat(2100)}-end`;

  const admin = (args: string[]) => kubectl(args, { kubeconfig: cluster!.adminKubeconfig });
  const heldApproval = (stderr: string) => /airlock approvals wait (apr_[A-Za-z0-9_-]{22})/.exec(stderr)?.[1];

  /** Opens the approval's page in Chromium; returns its text and whether Approve is offered. */
  async function show(approvalId: string, screenshot: string) {
    const link = await env.approvalLink(approvalId, 'oncall@example.com');
    const page = await browser.newPage();
    await page.goto(link);
    const text = await page.locator('body').innerText();
    const approve = await page.getByRole('button', { name: 'Approve' }).count();
    const deny = await page.getByRole('button', { name: 'Deny' }).count();
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: `test-results/approval-preview-${screenshot}.png`, fullPage: true });
    await page.close();
    return { text, approve, deny, link };
  }

  beforeAll(async () => {
    env = await startTestStack();
    await env.createConnection('prod-cluster', { cluster: cluster!, policy: EXAMPLE_POLICY });
    agent = await env.createAgent('preview-agent');
    const window = await agent.cli(['access', 'request', '--connection', 'prod-cluster', '--duration', '30m', '--reason', 'debug the node', '--ticket', 'INC-12']);
    expect(window.code, window.stderr).toBe(0);
    kubeconfig = await agent.kubeconfig('prod-cluster');
    const issued = await agent.cli(['token', '--connection', 'prod-cluster']);
    expect(issued.code, issued.stderr).toBe(0);
    token = (JSON.parse(issued.stdout) as { status: { token: string } }).status.token;
    browser = await launchChromium(env);
  });
  afterAll(async () => {
    await browser?.close();
    await env?.stop();
    await admin(['delete', 'configmap', `cfg-${suffix}`, `yaml-${suffix}`, '-n', 'prod', '--ignore-not-found']);
  });

  it('shows a privileged pod with hostPID and hostPath: / padded past 2 KiB whole, its flags first, and records the dry run', async () => {
    const file = join(env.dir, 'privileged.json');
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `root-${suffix}`, namespace: 'prod', annotations: { padding: PADDING } },
      spec: {
        hostPID: true,
        // Without this the policy refuses the pod outright (it would mount a service-account token).
        automountServiceAccountToken: false,
        containers: [{ name: 'shell', image: 'busybox:1.36', command: ['sleep', '3600'], securityContext: { privileged: true } }],
        volumes: [{ name: 'host', hostPath: { path: '/' } }],
      },
    };
    writeFileSync(file, JSON.stringify(pod));
    const held = await kubectl(['create', '-f', file], { kubeconfig });
    expect(held.code).not.toBe(0);
    const approvalId = heldApproval(held.stderr)!;
    expect(approvalId, held.stderr).toBeDefined();
    const { text, approve } = await show(approvalId, 'privileged-pod');
    for (const expected of ['privileged: true', 'hostPID: true', 'hostPath volume: /', 'busybox:1.36', PADDING, 'debug the node', 'INC-12']) {
      expect(text).toContain(expected);
    }
    expect(text).not.toContain('not recorded');
    // The test API server runs without --allow-privileged: its dry run refuses the pod, and the page says
    // so instead of offering an Approve for a change nobody has seen the cluster accept.
    expect(text).toContain('the API server refused the dry run (422');
    expect(text).toContain('privileged: Forbidden');
    expect(approve).toBe(0);
    // The dry run reached the cluster recorded: allowed, naming the preview, with dryRun=All.
    const records = (await env.stack.services.records.query({ agent: 'preview-agent', limit: 200 })).items;
    expect(records).toContainEqual(
      expect.objectContaining({
        method: 'POST',
        decision: 'allowed',
        query: expect.stringContaining('dryRun=All'),
        reason: expect.stringMatching(/^approval preview of held request req_/),
        status: 422,
      }),
    );
    expect((await admin(['get', 'pod', `root-${suffix}`, '-n', 'prod'])).code).not.toBe(0); // nothing was created
  });

  it('offers Approve for a host-namespace pod the dry run accepts, shown whole with its diff', async () => {
    const file = join(env.dir, 'hostpid.json');
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `host-${suffix}`, namespace: 'prod', annotations: { padding: PADDING } },
      spec: {
        hostPID: true,
        automountServiceAccountToken: false,
        containers: [{ name: 'shell', image: 'busybox:1.36', command: ['sleep', '3600'], securityContext: { runAsUser: 0, capabilities: { add: ['SYS_PTRACE'] } } }],
        volumes: [{ name: 'host', hostPath: { path: '/' } }],
      },
    };
    writeFileSync(file, JSON.stringify(pod));
    const held = await kubectl(['create', '-f', file], { kubeconfig });
    const approvalId = heldApproval(held.stderr)!;
    expect(approvalId, held.stderr).toBeDefined();
    const { text, approve } = await show(approvalId, 'hostpid-pod');
    for (const expected of [
      'hostPID: true',
      'hostPath volume: /',
      'runAsUser: 0',
      'added capabilities: SYS_PTRACE',
      PADDING,
      'Dry run against the live object',
      'A new object: nothing is live under this name.',
    ]) {
      expect(text).toContain(expected);
    }
    expect(text).not.toContain('cannot be approved');
    expect(approve).toBe(1);
    const records = (await env.stack.services.records.query({ agent: 'preview-agent', limit: 200 })).items;
    expect(records).toContainEqual(expect.objectContaining({ method: 'POST', decision: 'allowed', query: expect.stringContaining('dryRun=All'), status: 201 }));
    expect((await admin(['get', 'pod', `host-${suffix}`, '-n', 'prod'])).code).not.toBe(0); // a dry run creates nothing
  });

  it('shows a YAML body', async () => {
    const yaml = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yaml-${suffix}\n  namespace: prod\ndata:\n  colour: blue-${suffix}\n`;
    const response = await env.https('POST', '/k8s/prod-cluster/api/v1/namespaces/prod/configmaps', { headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' }, body: yaml });
    expect(response.status).toBe(403);
    const approvalId = (JSON.parse(response.body) as { details: { approvalId?: string }; message: string }).message.match(/apr_[A-Za-z0-9_-]{22}/)![0];
    const { text, approve } = await show(approvalId, 'yaml');
    expect(text).toContain('ConfigMap');
    expect(text).toContain(`colour: blue-${suffix}`);
    expect(approve).toBe(1);
  });

  it('shows a patch as the dry-run diff against the live object', async () => {
    expect((await admin(['create', 'configmap', `cfg-${suffix}`, '-n', 'prod', '--from-literal=mode=old'])).code).toBe(0);
    const held = await kubectl(['patch', 'configmap', `cfg-${suffix}`, '-n', 'prod', '--type=merge', '-p', '{"data":{"mode":"new"}}'], { kubeconfig });
    const approvalId = heldApproval(held.stderr)!;
    expect(approvalId).toBeDefined();
    const { text, approve } = await show(approvalId, 'patch');
    expect(text).toContain('-   mode: old');
    expect(text).toContain('+   mode: new');
    expect(text).not.toContain('managedFields');
    expect(text).not.toContain('resourceVersion');
    expect(approve).toBe(1);
  });

  it('shows a delete with the live object and what goes with it', async () => {
    const held = await kubectl(['delete', 'configmap', `cfg-${suffix}`, '-n', 'prod'], { kubeconfig });
    const approvalId = heldApproval(held.stderr)!;
    expect(approvalId).toBeDefined();
    const { text, approve } = await show(approvalId, 'delete');
    expect(text).toContain('Live object');
    expect(text).toContain('mode: old');
    expect(text).toContain('propagationPolicy');
    expect(text).toContain(`ConfigMap prod/cfg-${suffix}`);
    expect(text).not.toContain('(no kind)');
    expect(approve).toBe(1);
  });

  it('offers no Approve when it cannot show the change, and refuses an approve POST', async () => {
    const response = await env.https('POST', '/k8s/prod-cluster/api/v1/namespaces/prod/configmaps', {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"kind": "ConfigMap", "metadata": {',
    });
    expect(response.status).toBe(403);
    const approvalId = (JSON.parse(response.body) as { message: string }).message.match(/apr_[A-Za-z0-9_-]{22}/)![0];
    const { text, approve, deny, link } = await show(approvalId, 'blind');
    expect(text).toContain('Airlock cannot show what this request does, so it cannot be approved.');
    expect(approve).toBe(0);
    expect(deny).toBe(1);
    const posted = await env.decide(link, 'approve');
    expect(posted.status).toBe(409);
    expect(posted.body).toContain('cannot be approved');
    expect(await env.stack.services.state.getApproval(approvalId)).toMatchObject({ status: 'pending' });
  });
});
