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
