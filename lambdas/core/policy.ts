// A connection's policy: the file people write (YAML or JSON), its validated
// form, and the check of one Kubernetes request against it.
import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { formatDuration, parseDuration } from './durations.ts';
import { KUBE_VERBS, type KubeRequest } from './kube-request.ts';
import { AirlockError } from './status.ts';

export type RuleEffect = 'allow' | 'deny' | 'approve';

export interface PolicyRule {
  effect: RuleEffect;
  verbs?: string[];
  apiGroups?: string[];
  resources?: string[];
  namespaces?: string[];
  names?: string[];
}

export interface Policy {
  maxWindowSeconds: number;
  windowApproval: 'required' | 'none';
  rules: PolicyRule[];
  approvers: string[];
  minApprovals: number;
  approvalTimeoutSeconds: number;
}

export interface ParsedPolicy {
  policy: Policy;
  /** 'sha256:' + hex digest of the canonical JSON of `policy`. */
  version: string;
  source: string;
}

export interface PolicyIssue {
  path: string;
  message: string;
}

export interface PolicyDecision {
  effect: RuleEffect;
  /** Index into policy.rules of the deciding rule; -1 when no rule decided. */
  ruleIndex: number;
  reason: string;
}

export const MAX_POLICY_BYTES = 64 * 1024;
const MAX_ISSUES = 20;
const MAX_APPROVERS = 100;

export const WINDOW_LIMITS = { min: 60, max: 12 * 3600, default: 3600 } as const;
export const APPROVAL_TIMEOUT_LIMITS = { min: 60, max: 24 * 3600, default: 15 * 60 } as const;

const EFFECTS: readonly RuleEffect[] = ['allow', 'deny', 'approve'];
const WINDOW_APPROVALS = ['required', 'none'] as const;
const RULE_FIELDS = ['effect', 'verbs', 'apiGroups', 'resources', 'namespaces', 'names'] as const;
const LIST_FIELDS = ['verbs', 'apiGroups', 'resources', 'namespaces', 'names'] as const;
type ListField = (typeof LIST_FIELDS)[number];

const FILE_FIELDS = ['maxWindow', 'windowApproval', 'rules', 'approvers', 'minApprovals', 'approvalTimeout'];
const STORED_FIELDS = [
  'maxWindowSeconds',
  'windowApproval',
  'rules',
  'approvers',
  'minApprovals',
  'approvalTimeoutSeconds',
];

// Names people reach for that mean one of ours (beyond simple typos).
const FIELD_ALIASES: Record<string, string> = {
  resourcenames: 'names',
  groups: 'apiGroups',
  apigroup: 'apiGroups',
  action: 'effect',
  approver: 'approvers',
  maxwindowseconds: 'maxWindow',
  approvaltimeoutseconds: 'approvalTimeout',
};

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const RESOURCE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
// Same alphabet the request parser accepts in a path segment: a name outside it can never match.
const OBJECT_NAME = /^[A-Za-z0-9._:~@+=-]+$/;
const EMAIL = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

// A deny on 'secret' that silently matches nothing is a hole, so common singulars are refused.
const SINGULARS: Record<string, string> = {
  pod: 'pods',
  secret: 'secrets',
  configmap: 'configmaps',
  service: 'services',
  serviceaccount: 'serviceaccounts',
  node: 'nodes',
  namespace: 'namespaces',
  deployment: 'deployments',
  statefulset: 'statefulsets',
  daemonset: 'daemonsets',
  replicaset: 'replicasets',
  job: 'jobs',
  cronjob: 'cronjobs',
  ingress: 'ingresses',
  role: 'roles',
  rolebinding: 'rolebindings',
  clusterrole: 'clusterroles',
  clusterrolebinding: 'clusterrolebindings',
  persistentvolume: 'persistentvolumes',
  persistentvolumeclaim: 'persistentvolumeclaims',
  event: 'events',
  endpoint: 'endpoints',
};

export class PolicyError extends AirlockError {
  override name = 'PolicyError';
  readonly issues: PolicyIssue[];

  constructor(issues: PolicyIssue[]) {
    const message = issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ');
    super(400, 'invalid_policy', message, { issues });
    this.issues = issues;
  }
}

// ---------------------------------------------------------------- validation

class Issues {
  readonly list: PolicyIssue[] = [];
  add(path: string, message: string): void {
    if (this.list.length < MAX_ISSUES) this.list.push({ path, message });
  }
}

