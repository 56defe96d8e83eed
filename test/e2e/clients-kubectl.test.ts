// Real kubectl through Airlock, as agents use it, under examples/policy-kubectl.yaml (everyday
// kubectl: get -w, describe, logs, scale, rollout, edit; deletes held) and a policy that lets
// ConfigMaps be written (apply --server-side, diff). Every change is checked on the cluster itself
// with the admin kubeconfig. (--raw, proxy, auth can-i and whoami: issue 11 §4-5.)
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { admin, approvedWindow, createClientsConnection } from '../support/clients.ts';
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

  it('describe reads the object and its events', async () => {
    const described = await kubectl(['describe', 'deployment', deployment, '-n', 'prod'], { kubeconfig: everyday });
    expect(described.code, described.stderr).toBe(0);
    expect(described.stdout).toMatch(new RegExp(`^Name:\\s+${deployment}$`, 'm'));
    expect(described.stdout).toMatch(/^Events:/m);
  });

  it('logs is allowed and forwarded (the test cluster has no kubelet, so the API server has no log to give)', async () => {
    const logs = await kubectl(['logs', 'web-0', '-n', 'prod'], { kubeconfig: everyday });
    expect(logs.stderr).not.toMatch(/airlock|Forbidden/i);
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
  });

  it('rollout undo puts back the pod template of an earlier revision', async () => {
    // No controller manager runs, so the earlier revision's ReplicaSet is made here, as the
    // deployment controller would have made it.
    const uid = jsonpath('deployment', deployment, '.metadata.uid');
    admin(
      cluster!,
      ['apply', '-f', '-'],
      `
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: ${deployment}-rev1
  namespace: prod
  annotations: {deployment.kubernetes.io/revision: "1"}
  labels: {app: ${deployment}, pod-template-hash: rev1}
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: ${deployment}, uid: ${uid}, controller: true}]
spec:
  replicas: 0
  selector: {matchLabels: {app: ${deployment}, pod-template-hash: rev1}}
  template:
    metadata: {labels: {app: ${deployment}, pod-template-hash: rev1}}
    spec:
      automountServiceAccountToken: false
      containers: [{name: web, image: nginx:1.26}]
`,
    );
    const undone = await kubectl(['rollout', 'undo', `deployment/${deployment}`, '-n', 'prod', '--to-revision=1'], { kubeconfig: everyday });
    expect(undone.code, undone.stderr).toBe(0);
    expect(jsonpath('deployment', deployment, '.spec.template.spec.containers[0].image')).toBe('nginx:1.26');
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
});
