// `airlock policy review`: the policy held against what the records say it did
// in a period — per rule, what it decided and when it last matched; rules never
// used; what was refused most; approvals; and the least policy that would have
// allowed what was allowed (deny and approve rules kept), checked by the policy
// engine and shown as a diff. Never applied: a person decides.
import { createTwoFilesPatch } from 'diff';
import { stringify as stringifyYaml } from 'yaml';
import { escalationOf, escalationSamples } from './effects.ts';
import { describeRequest, type KubeRequest, type KubeVerb } from './kube-request.ts';
import type { Approval, RequestRecord } from './model.ts';
import { describeRule, escalationWarnings, evaluatePolicy, type Policy, type PolicyRule, type RuleEffect } from './policy.ts';
import { policyFromJSON, policySource } from './policy-file.ts';

export interface RuleUse {
  /** 1-based, as rules are named in reasons ("rule 2 (...)"). */
  rule: number;
  effect: RuleEffect;
  text: string;
  allowed: number;
  held: number;
  denied: number;
  lastMatched?: number;
  /** Escalation and credential-minting requests this rule decides (allows, holds) — e.g. "create serviceaccounts/token". */
  reachesEscalation: string[];
}

export interface RefusedRequest {
  request: string;
  decision: 'denied' | 'held';
  count: number;
  last: number;
  reason: string;
}

export interface EscalationSeen {
  request: string;
  why: string;
  allowed: number;
  held: number;
  denied: number;
}

export interface PolicyReview {
  connection: string;
  agent?: string;
  since: number;
  until: number;
  policyVersion: string;
  /** Requests of the period decided by a rule, or refused by default. */
  requests: number;
  /** How many were decided under an older policy version and so re-checked against the current one. */
  reevaluated: number;
  rules: RuleUse[];
  unusedRules: number[];
  refused: RefusedRequest[];
  escalations: EscalationSeen[];
  warnings: string[];
  approvals: { asked: number; granted: number; denied: number; expired: number; cancelled: number; pending: number };
  suggested: {
    policy: Policy;
    version: string;
    /** Unified diff of the current policy file against the suggested one; '' when nothing would change. */
    diff: string;
    changes: string[];
    /** The engine's check of the suggestion against the period's requests. */
    check: { allowedStillAllowed: number; allowedNowRefused: string[]; refusedStillRefused: number; refusedNowAllowed: string[] };
  };
}

const RULE_IN_REASON = /\brule (\d+) \(/;
const MOST_REFUSED = 10;

/** The request a record describes, as the policy engine reads it (the request line; body-derived effects are not kept in records). */
export function kubeRequestOf(record: RequestRecord): KubeRequest {
  const kind = record.resource ? 'resource' : /^\/(api|apis)(\/|$)/.test(record.path) ? 'discovery' : 'nonresource';
  return {
    kind,
    verb: record.verb as KubeVerb,
    apiGroup: record.apiGroup,
    apiVersion: '',
    resource: record.resource,
    subresource: record.subresource,
    namespace: record.namespace,
    name: record.name,
    path: record.path,
    query: record.query,
  };
}

/** The rule (0-based) that decided a record: named in its reason under the current policy version, else the current policy's answer; -1 for none. */
function decidingRule(record: RequestRecord, policy: Policy, version: string): { index: number; reevaluated: boolean } {
  if (record.policyVersion === version) {
    const named = RULE_IN_REASON.exec(record.reason);
    if (named) return { index: Number(named[1]) - 1, reevaluated: false };
    if (record.decision === 'allowed') return { index: -1, reevaluated: false };
  }
  return { index: evaluatePolicy(policy, kubeRequestOf(record)).ruleIndex, reevaluated: record.policyVersion !== version };
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)].sort();
}

