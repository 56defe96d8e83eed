// A policy file as people write it (YAML or JSON): the schema, the messages that name
// every bad field (with "did you mean" hints), and the version and source stored with it.
// What a validated policy means for a request is in policy.ts.
import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import * as z from 'zod';
import { toDotPath } from 'zod/v4/core';
import { canonicalJson } from './canonical-json.ts';
import { formatDuration, parseDuration } from './durations.ts';
import { errorText } from './errors.ts';
import { KUBE_VERBS } from './kube-request.ts';
import type { Policy, RuleEffect } from './policy.ts';
import { AirlockError } from './status.ts';

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

export const MAX_POLICY_BYTES = 64 * 1024;
const MAX_ISSUES = 20;
const MAX_APPROVERS = 100;

export const WINDOW_LIMITS = { min: 60, max: 12 * 3600, default: 3600 } as const;
export const APPROVAL_TIMEOUT_LIMITS = { min: 60, max: 24 * 3600, default: 15 * 60 } as const;

const EFFECTS = ['allow', 'deny', 'approve'] as const satisfies readonly RuleEffect[];
const WINDOW_APPROVALS = ['required', 'none'] as const;

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

function didYouMean(input: unknown, allowed: readonly string[]): string {
  const hint = typeof input === 'string' ? closest(input, allowed) : undefined;
  return hint ? `; did you mean '${hint}'?` : '';
}

// zod error maps; each gets the raw issue, with the offending input.
type RawIssue = { code?: string; input?: unknown };
const says =
  (missing: string, wrong: (input: unknown) => string) =>
  ({ input }: RawIssue) =>
    input === undefined ? missing : wrong(input);
const notMapping = (message: string) => ({
  error: ({ code, input }: RawIssue) => (code === 'invalid_type' ? `${message}, not ${quote(input)}` : undefined),
});
const notString = ({ input }: RawIssue) => `must be a string, not ${quote(input)}`;
const notEmail = ({ input }: RawIssue) => `${quote(input)} is not an email address`;

/** A string, refused with `problem`'s message when it returns one. */
function entry(problem: (value: string) => string | undefined) {
  return z.string({ error: notString }).superRefine((value, ctx) => {
    const message = problem(value);
    if (message) ctx.addIssue(message);
  });
}

const verb = z.enum(['*', ...KUBE_VERBS], {
  error: (issue) => (typeof issue.input === 'string' ? `${quote(issue.input)} is not a Kubernetes verb (${KUBE_VERBS.join(', ')}, or *)${didYouMean(issue.input, KUBE_VERBS)}` : notString(issue)),
});

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
  const plural = Object.hasOwn(SINGULARS, parts[0]!) ? SINGULARS[parts[0]!] : undefined;
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

/** A command as a rule lists it (policy.ts commandMatches): words separated by single spaces, `*` only as the last word. */
function checkCommand(command: string): string | undefined {
  if (command.length === 0 || command.length > 1024) return `${quote(command)}: a command is 1 to 1024 characters, its words separated by single spaces`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(command)) return `${quote(command)} contains control characters`;
  const words = command.split(' ');
  if (words.some((word) => word === '')) return `${quote(command)}: words are separated by single spaces (no leading, trailing or double spaces)`;
  if (words.slice(0, -1).includes('*')) return `${quote(command)}: \`*\` stands for any further arguments only as the last word`;
  return undefined;
}

const list = (item: z.ZodType<string>, example: string) =>
  z
    .array(item, { error: `must be a list, e.g. ${example}` })
    .refine((items) => items.length > 0, 'an empty list matches nothing; omit the field to match anything')
    .optional();

