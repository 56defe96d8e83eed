// Scope follows what the API server will do (issue 9 §1), with real kubectl against
// the real kube-apiserver. Each connection here holds the cluster-ADMIN token, so
// the cluster itself would accept every request below: the policy, read by effect,
// is all that stands between the agent and the change. Every refusal is then
// checked in the cluster directly (admin kubeconfig): nothing was created,
// deleted or minted.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { kubectl } from '../support/kubectl.ts';
import { startTestStack, type TestAgent, type TestStack } from '../support/stack.ts';

const cluster = inject('cluster');

/** Reads, writes and creates in prod; Secrets and create of ConfigMaps/Services denied; pods created and anything deleted only with approval. */
const GUARDED = `windowApproval: none
approvers: [oncall@example.com]
rules:
  - effect: deny
    resources: [secrets]
  - effect: deny
    verbs: [create]
    resources: [configmaps, services]
  - effect: approve
    verbs: [create]
    resources: [pods]
    namespaces: [prod]
  - effect: approve
    verbs: [delete]
    namespaces: [prod]
  - effect: allow
    verbs: [get, list, watch, create, patch, update]
    namespaces: [prod]
`;

/** The README's own shape, as the red team found it: broad create, no resources. */
const README_SHAPE = `windowApproval: none
approvers: [oncall@example.com]
rules:
  - effect: deny
    resources: [secrets]
  - effect: approve
    verbs: [delete]
  - effect: allow
    verbs: [get, list, watch, create]
    namespaces: [prod]
`;

/** Deletes anything but never touches Secrets. */
const DELETER = `windowApproval: none
rules:
  - effect: deny
    resources: [secrets]
  - effect: allow
    verbs: [get, list, delete]
`;

