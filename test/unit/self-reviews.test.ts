// can-i and whoami through Airlock answer for the agent: the policy intersected with the cluster.
import { describe, expect, it } from 'vitest';
import { parseKubeRequest } from '../../lambdas/core/kube-request.ts';
import type { PolicyRule } from '../../lambdas/core/policy.ts';
import { answerAccessReview, filterRulesReview, selfReviewOf, subjectReview } from '../../lambdas/core/self-reviews.ts';
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
    expect(() => answerAccessReview(policy, Buffer.from('not json'))).toThrow(/must be JSON/);
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
    const answer = filterRulesReview(policyOf(EXAMPLE), cluster) as {
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
