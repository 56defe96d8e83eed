// Real kubectl through Airlock, as agents use it, under examples/policy-kubectl.yaml (everyday
// kubectl: get -w, describe, logs, scale, rollout, edit; deletes held) and a policy that lets
// ConfigMaps be written (apply --server-side, diff). Every change is checked on the cluster itself
// with the admin kubeconfig. `--raw` and `kubectl proxy` reach the root paths (the token names the
// connection); `auth can-i` and `whoami` are answered for the agent, not the connection's identity.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { admin, APPROVER, approvedWindow, createClientsConnection } from '../support/clients.ts';
import { kubectl, kubectlStream } from '../support/kubectl.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');
const KUBECTL_POLICY = readFileSync(new URL('../../examples/policy-kubectl.yaml', import.meta.url), 'utf8');
/** ConfigMaps may be written in prod; nothing else. */
const CONFIGMAP_WRITES = `
maxWindow: 1h
windowApproval: none
rules:
  - effect: deny
    resources: [secrets]
  - effect: allow
    verbs: [get, list, watch, create, update, patch]
    resources: [configmaps]
    namespaces: [prod]
`;

describe.skipIf(!cluster)('kubectl through Airlock', () => {
  let env: TestStack;
  let everyday: string;
  let writes: string;
  const suffix = Date.now().toString(36);
  const deployment = `kubectl-web-${suffix}`;
  const jsonpath = (kind: string, name: string, path: string) => admin(cluster!, ['get', kind, name, '-n', 'prod', '-o', `jsonpath={${path}}`]);

  beforeAll(async () => {
    env = await startTestStack();
    await createClientsConnection(env, cluster!, 'kubectl-everyday', KUBECTL_POLICY);
    await createClientsConnection(env, cluster!, 'kubectl-writes', CONFIGMAP_WRITES);
    const agent = await env.createAgent(`kubectl-${suffix}`);
    await approvedWindow(env, agent, 'kubectl-everyday', 'kubectl e2e');
    everyday = await agent.kubeconfig('kubectl-everyday');
    const window = await agent.cli(['access', 'request', '--connection', 'kubectl-writes', '--duration', '30m', '--reason', 'kubectl e2e']);
    expect(window.code, window.stderr).toBe(0);
    writes = await agent.kubeconfig('kubectl-writes');
    admin(
      cluster!,
      ['apply', '-f', '-'],
      `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${deployment}, namespace: prod}
spec:
  replicas: 1
  selector: {matchLabels: {app: ${deployment}}}
  template:
    metadata: {labels: {app: ${deployment}}}
    spec:
      automountServiceAccountToken: false
      containers: [{name: web, image: nginx:1.27}]
`,
    );
  });
  afterAll(async () => {
    await env?.stop();
    if (cluster) admin(cluster, ['delete', 'deployment', deployment, '-n', 'prod', '--ignore-not-found']);
  });

  it('get -w streams changes made on the cluster', async () => {
    const watch = kubectlStream(['get', 'configmaps', '-n', 'prod', '-w', '-o', 'name'], { kubeconfig: everyday });
    try {
      await watch.waitFor('configmap/app-config');
      admin(cluster!, ['create', 'configmap', `watched-${suffix}`, '-n', 'prod', '--from-literal=k=v']);
      await watch.waitFor(`configmap/watched-${suffix}`);
    } finally {
      watch.stop();
      admin(cluster!, ['delete', 'configmap', `watched-${suffix}`, '-n', 'prod', '--ignore-not-found']);
    }
  });

  it('kubectl get --raw reaches the API at the root: the token names the connection, and it is on record', async () => {
    const raw = await kubectl(['get', '--raw', '/api/v1/namespaces/prod/pods'], { kubeconfig: everyday });
    expect(raw.code, raw.stderr).toBe(0);
    expect((JSON.parse(raw.stdout) as { kind: string }).kind).toBe('PodList');
    const secrets = await kubectl(['get', '--raw', '/api/v1/namespaces/prod/secrets'], { kubeconfig: everyday });
    expect(secrets.code).not.toBe(0);
    expect(secrets.stderr).toContain('Error from server (Forbidden): airlock: list secrets in namespace prod is not allowed on "kubectl-everyday": rule 1 (deny resources [secrets])');
    // Anything else at the root says what to do, as a Kubernetes Status kubectl prints.
    const metrics = await kubectl(['get', '--raw', '/metrics'], { kubeconfig: everyday });
    expect(metrics.code).not.toBe(0);
    expect(metrics.stderr).toContain('Error from server (NotFound): airlock: no route GET /metrics; Airlock serves the Kubernetes API at /api, /apis, /version and /openapi');
    const listed = await env.cli(['--json', 'audit', 'list', '--connection', 'kubectl-everyday', '--limit', '50']);
    const items = (JSON.parse(listed.stdout) as { items: { resource: string; verb: string; namespace: string; connection: string }[] }).items;
    expect(items).toContainEqual(expect.objectContaining({ connection: 'kubectl-everyday', verb: 'list', resource: 'pods', namespace: 'prod' }));
  });

  it('kubectl proxy (which drops the server path) serves the API through Airlock', async () => {
    const proxy = kubectlStream(['proxy', '--port=0'], { kubeconfig: everyday });
    try {
      const started = await proxy.waitFor('Starting to serve on');
      const port = Number(/Starting to serve on 127\.0\.0\.1:(\d+)/.exec(started)?.[1]);
      const fetched = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        get(`http://127.0.0.1:${port}/api/v1/namespaces/prod/configmaps/app-config`, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        }).on('error', reject);
      });
      expect(fetched.status, fetched.body).toBe(200);
      expect((JSON.parse(fetched.body) as { data: { mode: string } }).data.mode).toBe('production');
    } finally {
      proxy.stop();
    }
  });

  it('kubectl auth can-i answers for the agent: yes where the policy allows, no with why where it holds or denies', async () => {
    const can = (...args: string[]) => kubectl(['auth', 'can-i', ...args], { kubeconfig: everyday });
    const read = await can('get', 'pods', '-n', 'prod');
    expect(read.stdout.trim(), read.stderr).toBe('yes');
    // The connection's own identity may delete pods; the policy holds every delete for approval.
    expect((await kubectl(['auth', 'can-i', 'delete', 'pods', '-n', 'prod'], { kubeconfig: cluster!.adminKubeconfig })).stdout.trim()).toBe('yes');
    const held = await can('delete', 'pods', '-n', 'prod');
    expect(held.code).not.toBe(0);
    expect(held.stdout.trim()).toMatch(/^no - airlock: needs a one-time human approval of each such request \(rule \d+ \(approve verbs \[delete, deletecollection\] namespaces \[prod\]\)\)$/);
    const denied = await can('get', 'secrets', '-n', 'prod');
    expect(denied.stdout.trim()).toBe('no - airlock: refused by policy: rule 1 (deny resources [secrets])');
    const outside = await can('get', 'pods', '-n', 'kube-system');
    expect(outside.stdout.trim()).toBe('no - airlock: refused by policy: no rule matches (default deny)');
  });

  it('kubectl auth can-i --list shows only what the policy allows without approval', async () => {
    const list = await kubectl(['auth', 'can-i', '--list', '-n', 'prod'], { kubeconfig: everyday });
    expect(list.code, list.stderr).toBe(0);
    const lines = list.stdout.split('\n');
    expect(lines.some((line) => /^pods\s.*\[get list watch\]/.test(line) || /^pods\s.*\[get\]/.test(line))).toBe(true);
    expect(lines.some((line) => line.startsWith('secrets '))).toBe(false);
    expect(lines.some((line) => /\bdelete\b/.test(line))).toBe(false);
  });

  it('kubectl auth whoami is the agent, its window and connection, not the connection identity', async () => {
    const whoami = await kubectl(['auth', 'whoami', '-o', 'json'], { kubeconfig: everyday });
    expect(whoami.code, whoami.stderr).toBe(0);
    const info = (JSON.parse(whoami.stdout) as { status: { userInfo: { username: string; uid: string; extra: Record<string, string[]> } } }).status.userInfo;
    expect(info.username).toBe(`airlock:agent:kubectl-${suffix}`);
    expect(info.uid).toMatch(/^agt_/);
    expect(info.extra['airlock.dev/connection']).toEqual(['kubectl-everyday']);
    expect(info.extra['airlock.dev/window']?.[0]).toMatch(/^gr_/);
  });

  it('describe reads the object and its events', async () => {
    const described = await kubectl(['describe', 'deployment', deployment, '-n', 'prod'], { kubeconfig: everyday });
    expect(described.code, described.stderr).toBe(0);
    expect(described.stdout).toMatch(new RegExp(`^Name:\\s+${deployment}$`, 'm'));
    expect(described.stdout).toMatch(/^Events:/m);
  });

  it('logs is allowed and forwarded (test/e2e/logs.test.ts covers what comes back)', async () => {
    const logs = await kubectl(['logs', 'web-0', '-n', 'prod', '--tail=5', '--limit-bytes=10000'], { kubeconfig: everyday });
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain('airlock test cluster: no log file is set for this container');
    // The record is completed as the response ends; the listing can trail it by a moment.
    type Item = { resource: string; name?: string; decision: string };
    let items: Item[] = [];
    for (let attempt = 0; attempt < 50; attempt++) {
      const listed = await env.cli(['--json', 'audit', 'list', '--connection', 'kubectl-everyday', '--all']);
      items = (JSON.parse(listed.stdout) as { items: Item[] }).items;
      if (items.some((item) => item.resource === 'pods/log' && item.decision !== 'pending')) break;
      await new Promise((done) => setTimeout(done, 200));
    }
    expect(items).toContainEqual(expect.objectContaining({ resource: 'pods/log', name: 'web-0', decision: 'allowed' }));
  });

  it('rollout status completes once the pods run (controllers, scheduler, kwok nodes); the cluster agrees', async () => {
    const status = await kubectl(['rollout', 'status', `deployment/${deployment}`, '-n', 'prod', '--timeout=90s'], { kubeconfig: everyday });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`deployment "${deployment}" successfully rolled out`);
    expect(jsonpath('deployment', deployment, '.status.readyReplicas')).toBe('1');
    const pods = admin(cluster!, ['get', 'pods', '-n', 'prod', '-l', `app=${deployment}`, '-o', 'jsonpath={range .items[*]}{.spec.nodeName} {.status.phase}{"\\n"}{end}']);
    expect(pods.trim()).toMatch(/^kwok-node-\d Running$/);
  });

  it('scale changes the replicas (the rule names deployments/scale)', async () => {
    const scaled = await kubectl(['scale', 'deployment', deployment, '-n', 'prod', '--replicas=3'], { kubeconfig: everyday });
    expect(scaled.code, scaled.stderr).toBe(0);
    expect(jsonpath('deployment', deployment, '.spec.replicas')).toBe('3');
  });

  it('rollout restart patches the pod template; rollout history reads it', async () => {
    const restarted = await kubectl(['rollout', 'restart', `deployment/${deployment}`, '-n', 'prod'], { kubeconfig: everyday });
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(jsonpath('deployment', deployment, '.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt')).not.toBe('');
    const history = await kubectl(['rollout', 'history', `deployment/${deployment}`, '-n', 'prod'], { kubeconfig: everyday });
    expect(history.code, history.stderr).toBe(0);
    // The restart rolls out: a new ReplicaSet with every replica ready, the old one scaled to zero.
    const status = await kubectl(['rollout', 'status', `deployment/${deployment}`, '-n', 'prod', '--timeout=90s'], { kubeconfig: everyday });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('successfully rolled out');
    const replicaSets = () =>
      admin(cluster!, [
        'get',
        'replicasets',
        '-n',
        'prod',
        '-l',
        `app=${deployment}`,
        '-o',
        'jsonpath={range .items[*]}{.metadata.annotations.deployment\\.kubernetes\\.io/revision}={.spec.replicas}/{.status.readyReplicas}{"\\n"}{end}',
      ]);
    // The old ReplicaSet's status follows its scale-down by a moment.
    await expect.poll(() => replicaSets().trim().split('\n').sort(), { timeout: 30_000, interval: 200 }).toEqual(['1=0/', '2=3/3']);
  });

  it('rollout undo puts back the pod template of an earlier revision, and it rolls out', async () => {
    // Revision 1 is the template before the restart (the deployment controller keeps its ReplicaSet).
    const undone = await kubectl(['rollout', 'undo', `deployment/${deployment}`, '-n', 'prod', '--to-revision=1'], { kubeconfig: everyday });
    expect(undone.code, undone.stderr).toBe(0);
    expect(jsonpath('deployment', deployment, '.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt')).toBe('');
    const status = await kubectl(['rollout', 'status', `deployment/${deployment}`, '-n', 'prod', '--timeout=90s'], { kubeconfig: everyday });
    expect(status.code, status.stderr).toBe(0);
    expect(jsonpath('deployment', deployment, '.metadata.annotations.deployment\\.kubernetes\\.io/revision')).toBe('3');
  });

  it('edit saves the change made in KUBE_EDITOR', async () => {
    const editor = join(env.dir, 'editor.sh');
    writeFileSync(editor, '#!/bin/sh\nsed -i "0,/^  replicas: .*/s//  replicas: 4/" "$1"\n');
    chmodSync(editor, 0o755);
    const edited = await kubectl(['edit', 'deployment', deployment, '-n', 'prod'], { kubeconfig: everyday, env: { KUBE_EDITOR: editor, EDITOR: editor } });
    expect(edited.code, edited.stderr).toBe(0);
    expect(jsonpath('deployment', deployment, '.spec.replicas')).toBe('4');
  });

  it('a delete is held for approval and a create is refused; the cluster is unchanged', async () => {
    const held = await kubectl(['delete', 'configmap', 'app-config', '-n', 'prod'], { kubeconfig: everyday });
    expect(held.code).not.toBe(0);
    expect(held.stderr).toMatch(/needs a one-time human approval/);
    expect(jsonpath('configmap', 'app-config', '.metadata.name')).toBe('app-config');
    const created = await kubectl(['create', 'configmap', `refused-${suffix}`, '-n', 'prod'], { kubeconfig: everyday });
    expect(created.code).not.toBe(0);
    expect(created.stderr).toMatch(/airlock: create configmaps in namespace prod is not allowed/);
    expect(admin(cluster!, ['get', 'configmaps', '-n', 'prod', '-o', 'name'])).not.toContain(`refused-${suffix}`);
  });

  it('apply --server-side creates and updates; diff shows a change without making it', async () => {
    const name = `applied-${suffix}`;
    const manifest = (mode: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: prod}\ndata: {mode: ${mode}}\n`;
    try {
      const applied = await kubectl(['apply', '--server-side', '-f', '-'], { kubeconfig: writes, input: manifest('one') });
      expect(applied.code, applied.stderr).toBe(0);
      expect(applied.stdout).toContain(`configmap/${name} serverside-applied`);
      expect(jsonpath('configmap', name, '.data.mode')).toBe('one');
      expect(jsonpath('configmap', name, '.metadata.managedFields[0].manager')).toBe('kubectl');

      const diff = await kubectl(['diff', '-f', '-'], { kubeconfig: writes, input: manifest('two') });
      expect(diff.code, diff.stderr).toBe(1); // 1 = differences found
      expect(diff.stdout).toMatch(/^-\s+mode: one$/m);
      expect(diff.stdout).toMatch(/^\+\s+mode: two$/m);
      expect(jsonpath('configmap', name, '.data.mode')).toBe('one');

      const updated = await kubectl(['apply', '--server-side', '-f', '-'], { kubeconfig: writes, input: manifest('two') });
      expect(updated.code, updated.stderr).toBe(0);
      expect(jsonpath('configmap', name, '.data.mode')).toBe('two');
    } finally {
      admin(cluster!, ['delete', 'configmap', name, '-n', 'prod', '--ignore-not-found']);
    }
  });

  it('delete deployment, once approved, cascades to its ReplicaSets and Pods (garbage collection)', async () => {
    expect(admin(cluster!, ['get', 'replicasets,pods', '-n', 'prod', '-l', `app=${deployment}`, '-o', 'name'])).toContain('replicaset.apps/');
    const held = await kubectl(['delete', 'deployment', deployment, '-n', 'prod', '--wait=false'], { kubeconfig: everyday });
    expect(held.code).not.toBe(0);
    const approvalId = /airlock approvals wait (apr_[\w-]+)/.exec(held.stderr)?.[1];
    expect(approvalId, held.stderr).toBeDefined();
    const decided = await env.decide(await env.approvalLink(approvalId!, APPROVER), 'approve');
    expect(decided.status, decided.body).toBe(200);
    let deleted = held;
    for (let attempt = 0; attempt < 50 && deleted.code !== 0; attempt++) {
      await new Promise((done) => setTimeout(done, 200)); // the decision reaches the approval a moment after the page answers
      deleted = await kubectl(['delete', 'deployment', deployment, '-n', 'prod', '--wait=false'], { kubeconfig: everyday });
    }
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toContain(`deployment.apps "${deployment}" deleted`);
    // The garbage collector removes what the Deployment owned; checked on the cluster itself.
    const left = () => admin(cluster!, ['get', 'deployments,replicasets,pods', '-n', 'prod', '-l', `app=${deployment}`, '-o', 'name']).trim();
    await expect.poll(left, { timeout: 60_000, interval: 250 }).toBe('');
  });
});