const ruleSchema = z.strictObject(
  {
    effect: z.enum(EFFECTS, {
      error: says('required: allow, deny or approve', (input) => `${quote(input)} is not an effect (allow, deny or approve)${didYouMean(input, EFFECTS)}`),
    }),
    verbs: list(verb, '[get, list]'),
    apiGroups: list(entry(checkApiGroup), '["", apps]'),
    resources: list(entry(checkResource), '[pods, pods/log]'),
    namespaces: list(entry(checkNamespace), '[prod]'),
    names: list(entry(checkName), '[web-0]'),
    commands: list(entry(checkCommand), '["cat /etc/hostname", "ls *"]'),
  },
  notMapping('must be a mapping with an effect, e.g. {effect: allow, verbs: [get]}'),
);

const rules = z
  .array(ruleSchema, { error: says('required: a list of rules (with none, every request is denied)', () => 'must be a list of rules') })
  .refine((items) => items.length > 0, 'an empty list denies every request; add at least one rule');

const isEmail = (value: unknown): value is string => typeof value === 'string' && value.length <= 254 && EMAIL.test(value);

const approvers = z.array(z.string({ error: notEmail }).refine(isEmail, { error: notEmail }), {
  error: says('required', () => 'must be a list of email addresses, e.g. [oncall@example.com]'),
});

const windowApproval = z.enum(WINDOW_APPROVALS, {
  error: says('required', (input) => `${quote(input)} is not one of ${WINDOW_APPROVALS.join(', ')}`),
});

/** A whole number in [min, max]; one message for every way to miss it. */
const wholeNumber = (min: number, max: number, error: (issue: RawIssue) => string) => z.number({ error }).refine((n) => Number.isInteger(n) && n >= min && n <= max, { error });

const minApprovals = wholeNumber(
  1,
  Infinity,
  says('required', (input) => `must be a whole number of at least 1, not ${quote(input)}`),
);

type Limits = { min: number; max: number; default: number };

/** Seconds, as stored. */
const seconds = ({ min, max }: Limits) => wholeNumber(min, max, ({ input }) => `must be an integer number of seconds between ${min} and ${max}, not ${quote(input)}`);

/** A duration as people write it (30m, 1h30m), read as seconds. */
function duration(limits: Limits) {
  const notDuration = (input: unknown) => `${quote(input)} is not a duration (e.g. 30m, 1h, 1h30m)`;
  return z
    .string({ error: ({ input }) => notDuration(input) })
    .transform((text, ctx) => {
      const seconds = parseDuration(text);
      if (seconds === undefined) ctx.addIssue(notDuration(text));
      else if (seconds < limits.min) ctx.addIssue(`${text} is shorter than the ${formatDuration(limits.min)} minimum`);
      else if (seconds > limits.max) ctx.addIssue(`${text} is longer than the ${formatDuration(limits.max)} maximum`);
      return seconds ?? limits.default;
    })
    .default(limits.default);
}

/**
 * Checks between fields. They run even when a field failed (see evenIfInvalid), so one pass
 * names every problem; a field that failed still holds its raw input here.
 */
function checkAcross(value: Partial<Record<'windowApproval' | 'rules' | 'approvers' | 'minApprovals', unknown>>, ctx: z.RefinementCtx): void {
  const add = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const listed: unknown[] = Array.isArray(value.approvers) ? value.approvers : [];
  if (listed.length > MAX_APPROVERS) add(['approvers'], `at most ${MAX_APPROVERS} approvers`);
  const people = new Set<string>();
  listed.forEach((approver, index) => {
    if (!isEmail(approver)) return;
    // Duplicates would let minApprovals count one person twice.
    if (people.has(approver.toLowerCase())) add(['approvers', index], `${quote(approver)} is listed twice`);
    people.add(approver.toLowerCase());
  });
  const wanted = value.minApprovals;
  if (people.size > 0 && typeof wanted === 'number' && Number.isInteger(wanted) && wanted > people.size) {
    add(['minApprovals'], `${wanted} approvals can never be reached with ${people.size} approver(s)`);
  }
  (Array.isArray(value.rules) ? value.rules : []).forEach((rule: unknown, index) => {
    // Only an exec has a command: anything else under such a rule would silently match nothing.
    if (isRecord(rule) && rule.commands !== undefined && !(Array.isArray(rule.verbs) && rule.verbs.length === 1 && rule.verbs[0] === 'exec')) {
      add(['rules', index, 'verbs'], 'a rule with commands is about exec only: give verbs: [exec]');
    }
  });
  if (listed.length > 0) return;
  // Nobody could approve: the window or the request would wait until it times out.
  if (value.windowApproval !== 'none') {
    const which = value.windowApproval === undefined ? 'required, the default' : 'required';
    add(['windowApproval'], `windows need approval (${which}) but no approvers are listed; add approvers or set windowApproval: none`);
  }
  (Array.isArray(value.rules) ? value.rules : []).forEach((rule: unknown, index) => {
    if (isRecord(rule) && rule.effect === 'approve') add(['rules', index, 'effect'], 'approve needs someone to approve, but no approvers are listed');
  });
}

