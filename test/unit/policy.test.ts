import { describe, expect, it } from 'vitest';
import { parseKubeRequest } from '../../lambdas/core/kube-request.ts';
import { describeRule, evaluatePolicy, type Policy, type PolicyRule } from '../../lambdas/core/policy.ts';
import { parsePolicy, PolicyError, policyFromJSON } from '../../lambdas/core/policy-file.ts';
import { AirlockError } from '../../lambdas/core/status.ts';
import { policyOf } from '../support/policies.ts';

// The example from CONTRACT.md, verbatim.
const CONTRACT_EXAMPLE = `maxWindow: 1h                # longest window an agent may ask for
windowApproval: required     # required | none
rules:
  - effect: deny
    resources: [secrets]
  - effect: allow
    verbs: [get, list, watch]
    namespaces: [prod]
  - effect: approve          # allowed only after a one-time approval of that exact request
    verbs: [delete, deletecollection, patch, update, create]
    namespaces: [prod]
approvers: [oncall@example.com]
`;

function policyError(text: string): PolicyError {
  try {
    parsePolicy(text);
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    expect(error).toBeInstanceOf(AirlockError);
    return error as PolicyError;
  }
  throw new Error(`expected the policy to be refused:\n${text}`);
}

/** A minimal valid policy around the given rules (YAML). */
function withRules(rules: string, extra = 'windowApproval: none\n'): string {
  return `${extra}rules:\n${rules}`;
}

function decide(policy: Policy, method: string, path: string, query: Record<string, string[]> = {}) {
  return evaluatePolicy(policy, parseKubeRequest(method, path, query));
}

describe('parsePolicy: the contract example', () => {
  it('parses with defaults filled in', () => {
    const parsed = parsePolicy(CONTRACT_EXAMPLE);
    expect(parsed.policy).toEqual({
      maxWindowSeconds: 3600,
      windowApproval: 'required',
      rules: [
        { effect: 'deny', resources: ['secrets'] },
        { effect: 'allow', verbs: ['get', 'list', 'watch'], namespaces: ['prod'] },
        { effect: 'approve', verbs: ['delete', 'deletecollection', 'patch', 'update', 'create'], namespaces: ['prod'] },
      ],
      approvers: ['oncall@example.com'],
      minApprovals: 1,
      approvalTimeoutSeconds: 900,
    });
    expect(parsed.version).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(parsed.source).toBe(CONTRACT_EXAMPLE);
  });

  it('decides the contract cases', () => {
    const { policy } = parsePolicy(CONTRACT_EXAMPLE);
    expect(decide(policy, 'GET', '/api/v1/namespaces/prod/pods').effect).toBe('allow');
    expect(decide(policy, 'GET', '/api/v1/namespaces/prod/pods', { watch: ['true'] }).effect).toBe('allow');
    expect(decide(policy, 'GET', '/api/v1/namespaces/prod/pods/web-0/log').effect).toBe('allow');
    expect(decide(policy, 'GET', '/api/v1/namespaces/prod/secrets/db')).toEqual({
      effect: 'deny',
      ruleIndex: 0,
      reason: 'rule 1 (deny resources [secrets])',
    });
    expect(decide(policy, 'DELETE', '/api/v1/namespaces/prod/secrets/db').effect).toBe('deny');
    expect(decide(policy, 'DELETE', '/api/v1/namespaces/prod/pods/web-0')).toEqual({
      effect: 'approve',
      ruleIndex: 2,
      reason: 'rule 3 (approve verbs [delete, deletecollection, patch, update, create] namespaces [prod])',
    });
    expect(decide(policy, 'DELETE', '/api/v1/namespaces/prod/pods').effect).toBe('approve');
    expect(decide(policy, 'GET', '/api/v1/namespaces/staging/pods')).toEqual({
      effect: 'deny',
      ruleIndex: -1,
      reason: 'no rule matches (default deny)',
    });
    // exec is its own verb: neither the read rule nor the approve rule names it.
    expect(decide(policy, 'POST', '/api/v1/namespaces/prod/pods/web-0/exec', { command: ['sh'] }).effect).toBe('deny');
    expect(decide(policy, 'GET', '/api/v1/namespaces/prod/services/web/proxy/admin').effect).toBe('deny');
    // Cluster-wide reads are outside namespaces: [prod].
    expect(decide(policy, 'GET', '/api/v1/pods').effect).toBe('deny');
    expect(decide(policy, 'GET', '/api/v1/nodes').effect).toBe('deny');
    // The namespace object itself lives in its own namespace, as in Kubernetes.
    expect(decide(policy, 'GET', '/api/v1/namespaces/prod').effect).toBe('allow');
    expect(decide(policy, 'DELETE', '/api/v1/namespaces/prod').effect).toBe('approve');
    expect(decide(policy, 'DELETE', '/api/v1/namespaces/staging').effect).toBe('deny');
  });

  it('reads the same policy written as JSON, with the same version', () => {
    const json = JSON.stringify({
      rules: [
        { effect: 'deny', resources: ['secrets'] },
        { effect: 'allow', verbs: ['get', 'list', 'watch'], namespaces: ['prod'] },
        { namespaces: ['prod'], effect: 'approve', verbs: ['delete', 'deletecollection', 'patch', 'update', 'create'] },
      ],
      approvers: ['oncall@example.com'],
      maxWindow: '60m',
    });
    expect(parsePolicy(json).version).toBe(parsePolicy(CONTRACT_EXAMPLE).version);
  });
});

