// can-i and whoami through Airlock answer for the agent: the policy intersected with the cluster.
import { describe, expect, it } from 'vitest';
import { parseKubeRequest } from '../../lambdas/core/kube-request.ts';
import type { PolicyRule } from '../../lambdas/core/policy.ts';
import { answerAccessReview, filterRulesReview, rulesReviewNamespace, selfReviewOf, subjectReview } from '../../lambdas/core/self-reviews.ts';
import { policyOf } from '../support/policies.ts';

const EXAMPLE: PolicyRule[] = [
  { effect: 'deny', resources: ['secrets'] },
  { effect: 'allow', verbs: ['get', 'list', 'watch'], namespaces: ['prod'] },
  { effect: 'approve', verbs: ['delete', 'deletecollection', 'patch', 'update', 'create'], namespaces: ['prod'] },
];
const access = (attributes: Record<string, string>) =>
  Buffer.from(JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: attributes } }));

describe('self reviews', () => {
  it('knows the three review kinds by what they are, and nothing else', () => {
    expect(selfReviewOf(parseKubeRequest('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {}))).toBe('access');
    expect(selfReviewOf(parseKubeRequest('POST', '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', {}))).toBe('rules');
    expect(selfReviewOf(parseKubeRequest('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {}))).toBe('subject');
    expect(selfReviewOf(parseKubeRequest('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {}))).toBeUndefined();
    expect(selfReviewOf(parseKubeRequest('GET', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {}))).toBeUndefined();
  });

  it('can-i: an allowed request goes to the cluster; a held one is "no" saying it needs approval; a denied one says why', () => {
    const policy = policyOf(EXAMPLE);
    expect(answerAccessReview(policy, access({ verb: 'get', resource: 'pods', namespace: 'prod' }))).toMatchObject({ forward: true });
    const held = answerAccessReview(policy, access({ verb: 'delete', resource: 'pods', namespace: 'prod' }));
    expect(held).toMatchObject({ forward: false, review: { status: { allowed: false, denied: false } } });
    expect(JSON.stringify(held)).toContain('airlock: needs a one-time human approval of each such request (rule 3');
    const denied = answerAccessReview(policy, access({ verb: 'get', resource: 'secrets', namespace: 'prod' }));
    expect(denied).toMatchObject({ forward: false, review: { status: { allowed: false, denied: true, reason: 'airlock: refused by policy: rule 1 (deny resources [secrets])' } } });
    expect(answerAccessReview(policy, access({ verb: 'impersonate', resource: 'users' }))).toMatchObject({ forward: false });
    expect(() => answerAccessReview(policy, Buffer.from('not json'))).toThrow(/could not be read as JSON/);
  });

  it('whoami is the agent, its window and connection', () => {
    const review = subjectReview({ agentName: 'claude', agentId: 'agt_1', connection: 'prod', grantId: 'grt_1', windowExpiresAt: Date.UTC(2026, 11, 2, 3) }, 'v1');
    expect(review).toMatchObject({
      kind: 'SelfSubjectReview',
      apiVersion: 'authentication.k8s.io/v1',
      status: { userInfo: { username: 'airlock:agent:claude', uid: 'agt_1', extra: { 'airlock.dev/window-expires': ['2026-12-02T03:00:00.000Z'] } } },
    });
  });

  it('can-i --list keeps only what the policy allows without approval, and says when a wildcard is narrowed', () => {
    const cluster = {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectRulesReview',
      spec: { namespace: 'prod' },
      status: {
        resourceRules: [
          { verbs: ['get', 'list', 'delete'], apiGroups: [''], resources: ['pods', 'secrets'] },
          { verbs: ['*'], apiGroups: ['*'], resources: ['*'] },
        ],
        nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*', '/api', '/healthz'] }],
        incomplete: false,
      },
    };
    const answer = filterRulesReview(policyOf(EXAMPLE), 'prod', cluster) as {
      status: { resourceRules: { verbs: string[]; resources: string[] }[]; nonResourceRules: unknown[]; incomplete: boolean; evaluationError: string };
    };
    const concrete = answer.status.resourceRules.filter((rule) => !rule.resources.includes('*'));
    expect(concrete).toEqual([
      { verbs: ['get'], apiGroups: [''], resources: ['pods'] },
      { verbs: ['list'], apiGroups: [''], resources: ['pods'] },
    ]);
    expect(answer.status.resourceRules.some((rule) => rule.verbs.includes('delete'))).toBe(false);
    expect(answer.status.nonResourceRules).toEqual([{ verbs: ['get'], nonResourceURLs: ['/api'] }]);
    expect(answer.status.incomplete).toBe(true);
    expect(answer.status.evaluationError).toContain('kubectl auth can-i VERB RESOURCE');
  });
});

describe('self reviews sent as protobuf (as kubectl sends them)', () => {
  it('reads the attributes of a SelfSubjectAccessReview and the namespace of a rules review from the protobuf envelope', async () => {
    const { BinaryWriter } = await import('@bufbuild/protobuf/wire');
    const message = (build: (writer: InstanceType<typeof BinaryWriter>) => void) => {
      const writer = new BinaryWriter();
      build(writer);
      return writer.finish();
    };
    const attributes = message((w) => w.tag(1, 2).string('prod').tag(2, 2).string('delete').tag(5, 2).string('pods'));
    const spec = message((w) => w.tag(1, 2).bytes(attributes));
    const review = message((w) => w.tag(2, 2).bytes(spec));
    const unknown = message((w) => w.tag(2, 2).bytes(review).tag(4, 2).string('application/vnd.kubernetes.protobuf'));
    const body = Buffer.concat([Buffer.from([0x6b, 0x38, 0x73, 0x00]), unknown]);
    const held = answerAccessReview(policyOf(EXAMPLE), body, 'application/vnd.kubernetes.protobuf');
    expect(held).toMatchObject({ forward: false, review: { spec: { resourceAttributes: { verb: 'delete', resource: 'pods', namespace: 'prod' } }, status: { allowed: false } } });
    const rulesSpec = message((w) => w.tag(1, 2).string('prod'));
    const rules = Buffer.concat([Buffer.from([0x6b, 0x38, 0x73, 0x00]), message((w) => w.tag(2, 2).bytes(message((inner) => inner.tag(2, 2).bytes(rulesSpec))))]);
    expect(rulesReviewNamespace(rules, 'application/vnd.kubernetes.protobuf')).toBe('prod');
    expect(() => answerAccessReview(policyOf(EXAMPLE), Buffer.from('nope'), 'application/vnd.kubernetes.protobuf')).toThrow(/could not be read/);
  });
});