function quote(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The closest allowed word, for "did you mean" hints. */
function closest(word: string, allowed: readonly string[], aliases: Record<string, string> = {}): string | undefined {
  const lower = word.toLowerCase();
  const alias = aliases[lower];
  if (alias !== undefined && allowed.includes(alias)) return alias;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.min(2, Math.floor(lower.length / 2)) ? best : undefined;
}

function checkKnownFields(value: Record<string, unknown>, allowed: readonly string[], at: string, issues: Issues): void {
  for (const key of Object.keys(value)) {
    if (allowed.includes(key)) continue;
    const hint = closest(key, allowed, FIELD_ALIASES);
    const path = at ? `${at}.${key}` : key;
    issues.add(path, `unknown field '${key}'${hint ? ` — did you mean '${hint}'?` : ` (known fields: ${allowed.join(', ')})`}`);
  }
}

function field(value: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(value, key) ? value[key] : undefined;
}

function checkVerb(verb: string): string | undefined {
  if (verb === '*' || (KUBE_VERBS as readonly string[]).includes(verb)) return undefined;
  const hint = closest(verb, KUBE_VERBS);
  return `${quote(verb)} is not a Kubernetes verb (${KUBE_VERBS.join(', ')}, or *)${hint ? `; did you mean '${hint}'?` : ''}`;
}

function checkApiGroup(group: string): string | undefined {
  if (group === '' || group === '*') return undefined;
  if (group.includes('/')) return `${quote(group)} includes a version; give the group only (e.g. apps), "" for the core group`;
  if (group === 'core') return `"core" is not a group name; the core group is written ""`;
  if (group.length > 253 || !DNS_SUBDOMAIN.test(group)) {
    return `${quote(group)} is not an API group name (lowercase, e.g. apps or networking.k8s.io; "" for the core group)`;
  }
  return undefined;
}

function checkResource(entry: string): string | undefined {
  if (entry === '*') return undefined;
  const parts = entry.split('/');
  const shape = 'use resource, resource/subresource, resource/*, */subresource or *';
  if (parts.length > 2) return `${quote(entry)} has more than one '/'; ${shape}`;
  if (entry !== entry.toLowerCase()) return `${quote(entry)}: resources are lowercase plurals, e.g. pods or pods/log`;
  for (const part of parts) {
    if (part !== '*' && !RESOURCE_NAME.test(part)) return `${quote(entry)} is not a resource; ${shape}`;
  }
  const plural = SINGULARS[parts[0]!];
  if (plural) return `${quote(entry)}: resources are plural; did you mean '${[plural, ...parts.slice(1)].join('/')}'?`;
  return undefined;
}

function checkNamespace(namespace: string): string | undefined {
  if (namespace === '*' || (namespace.length <= 63 && DNS_LABEL.test(namespace))) return undefined;
  return `${quote(namespace)} is not a namespace name (a lowercase DNS label) or *`;
}

function checkName(name: string): string | undefined {
  if (name === '*') return undefined;
  if (name.length > 253 || name === '.' || name === '..' || !OBJECT_NAME.test(name)) {
    return `${quote(name)} is not a Kubernetes object name or *`;
  }
  return undefined;
}

const LIST_CHECKS: Record<ListField, { example: string; check: (entry: string) => string | undefined }> = {
  verbs: { example: '[get, list]', check: checkVerb },
  apiGroups: { example: '["", apps]', check: checkApiGroup },
  resources: { example: '[pods, pods/log]', check: checkResource },
  namespaces: { example: '[prod]', check: checkNamespace },
  names: { example: '[web-0]', check: checkName },
};

function readList(value: unknown, listField: ListField, at: string, issues: Issues): string[] | undefined {
  const { example, check } = LIST_CHECKS[listField];
  if (!Array.isArray(value)) {
    issues.add(at, `must be a list, e.g. ${example}`);
    return undefined;
  }
  if (value.length === 0) {
    issues.add(at, 'an empty list matches nothing; omit the field to match anything');
    return undefined;
  }
  const result: string[] = [];
  value.forEach((entry: unknown, index) => {
    const problem = typeof entry === 'string' ? check(entry) : `must be a string, not ${quote(entry)}`;
    if (problem) issues.add(`${at}[${index}]`, problem);
    else result.push(entry as string);
  });
  return result.length === value.length ? result : undefined;
}

function readRule(value: unknown, at: string, issues: Issues): PolicyRule | undefined {
  if (!isRecord(value)) {
    issues.add(at, `must be a mapping with an effect, e.g. {effect: allow, verbs: [get]}, not ${quote(value)}`);
    return undefined;
  }
  checkKnownFields(value, RULE_FIELDS, at, issues);
  const effect = field(value, 'effect');
  let ruleEffect: RuleEffect | undefined;
  if (effect === undefined) {
    issues.add(`${at}.effect`, 'required: allow, deny or approve');
  } else if (typeof effect === 'string' && (EFFECTS as readonly string[]).includes(effect)) {
    ruleEffect = effect as RuleEffect;
  } else {
    const hint = typeof effect === 'string' ? closest(effect, EFFECTS) : undefined;
    issues.add(`${at}.effect`, `${quote(effect)} is not an effect (allow, deny or approve)${hint ? `; did you mean '${hint}'?` : ''}`);
  }
  const rule: PolicyRule = { effect: ruleEffect ?? 'deny' };
  for (const listField of LIST_FIELDS) {
    const raw = field(value, listField);
    if (raw === undefined) continue;
    const list = readList(raw, listField, `${at}.${listField}`, issues);
    if (list) rule[listField] = list;
  }
  return ruleEffect ? rule : undefined;
}

function readDuration(
  value: unknown,
  at: string,
  limits: { min: number; max: number; default: number },
  issues: Issues,
): number {
  if (value === undefined) return limits.default;
  const seconds = typeof value === 'string' ? parseDuration(value) : undefined;
  if (seconds === undefined) {
    issues.add(at, `${quote(value)} is not a duration (e.g. 30m, 1h, 1h30m)`);
  } else if (seconds < limits.min) {
    issues.add(at, `${value} is shorter than the ${formatDuration(limits.min)} minimum`);
  } else if (seconds > limits.max) {
    issues.add(at, `${value} is longer than the ${formatDuration(limits.max)} maximum`);
  }
  return seconds ?? limits.default;
}

function readSeconds(
  value: unknown,
  at: string,
  limits: { min: number; max: number },
  issues: Issues,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < limits.min || value > limits.max) {
    issues.add(at, `must be an integer number of seconds between ${limits.min} and ${limits.max}, not ${quote(value)}`);
    return limits.min;
  }
  return value;
}