describe('parsePolicy: defaults and fields', () => {
  it('fills defaults', () => {
    const { policy } = parsePolicy(withRules('  - effect: allow\n'));
    expect(policy).toEqual({
      maxWindowSeconds: 3600,
      windowApproval: 'none',
      rules: [{ effect: 'allow' }],
      approvers: [],
      minApprovals: 1,
      approvalTimeoutSeconds: 900,
    });
  });

  it('reads every field', () => {
    const { policy } = parsePolicy(`maxWindow: 1h30m
windowApproval: required
approvalTimeout: 2h
minApprovals: 2
approvers: [a@example.com, b@example.com]
rules:
  - effect: allow
    verbs: ['*']
    apiGroups: ["", apps, '*', networking.k8s.io]
    resources: [pods, pods/log, deployments/*, '*/status', '*']
    namespaces: [prod, '*']
    names: [web-0, 'https:web:443', '*']
`);
    expect(policy).toMatchObject({
      maxWindowSeconds: 5400,
      windowApproval: 'required',
      approvalTimeoutSeconds: 7200,
      minApprovals: 2,
      approvers: ['a@example.com', 'b@example.com'],
    });
    expect(policy.rules[0]).toEqual({
      effect: 'allow',
      verbs: ['*'],
      apiGroups: ['', 'apps', '*', 'networking.k8s.io'],
      resources: ['pods', 'pods/log', 'deployments/*', '*/status', '*'],
      namespaces: ['prod', '*'],
      names: ['web-0', 'https:web:443', '*'],
    });
  });

  it('accepts the duration bounds', () => {
    expect(parsePolicy(withRules('  - effect: allow\n', 'windowApproval: none\nmaxWindow: 1m\n')).policy.maxWindowSeconds).toBe(60);
    expect(parsePolicy(withRules('  - effect: allow\n', 'windowApproval: none\nmaxWindow: 12h\n')).policy.maxWindowSeconds).toBe(43200);
    expect(parsePolicy(withRules('  - effect: allow\n', 'windowApproval: none\napprovalTimeout: 24h\n')).policy.approvalTimeoutSeconds).toBe(86400);
  });
});

