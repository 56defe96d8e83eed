// Scope by what a request does (issue 9 §1): every verb the API server authorizes a
// request as, and every effect its verb does not say, against the policy.
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { checksOf, escalationOf, escalationSamples } from '../../lambdas/core/effects.ts';
import { parseKubeRequest } from '../../lambdas/core/kube-request.ts';
import { escalationWarnings, evaluateRequest, type PolicyRule } from '../../lambdas/core/policy.ts';
import { parsePolicy } from '../../lambdas/core/policy-file.ts';
import { AirlockError } from '../../lambdas/core/status.ts';
import { policyOf } from '../support/policies.ts';

const JSON_TYPE = 'application/json';

function decide(rules: PolicyRule[], method: string, path: string, body: unknown = undefined, contentType = JSON_TYPE) {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const request = parseKubeRequest(method, path, {});
  return evaluateRequest(policyOf(rules), checksOf(request, { contentType, body: Buffer.from(text), parseYaml: parse }));
}

const README_SHAPE: PolicyRule[] = [
  { effect: 'deny', resources: ['secrets'] },
  { effect: 'allow', verbs: ['get', 'list', 'watch', 'create'], namespaces: ['prod'] },
];
const CM = '/api/v1/namespaces/prod/configmaps';
const POD = (name = 'web') => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name },
  spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image: 'busybox' }] as Record<string, unknown>[] },
});

describe('server-side apply and create-on-update are checked as create too', () => {
  const apply = 'application/apply-patch+yaml';
  it('deny create configmaps refuses an apply, which may create', () => {
    const rules: PolicyRule[] = [
      { effect: 'deny', verbs: ['create'], resources: ['configmaps'] },
      { effect: 'allow', namespaces: ['prod'] },
    ];
    const decision = decide(rules, 'PATCH', `${CM}/new`, { apiVersion: 'v1', kind: 'ConfigMap' }, apply);
    expect(decision.effect).toBe('deny');
    expect(decision.reason).toMatch(/^server-side apply creates the object when it does not exist: rule 1/);
    // A merge patch cannot create: only patch is checked.
    expect(decide(rules, 'PATCH', `${CM}/new`, { data: {} }, 'application/merge-patch+json').effect).toBe('allow');
  });
  it('approve create pods holds an apply of a pod', () => {
    const rules: PolicyRule[] = [
      { effect: 'approve', verbs: ['create'], resources: ['pods'] },
      { effect: 'allow', namespaces: ['prod'] },
    ];
    expect(decide(rules, 'PATCH', '/api/v1/namespaces/prod/pods/web', POD(), apply).effect).toBe('approve');
  });
  it('an apply needs both patch and create allowed', () => {
    const rules: PolicyRule[] = [{ effect: 'allow', verbs: ['patch'], resources: ['configmaps'] }];
    const decision = decide(rules, 'PATCH', `${CM}/x`, { kind: 'ConfigMap' }, apply);
    expect(decision).toMatchObject({ effect: 'deny', ruleIndex: -1 });
    expect(decision.reason).toContain('server-side apply creates');
  });
  it('a PUT to a resource the API server creates on update is checked as create; others are not', () => {
    const rules: PolicyRule[] = [
      { effect: 'deny', verbs: ['create'] },
      { effect: 'allow', namespaces: ['prod'] },
    ];
    expect(decide(rules, 'PUT', '/api/v1/namespaces/prod/services/web', { kind: 'Service' }).effect).toBe('deny');
    expect(decide(rules, 'PUT', '/apis/coordination.k8s.io/v1/namespaces/prod/leases/l', {}).effect).toBe('deny');
    expect(decide(rules, 'PUT', `${CM}/web`, { kind: 'ConfigMap' }).effect).toBe('allow');
  });
});

