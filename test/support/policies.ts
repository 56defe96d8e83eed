// A stored-form policy around the given rules, for tests of the policy engine.
import type { Policy, PolicyRule } from '../../lambdas/core/policy.ts';

export function policyOf(rules: PolicyRule[]): Policy {
  return {
    maxWindowSeconds: 3600,
    windowApproval: 'none',
    rules,
    approvers: ['oncall@example.com'],
    minApprovals: 1,
    approvalTimeoutSeconds: 900,
  };
}

/** The policy `airlock policy review` is tested on: a deny, an approve, broad allows, and one allow (rule 6) no traffic uses. */
export const REVIEW_POLICY = `
maxWindow: 1h
windowApproval: none
approvers: [oncall@example.com]
rules:
  - effect: deny
    resources: [secrets]
  - effect: approve
    verbs: [delete]
    namespaces: [prod]
  - effect: allow
    verbs: [get, list, watch]
  - effect: allow
    verbs: [create, update, patch, delete]
    resources: [configmaps]
    namespaces: [prod, staging]
  - effect: allow
    verbs: ['*']
    apiGroups: [apps]
    resources: [deployments, statefulsets]
  - effect: allow
    verbs: [create]
    resources: [serviceaccounts/token]
`;