function readApprovers(value: unknown, issues: Issues): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    issues.add('approvers', 'must be a list of email addresses, e.g. [oncall@example.com]');
    return [];
  }
  if (value.length > MAX_APPROVERS) issues.add('approvers', `at most ${MAX_APPROVERS} approvers`);
  const seen = new Set<string>();
  const approvers: string[] = [];
  value.forEach((entry: unknown, index) => {
    const at = `approvers[${index}]`;
    if (typeof entry !== 'string' || entry.length > 254 || !EMAIL.test(entry)) {
      issues.add(at, `${quote(entry)} is not an email address`);
    } else if (seen.has(entry.toLowerCase())) {
      // Duplicates would let minApprovals count one person twice.
      issues.add(at, `${quote(entry)} is listed twice`);
    } else {
      seen.add(entry.toLowerCase());
      approvers.push(entry);
    }
  });
  return approvers;
}

type Form = 'file' | 'stored';

/** Validates a policy in file form (durations as text) or stored form (seconds); throws PolicyError. */
function readPolicy(raw: unknown, form: Form): Policy {
  const issues = new Issues();
  if (!isRecord(raw)) {
    throw new PolicyError([{ path: '', message: `a policy must be a mapping with rules, not ${quote(raw)}` }]);
  }
  checkKnownFields(raw, form === 'file' ? FILE_FIELDS : STORED_FIELDS, '', issues);
  if (form === 'stored') {
    // Stored policies are complete; a missing field means damage, not a default.
    for (const key of ['windowApproval', 'approvers', 'minApprovals']) {
      if (field(raw, key) === undefined) issues.add(key, 'required');
    }
  }

  const maxWindowSeconds =
    form === 'file'
      ? readDuration(field(raw, 'maxWindow'), 'maxWindow', WINDOW_LIMITS, issues)
      : readSeconds(field(raw, 'maxWindowSeconds'), 'maxWindowSeconds', WINDOW_LIMITS, issues);
  const approvalTimeoutSeconds =
    form === 'file'
      ? readDuration(field(raw, 'approvalTimeout'), 'approvalTimeout', APPROVAL_TIMEOUT_LIMITS, issues)
      : readSeconds(field(raw, 'approvalTimeoutSeconds'), 'approvalTimeoutSeconds', APPROVAL_TIMEOUT_LIMITS, issues);

  // Fail closed: windows need approval unless the policy says otherwise.
  let windowApproval: Policy['windowApproval'] = 'required';
  const rawWindowApproval = field(raw, 'windowApproval');
  if (rawWindowApproval !== undefined) {
    if (rawWindowApproval === 'required' || rawWindowApproval === 'none') windowApproval = rawWindowApproval;
    else issues.add('windowApproval', `${quote(rawWindowApproval)} is not one of ${WINDOW_APPROVALS.join(', ')}`);
  }

  const rules: PolicyRule[] = [];
  const rawRules = field(raw, 'rules');
  if (rawRules === undefined) {
    issues.add('rules', 'required: a list of rules (with none, every request is denied)');
  } else if (!Array.isArray(rawRules)) {
    issues.add('rules', 'must be a list of rules');
  } else if (rawRules.length === 0) {
    issues.add('rules', 'an empty list denies every request; add at least one rule');
  } else {
    rawRules.forEach((rawRule: unknown, index) => {
      const rule = readRule(rawRule, `rules[${index}]`, issues);
      if (rule) rules.push(rule);
    });
  }

  const approvers = readApprovers(field(raw, 'approvers'), issues);

  let minApprovals = 1;
  const rawMin = field(raw, 'minApprovals');
  if (rawMin !== undefined) {
    if (typeof rawMin !== 'number' || !Number.isInteger(rawMin) || rawMin < 1) {
      issues.add('minApprovals', `must be a whole number of at least 1, not ${quote(rawMin)}`);
    } else if (approvers.length > 0 && rawMin > approvers.length) {
      issues.add('minApprovals', `${rawMin} approvals can never be reached with ${approvers.length} approver(s)`);
    } else {
      minApprovals = rawMin;
    }
  }

  // Nobody could approve: the window or the request would wait until it times out.
  const rawApprovers = field(raw, 'approvers');
  if (!Array.isArray(rawApprovers) || rawApprovers.length === 0) {
    if (windowApproval === 'required') {
      const which = rawWindowApproval === undefined ? 'required, the default' : 'required';
      issues.add(
        'windowApproval',
        `windows need approval (${which}) but no approvers are listed; add approvers or set windowApproval: none`,
      );
    }
    if (Array.isArray(rawRules)) {
      rawRules.forEach((rawRule: unknown, index) => {
        if (isRecord(rawRule) && field(rawRule, 'effect') === 'approve') {
          issues.add(`rules[${index}].effect`, 'approve needs someone to approve, but no approvers are listed');
        }
      });
    }
  }

  if (issues.list.length > 0) throw new PolicyError(issues.list);
  return { maxWindowSeconds, windowApproval, rules, approvers, minApprovals, approvalTimeoutSeconds };
}