describe('effects: eviction, scale, deletecollection, namespace deletion, binding', () => {
  const eviction = '/api/v1/namespaces/prod/pods/web/eviction';
  it('approve delete holds an eviction; deny delete refuses it', () => {
    const approve: PolicyRule[] = [
      { effect: 'approve', verbs: ['delete'], namespaces: ['prod'] },
      { effect: 'allow', namespaces: ['prod'] },
    ];
    const held = decide(approve, 'POST', eviction, { kind: 'Eviction' });
    expect(held.effect).toBe('approve');
    expect(held.reason).toMatch(/^an eviction deletes the pod: rule 1/);
    const deny: PolicyRule[] = [{ effect: 'deny', verbs: ['delete'] }, { effect: 'allow' }];
    expect(decide(deny, 'POST', eviction, {}).effect).toBe('deny');
  });
  it('a broad create does not allow an eviction; a rule naming pods/eviction does', () => {
    expect(decide(README_SHAPE, 'POST', eviction, {}).effect).toBe('deny');
    expect(decide([{ effect: 'allow', verbs: ['create'], resources: ['pods/eviction'] }], 'POST', eviction, {}).effect).toBe('allow');
  });
  it('scale changes the workload: approve update deployments holds it; a rule naming deployments/scale allows it', () => {
    const scale = '/apis/apps/v1/namespaces/prod/deployments/web/scale';
    expect(decide([{ effect: 'approve', verbs: ['patch'], resources: ['deployments'] }, { effect: 'allow' }], 'PATCH', scale, { spec: { replicas: 3 } }, 'application/merge-patch+json').effect).toBe(
      'approve',
    );
    expect(decide([{ effect: 'allow', verbs: ['patch'], resources: ['deployments/scale'] }], 'PATCH', scale, { spec: { replicas: 3 } }, 'application/merge-patch+json').effect).toBe('allow');
    // A broad verb allow does not cover writing the parent by a subresource it did not name.
    expect(
      decide(
        [
          { effect: 'allow', verbs: ['update'], resources: ['*/scale'] },
          { effect: 'deny', verbs: ['update'], resources: ['deployments'] },
        ],
        'PUT',
        scale,
        {},
      ).effect,
    ).toBe('deny');
  });
  it('deletecollection is a delete of everything it matches', () => {
    const rules: PolicyRule[] = [
      { effect: 'approve', verbs: ['delete'], namespaces: ['prod'] },
      { effect: 'allow', namespaces: ['prod'] },
    ];
    expect(decide(rules, 'DELETE', CM).effect).toBe('approve');
    expect(decide([{ effect: 'deny', verbs: ['delete'] }, { effect: 'allow' }], 'DELETE', CM).effect).toBe('deny');
  });
  it('deleting a namespace deletes every object in it: deny secrets refuses it, approve delete holds it', () => {
    const deny: PolicyRule[] = [{ effect: 'deny', resources: ['secrets'] }, { effect: 'allow' }];
    const refused = decide(deny, 'DELETE', '/api/v1/namespaces/prod');
    expect(refused.effect).toBe('deny');
    expect(refused.reason).toMatch(/^deleting namespace prod deletes every object in it: rule 1/);
    const approve: PolicyRule[] = [{ effect: 'approve', verbs: ['delete'], namespaces: ['prod'] }, { effect: 'allow' }];
    expect(decide(approve, 'DELETE', '/api/v1/namespaces/prod').effect).toBe('approve');
    // Allowed only by a rule for every resource, or one that names namespaces.
    expect(decide([{ effect: 'allow', verbs: ['delete'], resources: ['namespaces'] }], 'DELETE', '/api/v1/namespaces/prod').effect).toBe('allow');
    expect(decide([{ effect: 'allow', verbs: ['delete'], resources: ['configmaps', 'namespaces/*'] }], 'DELETE', '/api/v1/namespaces/prod').effect).toBe('deny');
  });
  it('a binding changes the pod', () => {
    const rules: PolicyRule[] = [
      { effect: 'approve', verbs: ['update'], resources: ['pods'] },
      { effect: 'allow', namespaces: ['prod'] },
    ];
    expect(decide(rules, 'POST', '/api/v1/namespaces/prod/pods/web/binding', { target: { name: 'node-1' } }).effect).toBe('approve');
  });
});