const evenIfInvalid = { when: (payload: { value: unknown }) => isRecord(payload.value) };

const notPolicy = notMapping('a policy must be a mapping with rules');

const fileShape = {
  maxWindow: duration(WINDOW_LIMITS),
  windowApproval: windowApproval.optional(),
  rules,
  approvers: approvers.default(() => []),
  minApprovals: minApprovals.default(1),
  approvalTimeout: duration(APPROVAL_TIMEOUT_LIMITS),
};

const fileSchema = z
  .strictObject(fileShape, notPolicy)
  .superRefine(checkAcross, evenIfInvalid)
  // Fail closed: windows need approval unless the policy says otherwise.
  .transform(({ maxWindow, windowApproval = 'required', approvalTimeout, ...rest }): Policy => ({
    maxWindowSeconds: maxWindow,
    windowApproval,
    ...rest,
    approvalTimeoutSeconds: approvalTimeout,
  }));

// Stored policies are complete; a missing field means damage, not a default.
const storedShape = {
  maxWindowSeconds: seconds(WINDOW_LIMITS),
  windowApproval,
  rules,
  approvers,
  minApprovals,
  approvalTimeoutSeconds: seconds(APPROVAL_TIMEOUT_LIMITS),
};

const storedSchema = z.strictObject(storedShape, notPolicy).superRefine(checkAcross, evenIfInvalid);

/** Validates a policy in file form (durations as text) or stored form (seconds); throws PolicyError. */
function readPolicy(raw: unknown, form: 'file' | 'stored'): Policy {
  const result = (form === 'file' ? fileSchema : storedSchema).safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const issues = result.error.issues.flatMap((issue): PolicyIssue[] => {
    const at = toDotPath(issue.path);
    if (issue.code !== 'unrecognized_keys') return [{ path: at, message: issue.message }];
    const allowed = Object.keys(at ? ruleSchema.shape : form === 'file' ? fileShape : storedShape);
    // zod lists inherited keys too (a YAML !!binary Buffer has enumerable methods): report the written ones.
    return issue.keys
      .filter((key) => Object.hasOwn(issue.input as object, key))
      .map((key) => {
        const hint = closest(key, allowed, FIELD_ALIASES);
        const message = `unknown field '${key}'${hint ? ` — did you mean '${hint}'?` : ` (known fields: ${allowed.join(', ')})`}`;
        return { path: at ? `${at}.${key}` : key, message };
      });
  });
  throw new PolicyError(issues.slice(0, MAX_ISSUES));
}

// ---------------------------------------------------------------- versions

function policyVersion(policy: Policy): string {
  return `sha256:${createHash('sha256').update(canonicalJson(policy)).digest('hex')}`;
}

/** The policy in file form, as JSON (which YAML reads too). */
export function policySource(policy: Policy): string {
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
    const detail = errorText(error, { name: false });
    const message = /alias/i.test(detail) ? 'YAML anchors and aliases (&name / *name) are not allowed in a policy' : `not valid YAML or JSON: ${detail.split('\n')[0]}`;
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