/** The least allow rule that still allows every request `rule` allowed; the other fields are kept as they were. */
function narrowRule(rule: PolicyRule, allowed: KubeRequest[]): PolicyRule {
  const narrowed: PolicyRule = { effect: 'allow', verbs: unique(allowed.map((request) => request.verb)), apiGroups: unique(allowed.map((request) => request.apiGroup)) };
  narrowed.resources = unique(allowed.map((request) => (request.subresource ? `${request.resource}/${request.subresource}` : request.resource)));
  // '' (cluster-scoped or across namespaces) can only be allowed by a rule without a namespace list: keep the rule's own.
  if (allowed.some((request) => request.namespace === '')) {
    if (rule.namespaces) narrowed.namespaces = rule.namespaces;
  } else narrowed.namespaces = unique(allowed.map((request) => request.namespace));
  if (rule.names) narrowed.names = rule.names;
  return narrowed;
}

function sameRule(a: PolicyRule, b: PolicyRule): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The policy file as YAML, as people keep it. */
function policyYaml(policy: Policy): string {
  return stringifyYaml(JSON.parse(policySource(policy)));
}

export function reviewPolicy(input: {
  connection: string;
  agent?: string;
  policy: Policy;
  policyVersion: string;
  since: number;
  until: number;
  records: RequestRecord[];
  approvals: Approval[];
}): PolicyReview {
  const { policy, policyVersion } = input;
  const rules: RuleUse[] = policy.rules.map((rule, index) => ({ rule: index + 1, effect: rule.effect, text: describeRule(rule, index), allowed: 0, held: 0, denied: 0, reachesEscalation: [] }));
  const allowedBy = new Map<number, KubeRequest[]>();
  const refused = new Map<string, RefusedRequest>();
  const escalations = new Map<string, EscalationSeen>();
  const allowedRequests: { record: RequestRecord; request: KubeRequest }[] = [];
  const refusedRequests: { record: RequestRecord; request: KubeRequest }[] = [];
  let requests = 0;
  let reevaluated = 0;
  const records = input.records.filter(
    (record) => record.time >= input.since && record.time <= input.until && (record.decision === 'allowed' || record.decision === 'held' || record.decision === 'denied'),
  );
  for (const record of records.sort((a, b) => a.time - b.time)) {
    const request = kubeRequestOf(record);
    if (request.kind !== 'resource') continue;
    const decision = record.decision as 'allowed' | 'held' | 'denied';
    const deciding = decidingRule(record, policy, policyVersion);
    // Airlock's own calls (approval previews) and refusals before the policy (no window, ...) are not the policy's decisions.
    if (deciding.index < 0 && decision === 'allowed') continue;
    requests++;
    if (deciding.reevaluated) reevaluated++;
    const use = rules[deciding.index];
    if (use) {
      use[decision]++;
      use.lastMatched = record.time;
    }
    if (decision === 'allowed') {
      allowedRequests.push({ record, request });
      if (deciding.index >= 0) allowedBy.set(deciding.index, [...(allowedBy.get(deciding.index) ?? []), request]);
    } else {
      refusedRequests.push({ record, request });
      const key = `${decision} ${describeRequest(record)}`;
      const seen = refused.get(key) ?? { request: describeRequest(record), decision, count: 0, last: 0, reason: '' };
      refused.set(key, { ...seen, count: seen.count + 1, last: record.time, reason: record.reason });
    }
    const escalation = escalationOf(request);
    if (escalation) {
      const key = `${request.verb} ${escalation.entry}`;
      const seen = escalations.get(key) ?? { request: key, why: escalation.why, allowed: 0, held: 0, denied: 0 };
      seen[decision]++;
      escalations.set(key, seen);
    }
  }

  // Which rules decide an escalation or credential-minting request (the engine's answer on samples of each class).
  const namespaces = new Set<string>(['default']);
  for (const rule of policy.rules) for (const namespace of rule.namespaces ?? []) if (namespace !== '*') namespaces.add(namespace);
  for (const namespace of namespaces) {
    for (const sample of escalationSamples(namespace)) {
      const decision = evaluatePolicy(policy, sample);
      const use = rules[decision.ruleIndex];
      if (!use || decision.effect === 'deny') continue;
      const what = `${sample.verb} ${escalationOf(sample)!.entry}`;
      if (!use.reachesEscalation.includes(what)) use.reachesEscalation.push(what);
    }
  }

  // The suggestion: allow rules narrowed to what they allowed, unused ones dropped; deny and approve rules as they are.
  const changes: string[] = [];
  const suggestedRules: PolicyRule[] = [];
  policy.rules.forEach((rule, index) => {
    if (rule.effect !== 'allow') return void suggestedRules.push(rule);
    const allowed = allowedBy.get(index);
    if (!allowed) return void changes.push(`remove ${describeRule(rule, index)}: it allowed nothing in the period`);
    const narrowed = narrowRule(rule, allowed);
    if (!sameRule(narrowed, rule)) changes.push(`narrow ${describeRule(rule, index)} to what it allowed: ${describeRule(narrowed, suggestedRules.length)}`);
    suggestedRules.push(narrowed);
  });
  let candidate: Policy = { ...policy, rules: suggestedRules };
  // The engine's check: anything allowed that the suggestion would refuse puts its rule back as it was.
  for (const { record, request } of allowedRequests) {
    if (evaluatePolicy(candidate, request).effect === 'allow') continue;
    const index = decidingRule(record, policy, policyVersion).index;
    const original = policy.rules[index];
    if (!original) continue;
    const position = policy.rules.slice(0, index).filter((rule, i) => rule.effect !== 'allow' || allowedBy.has(i)).length;
    const restored = [...candidate.rules];
    if (allowedBy.has(index)) restored[position] = original;
    candidate = { ...candidate, rules: restored };
    changes.push(`keep ${describeRule(original, index)} as it is: narrowing it would refuse ${describeRequest(record)}`);
  }
  const checked = policyFromJSON(candidate);
  const check = { allowedStillAllowed: 0, allowedNowRefused: [] as string[], refusedStillRefused: 0, refusedNowAllowed: [] as string[] };
  for (const { record, request } of allowedRequests) {
    if (evaluatePolicy(checked.policy, request).effect === 'allow') check.allowedStillAllowed++;
    else check.allowedNowRefused.push(`${record.id} ${describeRequest(record)}`);
  }
  for (const { record, request } of refusedRequests) {
    if (evaluatePolicy(checked.policy, request).effect !== 'allow') check.refusedStillRefused++;
    else check.refusedNowAllowed.push(`${record.id} ${describeRequest(record)}`);
  }
  const current = policyYaml(policy);
  const suggested = policyYaml(checked.policy);
  const diff = current === suggested ? '' : createTwoFilesPatch('current', 'suggested', current, suggested, policyVersion, checked.version, { context: 3 });

  const approvals = { asked: 0, granted: 0, denied: 0, expired: 0, cancelled: 0, pending: 0 };
  for (const approval of input.approvals) {
    if (approval.connection !== input.connection || (input.agent && approval.agentName !== input.agent)) continue;
    if (approval.createdAt < input.since || approval.createdAt > input.until) continue;
    approvals.asked++;
    if (approval.status === 'approved' || approval.status === 'consumed') approvals.granted++;
    else if (approval.status === 'denied') approvals.denied++;
    else if (approval.status === 'expired') approvals.expired++;
    else if (approval.status === 'cancelled') approvals.cancelled++;
    else approvals.pending++;
  }

  return {
    connection: input.connection,
    ...(input.agent ? { agent: input.agent } : {}),
    since: input.since,
    until: input.until,
    policyVersion,
    requests,
    reevaluated,
    rules,
    unusedRules: rules.filter((use) => use.allowed + use.held + use.denied === 0).map((use) => use.rule),
    refused: [...refused.values()].sort((a, b) => b.count - a.count || b.last - a.last).slice(0, MOST_REFUSED),
    escalations: [...escalations.values()],
    warnings: escalationWarnings(policy),
    approvals,
    suggested: { policy: checked.policy, version: checked.version, diff, changes, check },
  };
}