describe('credentials and wider rights need a rule that names them', () => {
  it('the README shape (allow create, no resources) does not mint a ServiceAccount token', () => {
    const decision = decide(README_SHAPE, 'POST', '/api/v1/namespaces/prod/serviceaccounts/default/token', {});
    expect(decision).toMatchObject({ effect: 'deny', ruleIndex: -1 });
    expect(decision.reason).toBe(
      'this mints a ServiceAccount token the cluster accepts, so only a rule that names serviceaccounts/token in resources can allow it (rule 2 (allow verbs [get, list, watch, create] namespaces [prod]) is broad)',
    );
    expect(decide([{ effect: 'allow', verbs: ['create'], resources: ['serviceaccounts/token'] }], 'POST', '/api/v1/namespaces/prod/serviceaccounts/default/token', {}).effect).toBe('allow');
  });
  it.each([
    ['POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/prod/rolebindings'],
    ['POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/prod/roles'],
    ['PUT', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/x'],
    ['POST', '/apis/certificates.k8s.io/v1/certificatesigningrequests'],
    ['PUT', '/apis/certificates.k8s.io/v1/certificatesigningrequests/x/approval'],
    ['POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations'],
    ['POST', '/apis/apiregistration.k8s.io/v1/apiservices'],
    ['GET', '/api/v1/namespaces/prod/secrets/db'],
    ['GET', '/api/v1/nodes/n1/proxy/configz'],
  ])('%s %s is refused under allow everything', (method, path) => {
    const decision = decide([{ effect: 'allow' }], method, path, method === 'GET' ? undefined : {});
    expect(decision.effect).toBe('deny');
    expect(decision.reason).toMatch(/only a rule that names .+ in resources can allow it/);
  });
  it('a broad approve does not hold an escalation either; an explicit allow under a broad approve is held', () => {
    const path = '/apis/rbac.authorization.k8s.io/v1/namespaces/prod/rolebindings';
    expect(decide([{ effect: 'approve', verbs: ['create'] }], 'POST', path, {}).effect).toBe('deny');
    expect(
      decide(
        [
          { effect: 'approve', verbs: ['create'] },
          { effect: 'allow', resources: ['rolebindings'] },
        ],
        'POST',
        path,
        {},
      ).effect,
    ).toBe('approve');
  });
  it('every sample is an escalation, and policy warnings name the broad rule that would reach it', () => {
    for (const request of escalationSamples('prod')) expect(escalationOf(request), JSON.stringify(request)).toBeDefined();
    const warnings = escalationWarnings(policyOf(README_SHAPE));
    expect(warnings).toContain(
      'rule 2 (allow verbs [get, list, watch, create] namespaces [prod]) would reach create serviceaccounts/token (it mints a ServiceAccount token the cluster accepts); Airlock refuses it unless a rule names serviceaccounts/token in resources',
    );
    expect(warnings.some((warning) => warning.includes('rolebindings'))).toBe(true);
    expect(escalationWarnings(policyOf([{ effect: 'allow', verbs: ['get'], resources: ['pods'] }]))).toEqual([]);
  });
  it('the example policies are safe: no escalation is allowed or held', async () => {
    const { readFileSync } = await import('node:fs');
    for (const file of ['examples/policy.yaml', 'examples/policy-approval.yaml', 'examples/policy-kubectl.yaml', 'examples/policy-helm.yaml']) {
      const { policy } = parsePolicy(readFileSync(file, 'utf8'));
      for (const request of [...escalationSamples('prod'), ...escalationSamples('default')]) {
        expect(evaluateRequest(policy, [{ request, why: '' }]).effect, `${file}: ${request.verb} ${request.resource}/${request.subresource}`).toBe('deny');
      }
    }
  });
});

describe('a workload that reads a Secret is checked as reading it', () => {
  const pods = '/api/v1/namespaces/prod/pods';
  const rules: PolicyRule[] = [
    { effect: 'deny', resources: ['secrets'] },
    { effect: 'allow', verbs: ['create', 'patch', 'update'], namespaces: ['prod'] },
  ];
  const withSpec = (change: (spec: Record<string, unknown>) => void) => {
    const pod = POD();
    change(pod.spec);
    return pod;
  };
  it.each([
    ['env.valueFrom.secretKeyRef', withSpec((spec) => ((spec.containers as Record<string, unknown>[])[0]!.env = [{ name: 'P', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }]))],
    ['envFrom.secretRef', withSpec((spec) => ((spec.containers as Record<string, unknown>[])[0]!.envFrom = [{ secretRef: { name: 'db' } }]))],
    ['a secret volume', withSpec((spec) => (spec.volumes = [{ name: 'v', secret: { secretName: 'db' } }]))],
    ['a projected volume', withSpec((spec) => (spec.volumes = [{ name: 'v', projected: { sources: [{ secret: { name: 'db' } }] } }]))],
    ['imagePullSecrets', withSpec((spec) => (spec.imagePullSecrets = [{ name: 'db' }]))],
  ])('%s is denied as get secrets, naming the reference', (_, pod) => {
    const decision = decide(rules, 'POST', pods, pod);
    expect(decision.effect).toBe('deny');
    expect(decision.reason).toMatch(/^the pods body reads Secret "db" \(spec\..+\), and its value reaches the pod: rule 1 \(deny resources \[secrets\]\)$/);
    // The same pod in YAML.
    expect(decide(rules, 'POST', pods, stringify(pod), 'application/yaml').effect).toBe('deny');
    // Without the reference it is allowed.
    expect(decide(rules, 'POST', pods, POD()).effect).toBe('allow');
  });
  it('deployments, jobs, cronjobs and their patches and applies are read too', () => {
    const template = { template: { spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image: 'x', envFrom: [{ secretRef: { name: 'db' } }] }] } } };
    expect(decide(rules, 'POST', '/apis/apps/v1/namespaces/prod/deployments', { kind: 'Deployment', spec: template }).effect).toBe('deny');
    expect(decide(rules, 'POST', '/apis/batch/v1/namespaces/prod/cronjobs', { kind: 'CronJob', spec: { jobTemplate: { spec: template } } }).effect).toBe('deny');
    expect(decide(rules, 'PATCH', '/apis/apps/v1/namespaces/prod/deployments/web', { spec: template }, 'application/strategic-merge-patch+json').effect).toBe('deny');
    const jsonPatch = [{ op: 'add', path: '/spec/template/spec/containers/0/envFrom/-', value: { secretRef: { name: 'db' } } }];
    expect(decide(rules, 'PATCH', '/apis/apps/v1/namespaces/prod/deployments/web', jsonPatch, 'application/json-patch+json').effect).toBe('deny');
    const byPath = [{ op: 'replace', path: '/spec/template/spec/volumes/0/secret/secretName', value: 'db' }];
    expect(decide(rules, 'PATCH', '/apis/apps/v1/namespaces/prod/deployments/web', byPath, 'application/json-patch+json').effect).toBe('deny');
  });
  it('a hold on Secrets holds the workload', () => {
    const held: PolicyRule[] = [
      { effect: 'approve', resources: ['secrets'], namespaces: ['prod'] },
      { effect: 'allow', verbs: ['create'], namespaces: ['prod'] },
    ];
    const pod = withSpec((spec) => (spec.imagePullSecrets = [{ name: 'registry' }]));
    expect(decide(held, 'POST', pods, pod).effect).toBe('approve');
  });
  it('a patch that does not touch a reference is not affected', () => {
    expect(decide(rules, 'PATCH', '/apis/apps/v1/namespaces/prod/deployments/web', { spec: { replicas: 2 } }, 'application/merge-patch+json').effect).toBe('allow');
  });
  it('a workload body Airlock cannot read is refused (415), not waved through', () => {
    const request = parseKubeRequest('POST', pods, {});
    expect(() => checksOf(request, { contentType: 'application/vnd.kubernetes.protobuf', body: Buffer.from([0x6b, 0x38, 0x73, 0]) })).toThrow(AirlockError);
    expect(() => checksOf(request, { contentType: JSON_TYPE, body: Buffer.from('{"spec": ') })).toThrow(/could not be read/);
  });
});

