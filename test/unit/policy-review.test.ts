// `airlock policy review` (core/policy-review.ts): rule use from the records,
// unused rules, what was refused most, approvals, escalation flags, and the
// narrower policy the engine checks (every allowed request still allowed,
// every refused one still refused; deny and approve rules kept).
import { describe, expect, it } from 'vitest';
import { policyFromJSON, parsePolicy } from '../../lambdas/core/policy-file.ts';
import { kubeRequestOf, reviewPolicy } from '../../lambdas/core/policy-review.ts';
import { evaluatePolicy } from '../../lambdas/core/policy.ts';
import type { Approval, RequestRecord } from '../../lambdas/core/model.ts';
import { REVIEW_POLICY } from '../support/policies.ts';

const POLICY = parsePolicy(REVIEW_POLICY);

const T0 = Date.UTC(2026, 10, 20, 9);
let next = 0;

/** A record as the gateway writes it: the decision and the engine's own reason. */
function recorded(verb: string, resource: string, namespace: string, options: { apiGroup?: string; name?: string; subresource?: string; at?: number } = {}): RequestRecord {
  const base = { verb, apiGroup: options.apiGroup ?? '', resource, subresource: options.subresource ?? '', namespace, name: options.name ?? '' };
  const request = kubeRequestOf({ ...base, path: '/api/v1/x', query: '' } as RequestRecord);
  const decision = evaluatePolicy(POLICY.policy, request);
  const id = `req_${++next}`;
  return {
    id,
    time: options.at ?? T0 + next * 60_000,
    agentId: 'agt_1',
    agent: 'deployer',
    connection: 'prod',
    method: 'GET',
    path: '/api/v1/x',
    query: '',
    ...base,
    decision: decision.effect === 'allow' ? 'allowed' : decision.effect === 'approve' ? 'held' : 'denied',
    reason: decision.reason,
    policyVersion: POLICY.version,
    phase: 'complete',
  };
}

function approval(status: Approval['status']): Approval {
  return {
    id: `apr_${status}`,
    kind: 'request',
    status,
    agentId: 'agt_1',
    agentName: 'deployer',
    connection: 'prod',
    summary: 'delete pods',
    rule: 'rule 2',
    approvers: [],
    minApprovals: 1,
    decisions: [],
    notified: [],
    createdAt: T0 + 1000,
    expiresAt: T0 + 2000,
    timeoutSeconds: 900,
    policyVersion: POLICY.version,
  };
}

const WEEK = [
  ...Array.from({ length: 5 }, (_, day) => recorded('list', 'pods', 'prod', { at: T0 + day * 86_400_000 })),
  recorded('get', 'pods', 'prod', { name: 'web-1' }),
  recorded('list', 'deployments', 'prod', { apiGroup: 'apps' }),
  recorded('patch', 'deployments', 'prod', { apiGroup: 'apps', name: 'web' }),
  recorded('create', 'configmaps', 'prod'),
  ...Array.from({ length: 3 }, () => recorded('get', 'secrets', 'prod', { name: 'db' })),
  recorded('delete', 'pods', 'prod', { name: 'web-1' }),
  recorded('delete', 'nodes', '', { name: 'n1' }),
];

describe('policy review', () => {
  const review = reviewPolicy({
    connection: 'prod',
    policy: POLICY.policy,
    policyVersion: POLICY.version,
    since: T0 - 1,
    until: T0 + 8 * 86_400_000,
    records: WEEK,
    approvals: [approval('consumed'), approval('denied'), approval('expired')],
  });

  it('counts what each rule decided and when it last matched, and names the unused ones', () => {
    expect(review.rules.map((rule) => [rule.rule, rule.allowed, rule.held, rule.denied])).toEqual([
      [1, 0, 0, 3],
      [2, 0, 1, 0],
      [3, 7, 0, 0],
      [4, 1, 0, 0],
      [5, 1, 0, 0],
      [6, 0, 0, 0],
    ]);
    expect(review.rules[2]!.lastMatched).toBe(Math.max(...WEEK.filter((record) => record.reason.startsWith('rule 3')).map((record) => record.time)));
    expect(review.unusedRules).toEqual([6]);
    expect(review.requests).toBe(WEEK.length);
  });

  it('lists what was refused most, and the approvals', () => {
    expect(review.refused[0]).toMatchObject({ request: 'get secrets db in prod', decision: 'denied', count: 3 });
    expect(review.refused.map((refused) => refused.request)).toEqual(['get secrets db in prod', 'delete nodes n1', 'delete pods web-1 in prod']);
    expect(review.approvals).toEqual({ asked: 3, granted: 1, denied: 1, expired: 1, cancelled: 0, pending: 0 });
  });

  it('flags the rules that reach escalation and credential-minting requests', () => {
    expect(review.rules[5]!.reachesEscalation).toEqual(['create serviceaccounts/token']);
    expect(review.rules[2]!.reachesEscalation).toEqual([]);
    expect(review.escalations).toEqual([{ request: 'get secrets', why: 'reads Secrets, which hold credentials', allowed: 0, held: 0, denied: 3 }]);
  });

  it('suggests the least policy that still allows what was allowed, keeping deny and approve rules, checked by the engine', () => {
    const { suggested } = review;
    expect(suggested.policy.rules).toEqual([
      POLICY.policy.rules[0],
      POLICY.policy.rules[1],
      { effect: 'allow', verbs: ['get', 'list'], apiGroups: ['', 'apps'], resources: ['deployments', 'pods'], namespaces: ['prod'] },
      { effect: 'allow', verbs: ['create'], apiGroups: [''], resources: ['configmaps'], namespaces: ['prod'] },
      { effect: 'allow', verbs: ['patch'], apiGroups: ['apps'], resources: ['deployments'], namespaces: ['prod'] },
    ]);
    expect(suggested.version).toBe(policyFromJSON(suggested.policy).version);
    expect(suggested.check).toEqual({ allowedStillAllowed: 9, allowedNowRefused: [], refusedStillRefused: 5, refusedNowAllowed: [] });
    expect(suggested.changes).toContain('remove rule 6 (allow verbs [create] resources [serviceaccounts/token]): it allowed nothing in the period');
    expect(suggested.diff).toContain('--- current');
    expect(suggested.diff).toMatch(/^-\s+- statefulsets$/m);
  });

  it('re-checks records made under an older policy version against the current one', () => {
    const old = { ...recorded('list', 'pods', 'prod'), policyVersion: 'sha256:old', reason: 'rule 9 (allow everything)' };
    const again = reviewPolicy({ connection: 'prod', policy: POLICY.policy, policyVersion: POLICY.version, since: 0, until: Number.MAX_SAFE_INTEGER, records: [old], approvals: [] });
    expect(again.reevaluated).toBe(1);
    expect(again.rules[2]!.allowed).toBe(1);
  });

  it('suggests nothing when the policy is already the least', () => {
    const least = policyFromJSON(review.suggested.policy);
    const again = reviewPolicy({
      connection: 'prod',
      policy: least.policy,
      policyVersion: least.version,
      since: 0,
      until: Number.MAX_SAFE_INTEGER,
      records: WEEK.map((record) => ({ ...record, policyVersion: 'sha256:older' })),
      approvals: [],
    });
    expect(again.suggested.diff).toBe('');
  });
});