describe.skipIf(!cluster)('scope by what a request does (real kubectl, cluster-admin credential behind Airlock)', () => {
  const suffix = Date.now().toString(36);
  const admin = () => ({ kubeconfig: cluster!.adminKubeconfig });
  let env: TestStack;
  let agent: TestAgent;
  const kubeconfigs: Record<'guarded' | 'readme' | 'deleter', string> = { guarded: '', readme: '', deleter: '' };

  async function exists(kind: string, name: string, namespace?: string): Promise<boolean> {
    const result = await kubectl(['get', kind, name, ...(namespace ? ['-n', namespace] : []), '-o', 'name'], admin());
    if (result.code !== 0 && !/NotFound/.test(result.stderr)) throw new Error(result.stderr);
    return result.code === 0;
  }

  const pod = (name: string, spec: Record<string, unknown> = {}) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'prod' },
    spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image: 'busybox' }], ...spec },
  });

  beforeAll(async () => {
    env = await startTestStack();
    const token = cluster!.adminToken;
    await env.createConnection('fx-guarded', { cluster: cluster!, policy: GUARDED, token });
    await env.createConnection('fx-readme', { cluster: cluster!, policy: README_SHAPE, token });
    await env.createConnection('fx-deleter', { cluster: cluster!, policy: DELETER, token });
    agent = await env.createAgent('fx-agent');
    for (const connection of ['guarded', 'readme', 'deleter'] as const) {
      const window = await agent.cli(['access', 'request', '--connection', `fx-${connection}`, '--duration', '30m', '--reason', 'effects e2e']);
      expect(window.code, window.stderr).toBe(0);
      kubeconfigs[connection] = await agent.kubeconfig(`fx-${connection}`);
    }
  });
  afterAll(async () => {
    await kubectl(['delete', 'namespace', `fx-ns-${suffix}`, '--wait=false', '--ignore-not-found'], admin());
    await kubectl(['delete', 'pod', `fx-victim-${suffix}`, '-n', 'prod', '--wait=false', '--ignore-not-found', '--grace-period=0'], admin());
    await env?.stop();
  });

  describe('server-side apply and PUT are checked as create too', () => {
    it('kubectl apply --server-side of a new ConfigMap is refused under deny create configmaps; nothing is created', async () => {
      const name = `fx-ssa-${suffix}`;
      const manifest = stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'prod' }, data: { a: 'b' } });
      const result = await kubectl(['apply', '--server-side', '-f', '-'], { kubeconfig: kubeconfigs.guarded, input: manifest });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('server-side apply creates the object when it does not exist: rule 2 (deny verbs [create] resources [configmaps, services])');
      expect(await exists('configmap', name, 'prod')).toBe(false);
    });

    it('kubectl apply --server-side of a pod is held under approve create pods; no pod appears', async () => {
      const name = `fx-ssa-pod-${suffix}`;
      const result = await kubectl(['apply', '--server-side', '-f', '-'], { kubeconfig: kubeconfigs.guarded, input: stringify(pod(name)) });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/needs a human approval|approval/i);
      expect(await exists('pod', name, 'prod')).toBe(false);
    });

    it('a PUT to a Service that does not exist (create-on-update) is refused under deny create services', async () => {
      const name = `fx-put-${suffix}`;
      const service = { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'prod' }, spec: { ports: [{ port: 80 }] } };
      const result = await kubectl(['replace', '-f', '-'], { kubeconfig: kubeconfigs.guarded, input: stringify(service) });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('a PUT creates services that do not exist');
      expect(await exists('service', name, 'prod')).toBe(false);
    });
  });

  describe('credentials and wider rights need a rule that names them', () => {
    it('kubectl create token under the README shape is refused: no ServiceAccount token is minted', async () => {
      const result = await kubectl(['create', 'token', 'default', '-n', 'prod'], { kubeconfig: kubeconfigs.readme });
      expect(result.code).not.toBe(0);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('mints a ServiceAccount token the cluster accepts, so only a rule that names serviceaccounts/token in resources can allow it');
      // Nothing reached the cluster: the refusal is Airlock's, and on record as denied.
      // (Records complete just after the response: wait for this one.)
      const wanted = expect.objectContaining({ resource: 'serviceaccounts/token', verb: 'create', decision: 'denied', status: 403 });
      for (let attempt = 0; ; attempt++) {
        const audit = await env.cli(['--json', 'audit', 'list', '--agent', 'fx-agent', '--limit', '500']);
        const items = (JSON.parse(audit.stdout) as { items: { resource: string; verb: string; decision: string; status: number }[] }).items;
        if (attempt === 50) expect(items).toContainEqual(wanted);
        if (items.some((item) => wanted.asymmetricMatch(item))) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });

    it('kubectl create rolebinding to cluster-admin under the README shape is refused; no binding exists', async () => {
      const name = `fx-rb-${suffix}`;
      const result = await kubectl(['create', 'rolebinding', name, '--clusterrole=cluster-admin', '--serviceaccount=prod:default', '-n', 'prod'], { kubeconfig: kubeconfigs.readme });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('widens what some identity may do');
      expect(await exists('rolebinding', name, 'prod')).toBe(false);
    });

    it('connections create warns when a broad rule would otherwise reach them', async () => {
      const { writeFileSync } = await import('node:fs');
      const { join } = await import('node:path');
      const policy = join(env.dir, 'warn.policy.yaml');
      const tokenFile = join(env.dir, 'warn.token');
      writeFileSync(policy, README_SHAPE);
      writeFileSync(tokenFile, cluster!.connectionToken, { mode: 0o600 });
      const created = await env.cli(['connections', 'create', 'fx-warn', '--server', cluster!.server, '--ca-file', cluster!.caFile, '--token-file', tokenFile, '--policy', policy]);
      expect(created.code, created.stderr).toBe(0);
      expect(created.stderr).toContain('warning: rule 3 (allow verbs [get, list, watch, create] namespaces [prod]) would reach create serviceaccounts/token');
      expect(created.stderr).toContain('create rolebindings');
    });
  });

  describe('an eviction deletes', () => {
    it('a kubectl drain-style eviction is held by approve verbs [delete]; the pod is still there', async () => {
      const name = `fx-victim-${suffix}`;
      const created = await kubectl(['create', '-f', '-'], { ...admin(), input: JSON.stringify(pod(name)) });
      expect(created.code, created.stderr).toBe(0);
      const eviction = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: 'prod' } };
      // --raw paths are taken from the server's root, so the raw path names the connection's route.
      const result = await kubectl(['create', '--raw', `/k8s/fx-readme/api/v1/namespaces/prod/pods/${name}/eviction`, '-f', '-'], { kubeconfig: kubeconfigs.readme, input: JSON.stringify(eviction) });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/approval/i);
      const got = await kubectl(['get', 'pod', name, '-n', 'prod', '-o', 'jsonpath={.metadata.deletionTimestamp}'], admin());
      expect(got.code, got.stderr).toBe(0);
      expect(got.stdout).toBe('');
    });
  });

  describe('deny secrets means it: workloads that read a Secret, or hold a token', () => {
    it.each([
      ['env.valueFrom.secretKeyRef', { containers: [{ name: 'c', image: 'busybox', env: [{ name: 'P', valueFrom: { secretKeyRef: { name: 'db-credentials', key: 'password' } } }] }] }],
      ['envFrom.secretRef', { containers: [{ name: 'c', image: 'busybox', envFrom: [{ secretRef: { name: 'db-credentials' } }] }] }],
      ['a secret volume', { containers: [{ name: 'c', image: 'busybox' }], volumes: [{ name: 'v', secret: { secretName: 'db-credentials' } }] }],
      ['a projected volume', { containers: [{ name: 'c', image: 'busybox' }], volumes: [{ name: 'v', projected: { sources: [{ secret: { name: 'db-credentials' } }] } }] }],
      ['imagePullSecrets', { containers: [{ name: 'c', image: 'busybox' }], imagePullSecrets: [{ name: 'db-credentials' }] }],
    ])('a pod reading a Secret by %s is refused, naming the reference; no pod is created', async (_, spec) => {
      const name = `fx-ref-${Math.random().toString(36).slice(2, 8)}-${suffix}`;
      const result = await kubectl(['apply', '-f', '-'], { kubeconfig: kubeconfigs.readme, input: stringify(pod(name, spec)) });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/the pods body reads Secret "db-credentials" \(spec\.[^)]+\), and its value reaches the pod: rule 1 \(deny resources \[secrets\]\)/);
      expect(await exists('pod', name, 'prod')).toBe(false);
    });

    it('a Deployment whose template reads a Secret is refused (YAML through kubectl create)', async () => {
      const name = `fx-deploy-${suffix}`;
      const deployment = {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name, namespace: 'prod' },
        spec: {
          selector: { matchLabels: { app: name } },
          template: { metadata: { labels: { app: name } }, spec: pod(name, { volumes: [{ name: 'v', secret: { secretName: 'db-credentials' } }] }).spec },
        },
      };
      const result = await kubectl(['create', '-f', '-'], { kubeconfig: kubeconfigs.readme, input: stringify(deployment) });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('reads Secret "db-credentials"');
      expect(await exists('deployment', name, 'prod')).toBe(false);
    });

    it('kubectl run (a pod that mounts its service account token) is refused with the fix in the message', async () => {
      const name = `fx-run-${suffix}`;
      const result = await kubectl(['run', name, '--image=busybox', '-n', 'prod', '--restart=Never'], { kubeconfig: kubeconfigs.readme });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('the pod would mount a token of service account "default"');
      expect(result.stderr).toContain('automountServiceAccountToken: false');
      expect(await exists('pod', name, 'prod')).toBe(false);
      // The same pod without the token is allowed and created.
      const clean = await kubectl(['apply', '-f', '-'], { kubeconfig: kubeconfigs.readme, input: stringify(pod(name)) });
      expect(clean.code, clean.stderr).toBe(0);
      expect(await exists('pod', name, 'prod')).toBe(true);
      await kubectl(['delete', 'pod', name, '-n', 'prod', '--wait=false', '--grace-period=0'], admin());
    });
  });

  describe('deleting a namespace deletes what is in it', () => {
    it('kubectl delete namespace is refused when the namespace holds what a deny covers; the namespace and its Secret remain', async () => {
      const namespace = `fx-ns-${suffix}`;
      expect((await kubectl(['create', 'namespace', namespace], admin())).code).toBe(0);
      expect((await kubectl(['create', 'secret', 'generic', 'keep', '-n', namespace, '--from-literal=k=v'], admin())).code).toBe(0);
      const result = await kubectl(['delete', 'namespace', namespace, '--wait=false'], { kubeconfig: kubeconfigs.deleter });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`deleting namespace ${namespace} deletes every object in it: rule 1 (deny resources [secrets])`);
      const phase = await kubectl(['get', 'namespace', namespace, '-o', 'jsonpath={.status.phase}'], admin());
      expect(phase.stdout).toBe('Active');
      expect(await exists('secret', 'keep', namespace)).toBe(true);
    });
  });
});