describe('parsePolicy: errors name the field', () => {
  const rule = '  - effect: allow\n';
  it.each([
    ['unknown top-level field', withRules(rule, 'windowApproval: none\nmaxWindows: 1h\n'), 'maxWindows', /unknown field 'maxWindows' — did you mean 'maxWindow'\?/],
    ['unknown rule field', withRules('  - effect: allow\n    verb: [get]\n'), 'rules[0].verb', /did you mean 'verbs'\?/],
    ['resourceNames alias', withRules('  - effect: allow\n    resourceNames: [x]\n'), 'rules[0].resourceNames', /did you mean 'names'\?/],
    ['unrelated unknown field', withRules(rule, 'windowApproval: none\nzzzzzz: 1\n'), 'zzzzzz', /unknown field 'zzzzzz' \(known fields:/],
    ['bad verb', withRules('  - effect: allow\n  - effect: deny\n    verbs: [get, destroy]\n'), 'rules[1].verbs[1]', /"destroy" is not a Kubernetes verb \(get, list/],
    ['verb typo', withRules('  - effect: allow\n    verbs: [lsit]\n'), 'rules[0].verbs[0]', /did you mean 'list'\?/],
    ['uppercase verb', withRules('  - effect: allow\n    verbs: [GET]\n'), 'rules[0].verbs[0]', /did you mean 'get'\?/],
    ['verbs not a list', withRules('  - effect: allow\n    verbs: get\n'), 'rules[0].verbs', /must be a list/],
    ['empty verbs', withRules('  - effect: allow\n    verbs: []\n'), 'rules[0].verbs', /omit the field to match anything/],
    ['empty resources', withRules('  - effect: deny\n    resources: []\n'), 'rules[0].resources', /omit the field to match anything/],
    ['empty namespaces', withRules('  - effect: allow\n    namespaces: []\n'), 'rules[0].namespaces', /omit the field/],
    ['empty names', withRules('  - effect: allow\n    names: []\n'), 'rules[0].names', /omit the field/],
    ['empty apiGroups', withRules('  - effect: allow\n    apiGroups: []\n'), 'rules[0].apiGroups', /omit the field/],
    ['non-string entry', withRules('  - effect: allow\n    names: [123]\n'), 'rules[0].names[0]', /must be a string/],
    ['missing effect', withRules('  - verbs: [get]\n'), 'rules[0].effect', /required/],
    ['bad effect', withRules('  - effect: permit\n'), 'rules[0].effect', /"permit" is not an effect/],
    ['effect typo', withRules('  - effect: alow\n'), 'rules[0].effect', /did you mean 'allow'\?/],
    ['rule not a mapping', withRules('  - allow\n'), 'rules[0]', /must be a mapping/],
    ['api group with version', withRules('  - effect: allow\n    apiGroups: [apps/v1]\n'), 'rules[0].apiGroups[0]', /includes a version/],
    ['core group spelled core', withRules('  - effect: deny\n    apiGroups: [core]\n'), 'rules[0].apiGroups[0]', /the core group is written ""/],
    ['uppercase api group', withRules('  - effect: allow\n    apiGroups: [Apps]\n'), 'rules[0].apiGroups[0]', /not an API group name/],
    ['uppercase resource', withRules('  - effect: deny\n    resources: [Secrets]\n'), 'rules[0].resources[0]', /lowercase plurals/],
    ['singular resource', withRules('  - effect: deny\n    resources: [secret]\n'), 'rules[0].resources[0]', /did you mean 'secrets'\?/],
    ['singular with subresource', withRules('  - effect: deny\n    resources: [pod/exec]\n'), 'rules[0].resources[0]', /did you mean 'pods\/exec'\?/],
    ['too many slashes', withRules('  - effect: deny\n    resources: [pods/log/x]\n'), 'rules[0].resources[0]', /more than one '\/'/],
    ['empty subresource', withRules('  - effect: deny\n    resources: [pods/]\n'), 'rules[0].resources[0]', /is not a resource/],
    ['bad namespace', withRules('  - effect: allow\n    namespaces: [Prod_1]\n'), 'rules[0].namespaces[0]', /not a namespace name/],
    ['empty namespace', withRules('  - effect: allow\n    namespaces: [""]\n'), 'rules[0].namespaces[0]', /not a namespace name/],
    ['bad name', withRules('  - effect: allow\n    names: [a/b]\n'), 'rules[0].names[0]', /not a Kubernetes object name/],
    ['dot-dot name', withRules('  - effect: allow\n    names: [".."]\n'), 'rules[0].names[0]', /not a Kubernetes object name/],
    ['missing rules', 'windowApproval: none\n', 'rules', /required/],
    ['empty rules', 'windowApproval: none\nrules: []\n', 'rules', /add at least one rule/],
    ['rules not a list', 'windowApproval: none\nrules: {effect: allow}\n', 'rules', /must be a list/],
    ['maxWindow not a duration', withRules(rule, 'windowApproval: none\nmaxWindow: soon\n'), 'maxWindow', /"soon" is not a duration/],
    ['maxWindow as a number', withRules(rule, 'windowApproval: none\nmaxWindow: 3600\n'), 'maxWindow', /3600 is not a duration/],
    ['maxWindow too long', withRules(rule, 'windowApproval: none\nmaxWindow: 13h\n'), 'maxWindow', /longer than the 12h maximum/],
    ['maxWindow too short', withRules(rule, 'windowApproval: none\nmaxWindow: 30s\n'), 'maxWindow', /shorter than the 1m minimum/],
    ['approvalTimeout too long', withRules(rule, 'windowApproval: none\napprovalTimeout: 2d\n'), 'approvalTimeout', /longer than the 24h maximum/],
    ['approvalTimeout too short', withRules(rule, 'windowApproval: none\napprovalTimeout: 59s\n'), 'approvalTimeout', /shorter/],
    ['bad windowApproval', withRules(rule, 'windowApproval: optional\n'), 'windowApproval', /"optional" is not one of required, none/],
    ['windowApproval required by default, no approvers', withRules(rule, ''), 'windowApproval', /required, the default.*no approvers/],
    ['windowApproval required, empty approvers', withRules(rule, 'windowApproval: required\napprovers: []\n'), 'windowApproval', /no approvers are listed/],
    ['approve rule, no approvers', withRules('  - effect: allow\n  - effect: approve\n    verbs: [delete]\n'), 'rules[1].effect', /nobody|no approvers/],
    ['bad email', withRules(rule, 'windowApproval: none\napprovers: [oncall]\n'), 'approvers[0]', /"oncall" is not an email address/],
    ['duplicate approver', withRules(rule, 'approvers: [a@example.com, A@example.com]\n'), 'approvers[1]', /listed twice/],
    ['approvers not a list', withRules(rule, 'windowApproval: none\napprovers: a@example.com\n'), 'approvers', /must be a list/],
    ['minApprovals zero', withRules(rule, 'windowApproval: none\nminApprovals: 0\n'), 'minApprovals', /at least 1/],
    ['minApprovals fraction', withRules(rule, 'windowApproval: none\nminApprovals: 1.5\n'), 'minApprovals', /whole number/],
    ['minApprovals text', withRules(rule, 'windowApproval: none\nminApprovals: "2"\n'), 'minApprovals', /whole number/],
    ['minApprovals above approvers', withRules(rule, 'approvers: [a@example.com]\nminApprovals: 2\n'), 'minApprovals', /can never be reached/],
  ])('%s', (_label, text, path, message) => {
    const error = policyError(text);
    expect(error.status).toBe(400);
    expect(error.code).toBe('invalid_policy');
    const issue = error.issues.find((candidate) => candidate.path === path);
    expect(issue, `issues: ${JSON.stringify(error.issues)}`).toBeDefined();
    expect(issue!.message).toMatch(message);
    expect(error.message).toContain(`${path}: `);
    expect(error.details).toEqual({ issues: error.issues });
  });

  it('reports every problem at once', () => {
    const error = policyError(`maxWindow: 13h
rules:
  - effect: allow
    verbs: [destroy]
  - effect: deny
    resources: []
`);
    expect(error.issues.map((issue) => issue.path)).toEqual(expect.arrayContaining(['maxWindow', 'rules[0].verbs[0]', 'rules[1].resources', 'windowApproval']));
  });

  it('the message of a single issue is "path: message"', () => {
    const error = policyError(withRules('  - effect: allow\n  - effect: deny\n    verbs: [destroy]\n'));
    expect(error.message).toMatch(/^rules\[1\]\.verbs\[0\]: "destroy" is not a Kubernetes verb \(get, list, /);
  });
});

describe('parsePolicy: hostile input', () => {
  it('refuses YAML aliases', () => {
    const bomb = `a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
rules: [{effect: allow}]
`;
    expect(policyError(bomb).message).toMatch(/anchors and aliases/);
    expect(policyError('x: &x {effect: allow}\nrules: [*x]\n').message).toMatch(/aliases/);
  });

  it('refuses text over 64 KiB', () => {
    const text = withRules('  - effect: allow\n') + `# ${'x'.repeat(64 * 1024)}\n`;
    expect(policyError(text).message).toMatch(/limit is 65536/);
  });

  it('refuses duplicate keys, which would make the policy ambiguous', () => {
    expect(policyError('windowApproval: none\nwindowApproval: required\nrules: [{effect: allow}]\n').message).toMatch(/not valid YAML or JSON/);
  });

  it.each([
    ['empty', ''],
    ['a comment', '# nothing\n'],
    ['a list', '- effect: allow\n'],
    ['a scalar', 'allow'],
    ['broken YAML', 'rules: [\n'],
    ['several documents', 'rules: [{effect: allow}]\n---\nrules: [{effect: allow}]\n'],
    ['__proto__ key', '__proto__: {windowApproval: none}\nrules: [{effect: allow}]\n'],
    ['merge key', 'windowApproval: none\nrules:\n  - <<: {effect: allow}\n'],
  ])('refuses %s', (_label, text) => {
    expect(policyError(text).code).toBe('invalid_policy');
  });

  it('refuses binary-tagged values where strings are expected', () => {
    expect(policyError(withRules('  - effect: allow\n    names: [!!binary aGk=]\n')).issues[0]!.path).toBe('rules[0].names[0]');
  });
});

describe('policyFromJSON and versions', () => {
  it('recomputes the same version for a stored policy, and its source parses back', () => {
    const parsed = parsePolicy(CONTRACT_EXAMPLE);
    const stored = JSON.parse(JSON.stringify(parsed.policy)) as Policy;
    const again = policyFromJSON(stored);
    expect(again.version).toBe(parsed.version);
    expect(again.policy).toEqual(parsed.policy);
    expect(parsePolicy(again.source).version).toBe(parsed.version);
  });

  it('does not depend on key order', () => {
    const a = policyOf([{ effect: 'allow', verbs: ['get'], namespaces: ['prod'] }]);
    const b = { ...a, rules: [{ namespaces: ['prod'], verbs: ['get'], effect: 'allow' as const }] };
    expect(policyFromJSON(b).version).toBe(policyFromJSON(a).version);
  });

  it('changes with any meaningful change', () => {
    const base = policyOf([{ effect: 'allow', verbs: ['get'] }]);
    const versions = new Set([
      policyFromJSON(base).version,
      policyFromJSON({ ...base, maxWindowSeconds: 1800 }).version,
      policyFromJSON({ ...base, rules: [{ effect: 'deny', verbs: ['get'] }] }).version,
      policyFromJSON({ ...base, rules: [{ effect: 'allow', verbs: ['get', 'list'] }] }).version,
      policyFromJSON({ ...base, approvers: ['other@example.com'] }).version,
      policyFromJSON({ ...base, windowApproval: 'required' }).version,
    ]);
    expect(versions.size).toBe(6);
  });

  it('refuses a damaged stored policy', () => {
    const base = policyOf([{ effect: 'allow' }]);
    expect(() => policyFromJSON({ ...base, maxWindowSeconds: 10 })).toThrow(PolicyError);
    expect(() => policyFromJSON({ ...base, rules: [] })).toThrow(/rules/);
    expect(() => policyFromJSON({ ...base, rules: [{ effect: 'allow', verbs: ['destroy'] }] })).toThrow(/rules\[0\]\.verbs\[0\]/);
    const { minApprovals: _unused, ...missing } = base;
    expect(() => policyFromJSON(missing as Policy)).toThrow(/minApprovals: required/);
    expect(() => policyFromJSON({ ...base, extra: 1 } as Policy)).toThrow(/unknown field 'extra'/);
  });
});

describe('describeRule', () => {
  it.each([
    [{ effect: 'deny', resources: ['secrets'] }, 0, 'rule 1 (deny resources [secrets])'],
    [{ effect: 'allow' }, 4, 'rule 5 (allow everything)'],
    [
      { effect: 'approve', verbs: ['delete'], apiGroups: ['', 'apps'], resources: ['pods'], namespaces: ['prod'], names: ['web-0'] },
      1,
      'rule 2 (approve verbs [delete] apiGroups ["", apps] resources [pods] namespaces [prod] names [web-0])',
    ],
  ] as [PolicyRule, number, string][])('%j', (rule, index, text) => {
    expect(describeRule(rule, index)).toBe(text);
  });
});

describe('evaluatePolicy', () => {
  it('deny beats approve beats allow, regardless of rule order', () => {
    const allow: PolicyRule = { effect: 'allow', resources: ['pods'] };
    const approve: PolicyRule = { effect: 'approve', resources: ['pods'] };
    const deny: PolicyRule = { effect: 'deny', resources: ['pods'] };
    const path = '/api/v1/namespaces/prod/pods/web-0';
    expect(decide(policyOf([allow, approve, deny]), 'GET', path)).toMatchObject({ effect: 'deny', ruleIndex: 2 });
    expect(decide(policyOf([deny, approve, allow]), 'GET', path)).toMatchObject({ effect: 'deny', ruleIndex: 0 });
    expect(decide(policyOf([allow, approve]), 'GET', path)).toMatchObject({ effect: 'approve', ruleIndex: 1 });
    expect(decide(policyOf([approve, allow]), 'GET', path)).toMatchObject({ effect: 'approve', ruleIndex: 0 });
    expect(decide(policyOf([allow]), 'GET', path)).toMatchObject({ effect: 'allow', ruleIndex: 0 });
    expect(decide(policyOf([allow, allow]), 'GET', path)).toMatchObject({ effect: 'allow', ruleIndex: 0 });
  });

  it('an omitted field matches anything', () => {
    const policy = policyOf([{ effect: 'allow' }]);
    expect(decide(policy, 'DELETE', '/apis/apps/v1/namespaces/x/deployments/y').effect).toBe('allow');
    expect(decide(policy, 'GET', '/api/v1/nodes').effect).toBe('allow');
    expect(decide(policy, 'POST', '/api/v1/namespaces/x/pods/y/exec').effect).toBe('allow');
  });

  describe('resources', () => {
    const pod = '/api/v1/namespaces/prod/pods/web-0';
    it.each([
      // [effect, entry, path, matches]
      ['allow', 'pods', pod, true],
      ['allow', 'pods', `${pod}/log`, false],
      ['allow', 'pods', `${pod}/exec`, false],
      ['deny', 'pods', `${pod}/log`, true],
      ['deny', 'pods', `${pod}/exec`, true],
      ['approve', 'pods', `${pod}/exec`, true],
      ['allow', 'pods/log', `${pod}/log`, true],
      ['allow', 'pods/log', pod, false],
      ['allow', 'pods/log', `${pod}/exec`, false],
      ['deny', 'pods/log', pod, false],
      ['allow', 'pods/*', `${pod}/log`, true],
      ['allow', 'pods/*', pod, false],
      ['deny', 'pods/*', pod, false],
      ['allow', '*/status', `${pod}/status`, true],
      ['allow', '*/status', '/apis/apps/v1/namespaces/prod/deployments/web/status', true],
      ['allow', '*/status', pod, false],
      ['allow', '*/*', `${pod}/log`, true],
      ['allow', '*/*', pod, false],
      ['allow', '*', pod, true],
      ['allow', '*', `${pod}/exec`, true],
      ['allow', 'secrets', pod, false],
      ['deny', 'secrets', pod, false],
      ['deny', 'services', '/api/v1/namespaces/prod/services/web/proxy/admin', true],
    ] as const)('%s %s vs %s -> %s', (effect, entry, path, matches) => {
      const decision = decide(policyOf([{ effect, resources: [entry] }]), 'GET', path);
      expect(decision.ruleIndex).toBe(matches ? 0 : -1);
    });
  });

  it('verbs and apiGroups', () => {
    const policy = policyOf([{ effect: 'allow', verbs: ['get', 'list'], apiGroups: ['', 'apps'] }]);
    expect(decide(policy, 'GET', '/api/v1/namespaces/prod/pods').effect).toBe('allow');
    expect(decide(policy, 'GET', '/apis/apps/v1/namespaces/prod/deployments/web').effect).toBe('allow');
    expect(decide(policy, 'GET', '/apis/batch/v1/namespaces/prod/jobs').effect).toBe('deny');
    expect(decide(policy, 'GET', '/api/v1/namespaces/prod/pods', { watch: ['1'] }).effect).toBe('deny');
    expect(decide(policy, 'PATCH', '/api/v1/namespaces/prod/pods/web-0').effect).toBe('deny');
    const star = policyOf([{ effect: 'allow', verbs: ['*'], apiGroups: ['*'] }]);
    expect(decide(star, 'DELETE', '/apis/batch/v1/namespaces/prod/jobs').effect).toBe('allow');
  });

  it('namespaces: "" (cluster-scoped, all namespaces) matches only an omitted field or *', () => {
    const scoped = policyOf([{ effect: 'allow', namespaces: ['prod'] }]);
    expect(decide(scoped, 'GET', '/api/v1/namespaces/prod/pods').effect).toBe('allow');
    expect(decide(scoped, 'GET', '/api/v1/pods').effect).toBe('deny');
    expect(decide(scoped, 'GET', '/api/v1/nodes/n1').effect).toBe('deny');
    const star = policyOf([{ effect: 'allow', namespaces: ['*'] }]);
    expect(decide(star, 'GET', '/api/v1/pods').effect).toBe('allow');
    expect(decide(star, 'GET', '/api/v1/nodes/n1').effect).toBe('allow');
  });

  it('names: collections (name "") match only an omitted field or *', () => {
    const named = policyOf([{ effect: 'allow', names: ['web-0'] }]);
    expect(decide(named, 'GET', '/api/v1/namespaces/prod/pods/web-0').effect).toBe('allow');
    expect(decide(named, 'GET', '/api/v1/namespaces/prod/pods/web-1').effect).toBe('deny');
    expect(decide(named, 'GET', '/api/v1/namespaces/prod/pods').effect).toBe('deny');
    expect(decide(policyOf([{ effect: 'allow', names: ['*'] }]), 'GET', '/api/v1/namespaces/prod/pods').effect).toBe('allow');
  });

  it('discovery is allowed unless a deny rule matches it', () => {
    const policy = policyOf([{ effect: 'deny', resources: ['secrets'] }]);
    for (const path of ['/api', '/api/v1', '/apis', '/apis/apps/v1', '/version', '/openapi/v3/apis/apps/v1']) {
      expect(decide(policy, 'GET', path)).toEqual({ effect: 'allow', ruleIndex: -1, reason: 'discovery (read-only API metadata)' });
    }
    // No allow rule needed, and approve rules do not hold discovery.
    expect(decide(policyOf([{ effect: 'approve' }]), 'GET', '/apis').effect).toBe('allow');
    expect(decide(policyOf([{ effect: 'deny', verbs: ['get'] }]), 'GET', '/apis')).toMatchObject({ effect: 'deny', ruleIndex: 0 });
    expect(decide(policyOf([{ effect: 'deny', resources: ['*'] }]), 'GET', '/apis').effect).toBe('allow');
    expect(decide(policyOf([{ effect: 'deny', namespaces: ['prod'] }]), 'GET', '/apis').effect).toBe('allow');
  });

  it('non-resource URLs are always denied', () => {
    const policy = policyOf([{ effect: 'allow' }]);
    expect(decide(policy, 'GET', '/healthz')).toEqual({
      effect: 'deny',
      ruleIndex: -1,
      reason: 'non-resource URL /healthz is not reachable through Airlock',
    });
    expect(decide(policy, 'GET', '/metrics').effect).toBe('deny');
    expect(decide(policy, 'GET', '/logs/kube-apiserver.log').effect).toBe('deny');
  });
});

describe('requests that reach every namespace', () => {
  const list = (path: string, method = 'GET') => parseKubeRequest(method, path, {});
  const policy = (rules: PolicyRule[]) => ({ ...parsePolicy('windowApproval: none\nrules: [{effect: allow}]').policy, rules });

  it('a namespaced deny stops the all-namespaces form of the same request', () => {
    const rules: PolicyRule[] = [
      { effect: 'deny', resources: ['secrets'], namespaces: ['kube-system'] },
      { effect: 'allow', verbs: ['list'], resources: ['secrets'] },
    ];
    expect(evaluatePolicy(policy(rules), list('/api/v1/secrets')).effect).toBe('deny');
    expect(evaluatePolicy(policy(rules), list('/api/v1/namespaces/prod/secrets')).effect).toBe('allow');
  });

  it('a deny naming an object stops listing the collection that holds it', () => {
    const rules: PolicyRule[] = [{ effect: 'deny', resources: ['configmaps'], names: ['root-ca'] }, { effect: 'allow' }];
    expect(evaluatePolicy(policy(rules), list('/api/v1/namespaces/prod/configmaps')).effect).toBe('deny');
  });

  it('an approve rule guards the cluster-wide form of an allowed request, and never loosens a default deny', () => {
    const guarded: PolicyRule[] = [
      { effect: 'approve', verbs: ['deletecollection'], namespaces: ['prod'] },
      { effect: 'allow', verbs: ['deletecollection'] },
    ];
    expect(evaluatePolicy(policy(guarded), list('/api/v1/pods', 'DELETE')).effect).toBe('approve');
    const onlyApprove: PolicyRule[] = [{ effect: 'approve', verbs: ['deletecollection'], namespaces: ['prod'] }];
    expect(evaluatePolicy(policy(onlyApprove), list('/api/v1/pods', 'DELETE')).effect).toBe('deny');
  });
});

describe('commands: rules about what an exec runs', () => {
  const execOf = (namespace: string, ...command: string[]) => parseKubeRequest('GET', `/api/v1/namespaces/${namespace}/pods/web-0/exec`, { command, stdout: ['true'] });
  const listed = `
rules:
  - effect: deny
    verbs: [exec]
    resources: [pods/exec]
    commands: ["rm *"]
  - effect: allow
    verbs: [exec]
    resources: [pods/exec]
    namespaces: [prod]
    commands: [date, "ls *", "cat /etc/hostname"]
  - effect: approve
    verbs: [exec]
    resources: [pods/exec]
    namespaces: [prod]
approvers: [oncall@example.com]
windowApproval: none
`;

  it('the parser reads the command from the query, in order; only for exec', () => {
    expect(execOf('prod', 'ls', '-l', '/tmp').command).toEqual(['ls', '-l', '/tmp']);
    expect(parseKubeRequest('GET', '/api/v1/namespaces/prod/pods/web-0/log', { command: ['ls'] }).command).toBeUndefined();
  });

  it('allow these commands, hold every other: a rule that lists the command decides before one that lists none', () => {
    const { policy } = parsePolicy(listed);
    expect(evaluatePolicy(policy, execOf('prod', 'date')).effect).toBe('allow');
    expect(evaluatePolicy(policy, execOf('prod', 'ls')).effect).toBe('allow');
    expect(evaluatePolicy(policy, execOf('prod', 'ls', '-la', '/var')).effect).toBe('allow');
    expect(evaluatePolicy(policy, execOf('prod', 'cat', '/etc/hostname')).effect).toBe('allow');
    // Exactly the words: more arguments, another file, a shell around it.
    expect(evaluatePolicy(policy, execOf('prod', 'date', '-s', '2020-01-01')).effect).toBe('approve');
    expect(evaluatePolicy(policy, execOf('prod', 'cat', '/etc/shadow')).effect).toBe('approve');
    expect(evaluatePolicy(policy, execOf('prod', 'sh', '-c', 'date')).effect).toBe('approve');
    expect(evaluatePolicy(policy, execOf('prod', 'cat /etc/hostname')).effect).toBe('approve');
    // A deny wins over every allow.
    expect(evaluatePolicy(policy, execOf('prod', 'rm', '-rf', '/')).effect).toBe('deny');
    // Nothing allows exec elsewhere.
    expect(evaluatePolicy(policy, execOf('staging', 'date')).effect).toBe('deny');
  });

  it('a rule with commands matches nothing but an exec', () => {
    const policy = policyOf([{ effect: 'allow', verbs: ['exec'], commands: ['*'] }]);
    expect(evaluatePolicy(policy, execOf('prod', 'anything', 'at', 'all')).effect).toBe('allow');
    expect(evaluatePolicy(policy, parseKubeRequest('GET', '/api/v1/namespaces/prod/pods/web-0/attach', {})).effect).toBe('deny');
  });

  it('describeRule names the commands', () => {
    expect(describeRule({ effect: 'allow', verbs: ['exec'], commands: ['date', 'ls *'] }, 0)).toBe('rule 1 (allow verbs [exec] commands [date, ls *])');
  });

  it.each([
    ['a rule with commands but not only verbs [exec]', '{effect: allow, resources: [pods/exec], commands: [date]}', 'rules[0].verbs', 'a rule with commands is about exec only'],
    ['* before the last word', '{effect: allow, verbs: [exec], commands: ["ls * /tmp"]}', 'rules[0].commands[0]', 'only as the last word'],
    ['double spaces', '{effect: allow, verbs: [exec], commands: ["ls  -l"]}', 'rules[0].commands[0]', 'single spaces'],
    ['an empty list', '{effect: allow, verbs: [exec], commands: []}', 'rules[0].commands', 'an empty list matches nothing'],
  ])('refuses %s', (_what, rule, path, message) => {
    const error = policyError(`rules:\n  - ${rule}\nwindowApproval: none\n`);
    expect(error.issues).toContainEqual({ path, message: expect.stringContaining(message) as string });
  });
});