// ---------------------------------------------------------------- versions

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isRecord(value)) {
    const keys = Object.keys(value)
      .filter((key) => value[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function policyVersion(policy: Policy): string {
  return `sha256:${createHash('sha256').update(canonicalJson(policy)).digest('hex')}`;
}

/** The policy in file form, as JSON (which YAML reads too). */
function policySource(policy: Policy): string {
  const file = {
    maxWindow: formatDuration(policy.maxWindowSeconds),
    windowApproval: policy.windowApproval,
    rules: policy.rules,
    approvers: policy.approvers,
    minApprovals: policy.minApprovals,
    approvalTimeout: formatDuration(policy.approvalTimeoutSeconds),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

// ---------------------------------------------------------------- public API

/** Parses and validates a policy file (YAML or JSON). Throws PolicyError naming every bad field. */
export function parsePolicy(text: string): ParsedPolicy {
  if (typeof text !== 'string') throw new PolicyError([{ path: '', message: 'the policy must be text' }]);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_POLICY_BYTES) {
    throw new PolicyError([{ path: '', message: `the policy is ${bytes} bytes; the limit is ${MAX_POLICY_BYTES}` }]);
  }
  let raw: unknown;
  try {
    // No aliases at all (no billion-laughs), duplicate keys are errors, YAML 1.2 core types only.
    raw = parseYaml(text, { maxAliasCount: 0, uniqueKeys: true, schema: 'core', merge: false, prettyErrors: true });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    const message = /alias/i.test(detail)
      ? 'YAML anchors and aliases (&name / *name) are not allowed in a policy'
      : `not valid YAML or JSON: ${detail.split('\n')[0]}`;
    throw new PolicyError([{ path: '', message }]);
  }
  if (raw === null || raw === undefined) throw new PolicyError([{ path: '', message: 'the policy is empty' }]);
  const policy = readPolicy(raw, 'file');
  return { policy, version: policyVersion(policy), source: text };
}

/** Re-validates a stored policy and recomputes its version; `source` is its file form. */
export function policyFromJSON(policy: Policy): ParsedPolicy {
  const checked = readPolicy(policy, 'stored');
  return { policy: checked, version: policyVersion(checked), source: policySource(checked) };
}

function showEntry(entry: string): string {
  return entry === '' ? '""' : entry;
}

/** Human text for a rule; `index` is its 0-based position, shown 1-based ('rule 1 (deny resources [secrets])'). */
export function describeRule(rule: PolicyRule, index: number): string {
  const parts: string[] = [rule.effect];
  for (const listField of LIST_FIELDS) {
    const list = rule[listField];
    if (list) parts.push(`${listField} [${list.map(showEntry).join(', ')}]`);
  }
  if (parts.length === 1) parts.push('everything');
  return `rule ${index + 1} (${parts.join(' ')})`;
}

function entryMatches(list: string[] | undefined, value: string): boolean {
  if (list === undefined || list.includes('*')) return true;
  return list.includes(value);
}

/**
 * '' (cluster-scoped, all namespaces, a collection) matches an omitted field or '*'
 * — and, for restricting rules (`broad`), any list: `get secrets -A` reads
 * kube-system too, so `deny ... namespaces [kube-system]` must stop it.
 */
function scopedMatches(list: string[] | undefined, value: string, broad = false): boolean {
  if (list === undefined || list.includes('*')) return true;
  if (value === '') return broad;
  return list.includes(value);
}

function resourceMatches(rule: PolicyRule, request: KubeRequest): boolean {
  const entries = rule.resources;
  if (entries === undefined) return true;
  if (request.kind !== 'resource') return false;
  return entries.some((entry) => {
    if (entry === '*') return true;
    const slash = entry.indexOf('/');
    if (slash < 0) {
      // Allow is narrow (like RBAC, 'pods' does not grant pods/exec); deny and
      // approve are broad ('pods' restricts every subresource of pods too).
      return entry === request.resource && (request.subresource === '' || rule.effect !== 'allow');
    }
    const resource = entry.slice(0, slash);
    const subresource = entry.slice(slash + 1);
    return (
      request.subresource !== '' &&
      (resource === '*' || resource === request.resource) &&
      (subresource === '*' || subresource === request.subresource)
    );
  });
}

/**
 * `scope` 'exact': a request with no namespace/name matches only rules without
 * those fields; 'broad': it also matches rules that name some (it may reach them).
 */
export function ruleMatches(rule: PolicyRule, request: KubeRequest, scope: 'exact' | 'broad' = rule.effect === 'deny' ? 'broad' : 'exact'): boolean {
  const broad = scope === 'broad' && request.kind === 'resource';
  return (
    entryMatches(rule.verbs, request.verb) &&
    entryMatches(rule.apiGroups, request.apiGroup) &&
    resourceMatches(rule, request) &&
    scopedMatches(rule.namespaces, request.namespace, broad) &&
    scopedMatches(rule.names, request.name, broad)
  );
}

function firstMatch(policy: Policy, request: KubeRequest, effect: RuleEffect, scope?: 'exact' | 'broad'): PolicyDecision | undefined {
  const index = policy.rules.findIndex((rule) => rule.effect === effect && ruleMatches(rule, request, scope));
  if (index < 0) return undefined;
  return { effect, ruleIndex: index, reason: describeRule(policy.rules[index]!, index) };
}

/** deny beats approve beats allow; nothing matching is a deny. */
export function evaluatePolicy(policy: Policy, request: KubeRequest): PolicyDecision {
  if (request.kind === 'nonresource') {
    return {
      effect: 'deny',
      ruleIndex: -1,
      reason: `non-resource URL ${request.path} is not reachable through Airlock`,
    };
  }
  const denied = firstMatch(policy, request, 'deny');
  if (denied) return denied;
  if (request.kind === 'discovery') {
    return { effect: 'allow', ruleIndex: -1, reason: 'discovery (read-only API metadata)' };
  }
  const approve = firstMatch(policy, request, 'approve');
  if (approve) return approve;
  const allow = firstMatch(policy, request, 'allow');
  if (!allow) return { effect: 'deny', ruleIndex: -1, reason: 'no rule matches (default deny)' };
  // An allowed request that may reach what an approve rule guards (e.g.
  // deletecollection across all namespaces vs. approve in prod) needs approval too.
  // Broad approve matching only ever tightens an allow, never loosens a deny.
  return firstMatch(policy, request, 'approve', 'broad') ?? allow;
}