describe('a pod that would hold a service account token mints a credential', () => {
  const pods = '/api/v1/namespaces/prod/pods';
  const rules: PolicyRule[] = [{ effect: 'allow', verbs: ['create'], namespaces: ['prod'] }];
  it('automountServiceAccountToken not false is refused, with the fix in the message', () => {
    const pod = POD();
    delete (pod.spec as { automountServiceAccountToken?: boolean }).automountServiceAccountToken;
    const decision = decide(rules, 'POST', pods, pod);
    expect(decision.effect).toBe('deny');
    expect(decision.reason).toContain('the pod would mount a token of service account "default"');
    expect(decision.reason).toContain('set automountServiceAccountToken: false');
    expect(decide(rules, 'POST', pods, POD()).effect).toBe('allow');
  });
  it('a patch that removes automountServiceAccountToken: false (null) mounts the token again, and is refused', () => {
    for (const spec of [{ automountServiceAccountToken: null }, { automountServiceAccountToken: null, containers: [{ name: 'c', image: 'x' }] }, { serviceAccountName: 'builder' }]) {
      const patch = { spec: { template: { spec } } };
      const patching: PolicyRule[] = [{ effect: 'allow', verbs: ['patch'], namespaces: ['prod'] }];
      const decision = decide(patching, 'PATCH', '/apis/apps/v1/namespaces/prod/deployments/web', patch, 'application/merge-patch+json');
      expect(decision.effect, JSON.stringify(spec)).toBe('deny');
      expect(decision.reason).toContain('would mount a token of service account');
    }
    const image = { spec: { template: { spec: { containers: [{ name: 'c', image: 'y' }] } } } };
    expect(
      decide([{ effect: 'allow', verbs: ['patch'], namespaces: ['prod'] }], 'PATCH', '/apis/apps/v1/namespaces/prod/deployments/web', image, 'application/strategic-merge-patch+json').effect,
    ).toBe('allow');
  });

  it('a projected serviceAccountToken volume is refused', () => {
    const pod = POD();
    (pod.spec as Record<string, unknown>).volumes = [{ name: 't', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }];
    expect(decide(rules, 'POST', pods, pod).effect).toBe('deny');
  });
  it('a Secret of type service-account-token is refused even where Secrets may be written', () => {
    const secret = { kind: 'Secret', type: 'kubernetes.io/service-account-token', metadata: { name: 't', annotations: { 'kubernetes.io/service-account.name': 'default' } } };
    const writeSecrets: PolicyRule[] = [{ effect: 'allow', verbs: ['create'], resources: ['secrets'] }];
    expect(decide(writeSecrets, 'POST', '/api/v1/namespaces/prod/secrets', secret).effect).toBe('deny');
    expect(decide(writeSecrets, 'POST', '/api/v1/namespaces/prod/secrets', { ...secret, type: 'Opaque' }).effect).toBe('allow');
  });
  it('an explicit rule for serviceaccounts/token lets such pods run', () => {
    const pod = POD();
    delete (pod.spec as { automountServiceAccountToken?: boolean }).automountServiceAccountToken;
    expect(decide([...rules, { effect: 'allow', verbs: ['create'], resources: ['serviceaccounts/token'] }], 'POST', pods, pod).effect).toBe('allow');
  });
});
