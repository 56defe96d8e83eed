// The single path with real kubectl against the real kube-apiserver: scope,
// streaming, recording, transcripts without credentials or Secret values.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubectl, kubectlStream } from '../support/kubectl.ts';
import { PROD_POLICY, startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';
import { TRANSCRIPT_BUCKET } from '../../local/stack.ts';
import { ListObjectsV2Command, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';

const cluster = inject('cluster');

describe.skipIf(!cluster)('the proxy path with real kubectl', () => {
  let env: TestStack;
  let agent: TestAgent;
  let kubeconfig: string;
  const suffix = Date.now().toString(36);

  beforeAll(async () => {
    env = await startTestStack();
    await env.createConnection('prod-cluster', { cluster: cluster!, policy: PROD_POLICY });
    agent = await env.createAgent('e2e-agent');
    const window = await agent.cli(['access', 'request', '--connection', 'prod-cluster', '--duration', '30m', '--reason', 'e2e test of the proxy path']);
    expect(window.code, window.stderr).toBe(0);
    kubeconfig = await agent.kubeconfig('prod-cluster');
  });
  afterAll(async () => {
    await env?.stop();
  });

  it('gets, lists, creates and deletes in prod', async () => {
    const name = `cm-${suffix}`;
    const list = await kubectl(['get', 'pods', '-n', 'prod', '-o', 'name'], { kubeconfig });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain('pod/web-0');

    const get = await kubectl(['get', 'configmap', 'app-config', '-n', 'prod', '-o', 'jsonpath={.data.mode}'], { kubeconfig });
    expect(get.stdout).toBe('production');

    const create = await kubectl(['create', 'configmap', name, '-n', 'prod', '--from-literal=a=b'], { kubeconfig });
    expect(create.code, create.stderr).toBe(0);
    const check = await kubectl(['get', 'configmap', name, '-n', 'prod', '-o', 'jsonpath={.data.a}'], { kubeconfig: cluster!.adminKubeconfig });
    expect(check.stdout).toBe('b');

    const del = await kubectl(['delete', 'configmap', name, '-n', 'prod'], { kubeconfig });
    expect(del.code, del.stderr).toBe(0);
  });

  it('refuses secrets by policy with a Status kubectl prints', async () => {
    const result = await kubectl(['get', 'secrets', '-n', 'prod'], { kubeconfig });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('Error from server (Forbidden): airlock: list secrets in namespace prod is not allowed on "prod-cluster": rule 1 (deny resources [secrets])');
  });

  it('refuses a namespace outside the policy', async () => {
    const result = await kubectl(['get', 'pods', '-n', 'staging'], { kubeconfig });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('no rule matches (default deny)');
  });

  it('streams a watch: an event arrives while the request is open', async () => {
    const name = `watched-${suffix}`;
    const watch = kubectlStream(['get', 'configmaps', '-n', 'prod', '-w', '--output-watch-events'], { kubeconfig });
    try {
      await watch.waitFor('app-config');
      const created = await kubectl(['create', 'configmap', name, '-n', 'prod'], { kubeconfig: cluster!.adminKubeconfig });
      expect(created.code, created.stderr).toBe(0);
      const output = await watch.waitFor(name);
      expect(output).toMatch(new RegExp(`ADDED\\s+${name}`));
    } finally {
      watch.stop();
      await kubectl(['delete', 'configmap', name, '-n', 'prod', '--wait=false'], { kubeconfig: cluster!.adminKubeconfig });
    }
  });

  it('records every request with agent and decision; transcripts hold no token', async () => {
    type Item = { id: string; agent: string; decision: string; verb: string; resource: string; namespace: string; status: number; phase: string };
    let items: Item[] = [];
    // Records complete after their responses (a watch when its stream closes): wait until none is still open.
    for (let attempt = 0; attempt < 50; attempt++) {
      const audit = await env.cli(['--json', 'audit', 'list', '--agent', 'e2e-agent', '--limit', '500']);
      expect(audit.code, audit.stderr).toBe(0);
      items = (JSON.parse(audit.stdout) as { items: Item[] }).items;
      if (items.every((item) => item.phase !== 'started')) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(items.length).toBeGreaterThan(5);
    for (const item of items) expect(item.agent).toBe('e2e-agent');
    expect(items).toContainEqual(expect.objectContaining({ verb: 'list', resource: 'secrets', namespace: 'prod', decision: 'denied', status: 403 }));
    expect(items).toContainEqual(expect.objectContaining({ verb: 'create', resource: 'configmaps', namespace: 'prod', decision: 'allowed', status: 201 }));
    expect(items).toContainEqual(expect.objectContaining({ verb: 'watch', resource: 'configmaps', decision: 'allowed' }));

    const shown = await env.cli(['audit', 'show', items.find((item) => item.verb === 'create')!.id]);
    const detail = JSON.parse(shown.stdout) as { record: { transcriptKey: string; phase: string }; transcript: { request: { headers: Record<string, string> }; agent: string } };
    expect(detail.record.phase).toBe('complete');
    expect(detail.transcript.agent).toBe('e2e-agent');
    expect(detail.transcript.request.headers.authorization).toBe('[REDACTED]');

    // Every transcript object, raw from S3: neither the agent's token nor the cluster credential appears.
    const s3 = new S3Client({ region: 'us-east-1', endpoint: env.stack.endpoints.s3, forcePathStyle: true, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const objects = await s3.send(new ListObjectsV2Command({ Bucket: TRANSCRIPT_BUCKET, Prefix: 'transcripts/prod-cluster/' }));
    expect(objects.KeyCount).toBeGreaterThan(5);
    const token = JSON.parse((await agent.cli(['token', '--connection', 'prod-cluster'])).stdout).status.token as string;
    for (const object of objects.Contents ?? []) {
      const text = await (await s3.send(new GetObjectCommand({ Bucket: TRANSCRIPT_BUCKET, Key: object.Key }))).Body!.transformToString();
      expect(text).not.toContain(token.split('.')[2]);
      expect(text).not.toContain(cluster!.connectionToken);
      expect(text).not.toMatch(/Bearer [A-Za-z0-9_-]{20,}/);
    }
  });
});

describe.skipIf(!cluster)('Secret values never reach a transcript', () => {
  let env: TestStack;
  let kubeconfig: string;

  beforeAll(async () => {
    env = await startTestStack();
    // A connection that may read secrets (cluster-admin credential, policy allows it): the agent sees the value, the transcript must not.
    await env.createConnection('secret-reader', {
      cluster: cluster!,
      token: cluster!.adminToken,
      policy: 'windowApproval: none\nrules:\n  - effect: allow\n    resources: [secrets]\n    namespaces: [prod]\n',
    });
    const agent = await env.createAgent('reader');
    await agent.cli(['access', 'request', '--connection', 'secret-reader', '--duration', '10m', '--reason', 'read a secret']);
    kubeconfig = await agent.kubeconfig('secret-reader');
  });
  afterAll(async () => {
    await env?.stop();
  });

  it('redacts data in get, list and apply transcripts', async () => {
    const get = await kubectl(['get', 'secret', 'db-password', '-n', 'prod', '-o', 'jsonpath={.data.password}'], { kubeconfig });
    expect(Buffer.from(get.stdout, 'base64').toString()).toBe('seeded-prod-secret-value');
    const list = await kubectl(['get', 'secrets', '-n', 'prod', '-o', 'json'], { kubeconfig });
    expect(list.code, list.stderr).toBe(0);
    const applied = await kubectl(['apply', '-n', 'prod', '-f', '-'], {
      kubeconfig,
      input: 'apiVersion: v1\nkind: Secret\nmetadata: {name: applied-secret}\nstringData: {key: applied-secret-value}\n',
    });
    expect(applied.code, applied.stderr).toBe(0);

    const s3 = new S3Client({ region: 'us-east-1', endpoint: env.stack.endpoints.s3, forcePathStyle: true, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const objects = await s3.send(new ListObjectsV2Command({ Bucket: TRANSCRIPT_BUCKET }));
    let redactions = 0;
    for (const object of objects.Contents ?? []) {
      const text = await (await s3.send(new GetObjectCommand({ Bucket: TRANSCRIPT_BUCKET, Key: object.Key }))).Body!.transformToString();
      for (const secret of ['seeded-prod-secret-value', 'applied-secret-value']) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(Buffer.from(secret).toString('base64'));
      }
      redactions += text.split('[REDACTED]').length - 1;
    }
    expect(redactions).toBeGreaterThan(3);
    await kubectl(['delete', 'secret', 'applied-secret', '-n', 'prod'], { kubeconfig: cluster!.adminKubeconfig });
  });
});
