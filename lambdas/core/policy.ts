// A connection's policy and the check of one Kubernetes request against it. The file
// people write (parse, schema, messages, versions) is policy-file.ts.
import { escalationOf, escalationSamples, type RequestCheck } from './effects.ts';
import type { KubeRequest } from './kube-request.ts';

export type RuleEffect = 'allow' | 'deny' | 'approve';

export interface PolicyRule {
  effect: RuleEffect;
  verbs?: string[];
  apiGroups?: string[];
  resources?: string[];
  namespaces?: string[];
  names?: string[];
  /**
   * exec only: the commands the rule is about, each written as words separated by single spaces
   * (`cat /etc/hostname`); a last word `*` stands for any further arguments (`ls *`). A rule with
   * commands matches only an exec whose command is one of them, and decides it before the rules
   * that name no command (commandMatches, evaluatePolicy).
   */
  commands?: string[];
}

export interface Policy {
  maxWindowSeconds: number;
  windowApproval: 'required' | 'none';
  rules: PolicyRule[];
  approvers: string[];
  minApprovals: number;
  approvalTimeoutSeconds: number;
}

export interface PolicyDecision {
  effect: RuleEffect;
  /** Index into policy.rules of the deciding rule; -1 when no rule decided. */
  ruleIndex: number;
  reason: string;
}

const LIST_FIELDS = ['verbs', 'apiGroups', 'resources', 'namespaces', 'names', 'commands'] as const;

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
  // Every resource (a namespace deletion's effect): any restricting rule reaches it; only a rule for every resource allows it.
  if (request.resource === '*') return rule.effect !== 'allow' || entries.includes('*');
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
    return request.subresource !== '' && (resource === '*' || resource === request.resource) && (subresource === '*' || subresource === request.subresource);
  });
}

/**
 * Whether an exec's command is one a rule lists. Words compare exactly; a pattern's last word `*`
 * matches any further arguments (none too). A request without a command (anything but an exec)
 * never matches a rule that lists commands.
 */
export function commandMatches(patterns: string[] | undefined, command: readonly string[] | undefined): boolean {
  if (patterns === undefined) return true;
  if (command === undefined) return false;
  return patterns.some((pattern) => {
    const words = pattern.split(' ');
    const rest = words.at(-1) === '*';
    const fixed = rest ? words.slice(0, -1) : words;
    if (rest ? command.length < fixed.length : command.length !== fixed.length) return false;
    return fixed.every((word, index) => word === command[index]);
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
    (request.apiGroup === '*' ? rule.effect !== 'allow' || entryMatches(rule.apiGroups, '*') : entryMatches(rule.apiGroups, request.apiGroup)) &&
    resourceMatches(rule, request) &&
    scopedMatches(rule.namespaces, request.namespace, broad) &&
    scopedMatches(rule.names, request.name, broad) &&
    commandMatches(rule.commands, request.command)
  );
}

/** Whether the rule lists `entry` itself in resources (not '*', not 'x/*', not omitted). */
function namesResource(rule: PolicyRule, entry: string): boolean {
  return rule.resources?.includes(entry) ?? false;
}

function firstMatch(policy: Policy, request: KubeRequest, effect: RuleEffect, scope?: 'exact' | 'broad', counts: (rule: PolicyRule) => boolean = () => true): PolicyDecision | undefined {
  const index = policy.rules.findIndex((rule) => rule.effect === effect && ruleMatches(rule, request, scope) && counts(rule));
  if (index < 0) return undefined;
  return { effect, ruleIndex: index, reason: describeRule(policy.rules[index]!, index) };
}

/**
 * deny beats approve beats allow; nothing matching is a deny. A request that mints a
 * credential or widens rights (effects.ts escalationOf) is allowed or held only by a
 * rule that names its resource; broad rules still deny and hold it.
 */
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
  const escalation = escalationOf(request);
  const permits = (rule: PolicyRule) => escalation === undefined || namesResource(rule, escalation.entry);
  // An exec: the rules that list its command decide it before those that name none, so "allow these
  // commands, hold every other" is two rules (a deny of any kind has already won above).
  if (request.command) {
    const listed =
      firstMatch(policy, request, 'approve', undefined, (rule) => rule.commands !== undefined && permits(rule)) ??
      firstMatch(policy, request, 'allow', undefined, (rule) => rule.commands !== undefined && permits(rule));
    if (listed) return listed;
  }
  const approve = firstMatch(policy, request, 'approve', undefined, permits);
  if (approve) return approve;
  const allow = firstMatch(policy, request, 'allow', undefined, permits);
  if (!allow) {
    const broad = escalation && (firstMatch(policy, request, 'approve') ?? firstMatch(policy, request, 'allow'));
    if (escalation && broad) {
      return {
        effect: 'deny',
        ruleIndex: -1,
        reason: `this ${escalation.why}, so only a rule that names ${escalation.entry} in resources can allow it (${broad.reason} is broad)`,
      };
    }
    return { effect: 'deny', ruleIndex: -1, reason: 'no rule matches (default deny)' };
  }
  // An allowed request that may reach what an approve rule guards (e.g.
  // deletecollection across all namespaces vs. approve in prod) needs approval too.
  // Broad approve matching only ever tightens an allow, never loosens a deny.
  return firstMatch(policy, request, 'approve', 'broad') ?? allow;
}

/**
 * Decides a request from all its checks (effects.ts checksOf; the request itself first):
 * refused if any check is denied, held if any is held, else allowed. A check no rule
 * allows is covered when the rule that decided the request names one of its `coveredBy`.
 */
export function evaluateRequest(policy: Policy, checks: readonly RequestCheck[]): PolicyDecision {
  const [own, ...derived] = checks;
  if (own === undefined) throw new Error('evaluateRequest needs the request itself');
  const first = evaluatePolicy(policy, own.request);
  if (first.effect === 'deny') return first;
  const deciding = policy.rules[first.ruleIndex];
  let held: PolicyDecision | undefined = first.effect === 'approve' ? first : undefined;
  for (const check of derived) {
    const decision = evaluatePolicy(policy, check.request);
    const notAllowed = decision.effect === 'deny' && decision.ruleIndex === -1;
    if (notAllowed && deciding && check.coveredBy?.some((entry) => namesResource(deciding, entry) || (deciding.verbs?.includes(entry as never) ?? false))) continue;
    const because = { ...decision, reason: `${check.why}: ${decision.reason}` };
    if (decision.effect === 'deny') return because;
    if (decision.effect === 'approve') held ??= because;
  }
  return held ?? first;
}

/**
 * Where a broad permissive rule reaches a request that mints a credential or widens
 * rights: Airlock refuses those unless a rule names them, and says so when a policy is saved.
 */
export function escalationWarnings(policy: Policy): string[] {
  const namespaces = new Set<string>(['default']);
  for (const rule of policy.rules) for (const namespace of rule.namespaces ?? []) if (namespace !== '*') namespaces.add(namespace);
  const warnings = new Map<string, string>();
  for (const namespace of namespaces) {
    for (const request of escalationSamples(namespace)) {
      const escalation = escalationOf(request)!;
      if (evaluatePolicy(policy, request).effect !== 'deny' || firstMatch(policy, request, 'deny')) continue;
      const broad = firstMatch(policy, request, 'approve') ?? firstMatch(policy, request, 'allow');
      if (!broad) continue;
      const what = `${request.verb} ${escalation.entry}`;
      warnings.set(`${broad.ruleIndex}:${what}`, `${broad.reason} would reach ${what} (it ${escalation.why}); Airlock refuses it unless a rule names ${escalation.entry} in resources`);
    }
  }
  return [...warnings.values()];
}
