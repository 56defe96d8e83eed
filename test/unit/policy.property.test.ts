import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escalationOf } from '../../lambdas/core/effects.ts';
import { parseKubeRequest, type KubeRequest } from '../../lambdas/core/kube-request.ts';
import { evaluatePolicy, ruleMatches, type Policy, type PolicyRule, type RuleEffect } from '../../lambdas/core/policy.ts';
import { parsePolicy, policyFromJSON } from '../../lambdas/core/policy-file.ts';
import { AirlockError } from '../../lambdas/core/status.ts';
import { policyOf } from '../support/policies.ts';

const RUNS = { numRuns: 500 };

// ------------------------------------------------------------- generators

const groups = ['', 'apps', 'batch'] as const;
const namespaces = ['', 'prod', 'staging', 'kube-system'] as const;
const resources = ['pods', 'secrets', 'configmaps', 'deployments', 'namespaces', 'nodes'] as const;
const names = ['', 'web-0', 'db'] as const;
const subresources = ['', 'log', 'status', 'exec', 'attach', 'portforward', 'proxy'] as const;
const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
const truthyWatch = ['true', '1', 'TRUE', 'True', 'yes', ''];
const falsyWatch = ['false', '0', 'FALSE', 'False'];

interface Shape {
  method: (typeof methods)[number];
  group: string;
  namespace: string;
  resource: string;
  name: string;
  subresource: string;
  watch: string | undefined;
}

const shapeArb: fc.Arbitrary<Shape> = fc
  .record({
    method: fc.constantFrom(...methods),
    group: fc.constantFrom(...groups),
    namespace: fc.constantFrom(...namespaces),
    resource: fc.constantFrom(...resources),
    name: fc.constantFrom(...names),
    subresource: fc.constantFrom(...subresources),
    watch: fc.option(fc.constantFrom(...truthyWatch, ...falsyWatch), { nil: undefined }),
  })
  .map((shape) => ({ ...shape, subresource: shape.name === '' ? '' : shape.subresource }));

function pathOf(shape: Shape): string {
  const prefix = shape.group === '' ? '/api/v1' : `/apis/${shape.group}/v1`;
  const scope = shape.namespace === '' ? '' : `/namespaces/${shape.namespace}`;
  const object = shape.name === '' ? '' : `/${shape.name}`;
  const sub = shape.subresource === '' ? '' : `/${shape.subresource}`;
  return `${prefix}${scope}/${shape.resource}${object}${sub}`;
}

function queryOf(shape: Shape): Record<string, string[]> {
  return shape.watch === undefined ? {} : { watch: [shape.watch] };
}

/** Parses a generated shape, or undefined when the parser refuses it (a named GET with watch). */
function tryParse(shape: Shape): KubeRequest | undefined {
  try {
    return parseKubeRequest(shape.method, pathOf(shape), queryOf(shape));
  } catch (error) {
    if (error instanceof AirlockError && error.code === 'invalid_query') return undefined;
    throw error;
  }
}

const otherPathArb = fc.constantFrom('/api', '/api/v1', '/apis', '/apis/apps', '/apis/apps/v1', '/version', '/openapi/v3/apis/apps/v1', '/healthz', '/metrics', '/');

const requestArb: fc.Arbitrary<KubeRequest> = fc.oneof(
  { weight: 5, arbitrary: shapeArb.map(tryParse).filter((request): request is KubeRequest => request !== undefined) },
  { weight: 1, arbitrary: otherPathArb.map((path) => parseKubeRequest('GET', path, {})) },
);

const resourceEntryArb = fc.constantFrom(...resources, 'pods/log', 'pods/exec', 'pods/*', 'deployments/status', '*/status', '*/exec', '*/*', '*');

function listArb<T extends string>(values: fc.Arbitrary<T>): fc.Arbitrary<T[] | undefined> {
  return fc.option(fc.uniqueArray(values, { minLength: 1, maxLength: 3 }), { nil: undefined });
}

function ruleArb(effect?: RuleEffect): fc.Arbitrary<PolicyRule> {
  return fc
    .record({
      effect: effect ? fc.constant(effect) : fc.constantFrom<RuleEffect>('allow', 'deny', 'approve'),
      verbs: listArb(fc.constantFrom('get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', 'exec', 'proxy', '*')),
      apiGroups: listArb(fc.constantFrom(...groups, '*')),
      resources: listArb(resourceEntryArb),
      namespaces: listArb(fc.constantFrom('prod', 'staging', 'kube-system', '*')),
      names: listArb(fc.constantFrom('web-0', 'db', '*')),
    })
    .map((rule) => {
      const clean: PolicyRule = { effect: rule.effect };
      for (const key of ['verbs', 'apiGroups', 'resources', 'namespaces', 'names'] as const) {
        if (rule[key] !== undefined) clean[key] = rule[key];
      }
      return clean;
    });
}

const policyArb = fc.array(ruleArb(), { minLength: 1, maxLength: 6 }).map(policyOf);

/** A deny rule built to match `request`; each field either names the value, is '*', or is omitted. */
function matchingDenyArb(request: KubeRequest): fc.Arbitrary<PolicyRule> {
  const pick = (value: string) => fc.constantFrom<string[] | undefined>(undefined, ['*'], [value]);
  const scoped = (value: string) => (value === '' ? fc.constantFrom<string[] | undefined>(undefined, ['*']) : pick(value));
  const resource =
    request.kind !== 'resource'
      ? fc.constant(undefined)
      : fc.constantFrom<string[] | undefined>(undefined, ['*'], [request.resource], [request.subresource === '' ? request.resource : `${request.resource}/${request.subresource}`]);
  return fc
    .record({
      verbs: pick(request.verb),
      apiGroups: pick(request.apiGroup),
      resources: resource,
      namespaces: scoped(request.namespace),
      names: scoped(request.name),
    })
    .map((fields) => {
      const rule: PolicyRule = { effect: 'deny' };
      for (const [key, value] of Object.entries(fields)) {
        if (value !== undefined) rule[key as Exclude<keyof PolicyRule, 'effect'>] = value;
      }
      return rule;
    });
}

function insertAt<T>(list: T[], item: T, position: number): T[] {
  const at = position % (list.length + 1);
  return [...list.slice(0, at), item, ...list.slice(at)];
}

/** The contract read directly, independently of the implementation's structure. */
/** `broad`: a request with no namespace/name may reach any, so restricting rules that name some match it. */
function oracleMatches(rule: PolicyRule, request: KubeRequest, broad: boolean): boolean {
  const any = (list: string[] | undefined, value: string, emptyMatches: boolean) => list === undefined || list.includes('*') || (value === '' ? emptyMatches : list.includes(value));
  const reachesAll = broad && request.kind === 'resource';
  if (!any(rule.verbs, request.verb, false)) return false;
  if (!(rule.apiGroups === undefined || rule.apiGroups.includes('*') || rule.apiGroups.includes(request.apiGroup))) return false;
  if (!any(rule.namespaces, request.namespace, reachesAll)) return false;
  if (!any(rule.names, request.name, reachesAll)) return false;
  if (rule.resources === undefined) return true;
  if (request.kind !== 'resource') return false;
  const full = request.subresource === '' ? request.resource : `${request.resource}/${request.subresource}`;
  return rule.resources.some(
    (entry) =>
      entry === '*' ||
      entry === full ||
      (entry === request.resource && rule.effect !== 'allow') ||
      (entry === `${request.resource}/*` && request.subresource !== '') ||
      (entry === `*/${request.subresource}` && request.subresource !== '') ||
      (entry === '*/*' && request.subresource !== ''),
  );
}

/**
 * The contract, read directly: deny (broad) > approve > allow > default deny; an
 * allowed request that may reach what an approve rule guards needs approval.
 */
function oracleEffect(policy: Policy, request: KubeRequest): RuleEffect {
  if (request.kind === 'nonresource') return 'deny';
  const matches = (effect: RuleEffect, broad: boolean) => policy.rules.some((rule) => rule.effect === effect && oracleMatches(rule, request, broad));
  // Within these generators, the requests CONTRACT.md lists as credentials: only a rule naming them permits them.
  const escalation =
    request.kind === 'resource' && request.apiGroup === ''
      ? request.resource === 'secrets' && ['get', 'list', 'watch'].includes(request.verb)
        ? 'secrets'
        : request.resource === 'nodes' && request.subresource === 'proxy'
          ? 'nodes/proxy'
          : undefined
      : undefined;
  const permits = (effect: RuleEffect) =>
    policy.rules.some((rule) => rule.effect === effect && oracleMatches(rule, request, false) && (escalation === undefined || (rule.resources ?? []).includes(escalation)));
  if (matches('deny', true)) return 'deny';
  if (request.kind === 'discovery') return 'allow';
  if (permits('approve')) return 'approve';
  if (!permits('allow')) return 'deny';
  return matches('approve', true) ? 'approve' : 'allow';
}

// ------------------------------------------------------------- evaluation

describe('evaluatePolicy properties', () => {
  it('a matching deny rule always wins', () => {
    fc.assert(
      fc.property(
        requestArb.chain((request) => fc.tuple(fc.constant(request), matchingDenyArb(request))),
        policyArb,
        fc.nat(),
        ([request, deny], policy, position) => {
          expect(ruleMatches(deny, request) || request.kind === 'nonresource').toBe(true);
          const decision = evaluatePolicy({ ...policy, rules: insertAt(policy.rules, deny, position) }, request);
          expect(decision.effect).toBe('deny');
        },
      ),
      RUNS,
    );
  });

  it('no matching rule means deny', () => {
    // Rules only about secrets/configmaps; requests only about pods/deployments/nodes.
    const unrelatedRule = ruleArb().map((rule) => ({ ...rule, resources: ['secrets', 'configmaps/status'] }));
    const unrelatedRequest = shapeArb
      .filter((shape) => ['pods', 'deployments', 'nodes'].includes(shape.resource))
      .map(tryParse)
      .filter((request): request is KubeRequest => request !== undefined);
    fc.assert(
      fc.property(fc.array(unrelatedRule, { minLength: 1, maxLength: 6 }), unrelatedRequest, (rules, request) => {
        expect(evaluatePolicy(policyOf(rules), request)).toEqual({
          effect: 'deny',
          ruleIndex: -1,
          reason: 'no rule matches (default deny)',
        });
      }),
      RUNS,
    );
  });

  it('a deny with ruleIndex -1 means no rule matched (or none that names an escalation); any other decision names a matching rule of that effect', () => {
    fc.assert(
      fc.property(policyArb, requestArb, (policy, request) => {
        const decision = evaluatePolicy(policy, request);
        if (decision.ruleIndex >= 0) {
          const rule = policy.rules[decision.ruleIndex]!;
          expect(rule.effect).toBe(decision.effect);
          expect(ruleMatches(rule, request) || ruleMatches(rule, request, 'broad')).toBe(true);
        } else if (decision.effect === 'deny' && request.kind === 'resource') {
          // An escalation (credential, wider rights) matched only by rules that do not name it is refused with -1 too.
          const escalation = escalationOf(request);
          const permits = (rule: PolicyRule) => escalation === undefined || (rule.resources ?? []).includes(escalation.entry);
          expect(policy.rules.some((rule) => ruleMatches(rule, request) && permits(rule))).toBe(false);
        }
      }),
      RUNS,
    );
  });

  it('agrees with a direct reading of the contract', () => {
    fc.assert(
      fc.property(policyArb, requestArb, (policy, request) => {
        expect(evaluatePolicy(policy, request).effect).toBe(oracleEffect(policy, request));
      }),
      RUNS,
    );
  });

  it('adding an allow rule never turns a deny-rule-matched request into allow', () => {
    fc.assert(
      fc.property(policyArb, requestArb, ruleArb('allow'), fc.nat(), (policy, request, allow, position) => {
        const before = evaluatePolicy(policy, request);
        fc.pre(before.effect === 'deny' && before.ruleIndex >= 0);
        const after = evaluatePolicy({ ...policy, rules: insertAt(policy.rules, allow, position) }, request);
        expect(after.effect).toBe('deny');
      }),
      RUNS,
    );
  });

  it('adding an allow rule never changes a deny-rule or approve decision; adding a deny never loosens one', () => {
    fc.assert(
      fc.property(policyArb, requestArb, ruleArb('allow'), ruleArb('deny'), fc.nat(), (policy, request, allow, deny, position) => {
        const before = evaluatePolicy(policy, request);
        const withAllow = evaluatePolicy({ ...policy, rules: insertAt(policy.rules, allow, position) }, request);
        if (before.effect === 'approve' || (before.effect === 'deny' && before.ruleIndex >= 0)) {
          expect(withAllow.effect).toBe(before.effect);
        }
        const withDeny = evaluatePolicy({ ...policy, rules: insertAt(policy.rules, deny, position) }, request);
        if (before.effect === 'deny') expect(withDeny.effect).toBe('deny');
      }),
      RUNS,
    );
  });

  it('rule order does not change the effect', () => {
    fc.assert(
      fc.property(policyArb, requestArb, fc.infiniteStream(fc.nat()), (policy, request, stream) => {
        const shuffled = [...policy.rules];
        const random = stream[Symbol.iterator]();
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = random.next().value! % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        expect(evaluatePolicy({ ...policy, rules: shuffled }, request).effect).toBe(evaluatePolicy(policy, request).effect);
      }),
      RUNS,
    );
  });
});

// ------------------------------------------------------------- policy files

describe('policy file properties', () => {
  it('a valid policy survives file -> stored -> file with the same version', () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 1, max: 720 }), (policy, minutes) => {
        const stored = { ...policy, maxWindowSeconds: minutes * 60 };
        const fromStore = policyFromJSON(stored);
        const reparsed = parsePolicy(fromStore.source);
        expect(reparsed.policy).toEqual(fromStore.policy);
        expect(reparsed.version).toBe(fromStore.version);
      }),
      { numRuns: 200 },
    );
  });

  it('parsePolicy never throws anything but a PolicyError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.jsonValue().map((value) => JSON.stringify(value)),
        ),
        (text) => {
          try {
            parsePolicy(text);
          } catch (error) {
            expect(error).toBeInstanceOf(AirlockError);
            expect((error as AirlockError).code).toBe('invalid_policy');
          }
        },
      ),
      RUNS,
    );
  });
});

// ------------------------------------------------------------- request parsing

function hasNoControls(value: string): boolean {
  return [...value].every((char) => {
    const code = char.codePointAt(0)!;
    return code >= 0x20 && !(code >= 0x7f && code <= 0x9f);
  });
}

const unrelatedParamArb = fc.uniqueArray(
  fc.tuple(
    fc.constantFrom('limit', 'labelSelector', 'fieldSelector', 'pretty', 'timeoutSeconds', 'resourceVersion', 'continue'),
    fc.array(fc.string({ maxLength: 12 }).filter(hasNoControls), { minLength: 1, maxLength: 2 }),
  ),
  { selector: ([key]) => key, maxLength: 5 },
);

function semantic(request: KubeRequest) {
  const { query: _query, ...rest } = request;
  return rest;
}

describe('parseKubeRequest properties', () => {
  it('parses every generated resource path back into its parts', () => {
    fc.assert(
      fc.property(shapeArb, (shape) => {
        const request = tryParse(shape);
        fc.pre(request !== undefined);
        let expected = { resource: shape.resource, namespace: shape.namespace, name: shape.name, subresource: shape.subresource };
        if (shape.resource === 'namespaces' && shape.namespace === '' && shape.name !== '') {
          // /api/v1/namespaces/{ns}[/status|/finalize] is the namespace itself, in its own namespace;
          // /api/v1/namespaces/{ns}/{other} is a collection of {other} in {ns}.
          expected = ['', 'status', 'finalize'].includes(shape.subresource)
            ? { ...expected, namespace: shape.name }
            : { resource: shape.subresource, namespace: shape.name, name: '', subresource: '' };
        }
        expect(request).toMatchObject({ kind: 'resource', apiGroup: shape.group, path: pathOf(shape), ...expected });
      }),
      RUNS,
    );
  });

  it('the order of unrelated query parameters changes nothing but the forwarded order', () => {
    fc.assert(
      fc.property(shapeArb, unrelatedParamArb, fc.infiniteStream(fc.nat()), (shape, params, stream) => {
        const request = tryParse(shape);
        fc.pre(request !== undefined);
        const entries: [string, string[]][] = [...params];
        if (shape.watch !== undefined) entries.push(['watch', [shape.watch]]);
        const reordered = [...entries];
        const random = stream[Symbol.iterator]();
        for (let i = reordered.length - 1; i > 0; i--) {
          const j = random.next().value! % (i + 1);
          [reordered[i], reordered[j]] = [reordered[j]!, reordered[i]!];
        }
        const a = parseKubeRequest(shape.method, pathOf(shape), Object.fromEntries(entries));
        const b = parseKubeRequest(shape.method, pathOf(shape), Object.fromEntries(reordered));
        expect(semantic(a)).toEqual(semantic(request!));
        expect(semantic(b)).toEqual(semantic(request!));
        expect(new URLSearchParams(a.query).size).toBe(new URLSearchParams(b.query).size);
      }),
      RUNS,
    );
  });

  it('equivalent watch spellings give the same verb', () => {
    const collection = shapeArb.filter((shape) => shape.name === '' && (shape.method === 'GET' || shape.method === 'HEAD'));
    fc.assert(
      fc.property(collection, fc.constantFrom(...truthyWatch), fc.constantFrom(...falsyWatch), (shape, yes, no) => {
        const path = pathOf(shape);
        expect(parseKubeRequest(shape.method, path, { watch: [yes] }).verb).toBe('watch');
        expect(parseKubeRequest(shape.method, path, { watch: ['true'] }).verb).toBe('watch');
        expect(parseKubeRequest(shape.method, path, { watch: [no] }).verb).toBe('list');
        expect(parseKubeRequest(shape.method, path, {}).verb).toBe('list');
      }),
      RUNS,
    );
  });

  it('the forwarded query decodes to exactly what was checked', () => {
    fc.assert(
      fc.property(shapeArb, unrelatedParamArb, (shape, params) => {
        let request: KubeRequest;
        try {
          request = parseKubeRequest(shape.method, pathOf(shape), Object.fromEntries(params));
        } catch {
          return fc.pre(false);
        }
        const decoded: Record<string, string[]> = {};
        for (const [key, value] of new URLSearchParams(request.query)) (decoded[key] ??= []).push(value);
        expect(decoded).toEqual(Object.fromEntries(params));
        expect(parseKubeRequest(shape.method, pathOf(shape), decoded).query).toBe(request.query);
      }),
      RUNS,
    );
  });

  const loneSurrogates = fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff');
  const anyChar = fc.oneof(
    { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    { weight: 3, arbitrary: fc.constantFrom('/', '.', '%', '\\', '?', '#', ':', '@', '~', '\u0000') },
    { weight: 1, arbitrary: loneSurrogates },
  );
  const wildString = fc.string({ unit: anyChar, maxLength: 60 });
  const wildPath = fc.oneof(
    wildString,
    wildString.map((rest) => `/${rest}`),
    fc.tuple(fc.constantFrom('/api/v1/', '/apis/apps/v1/', '/api/v1/namespaces/prod/', '/api/v1/watch/'), wildString).map(([prefix, rest]) => prefix + rest),
    fc
      .array(fc.constantFrom('api', 'apis', 'v1', 'namespaces', 'prod', 'pods', 'watch', 'proxy', 'exec', 'status', 'x', '..', '.', ''), {
        maxLength: 10,
      })
      .map((segments) => `/${segments.join('/')}`),
  );
  const wildQuery = fc.oneof(
    fc.dictionary(fc.oneof(wildString, fc.constantFrom('watch', '__proto__', 'constructor')), fc.array(wildString, { maxLength: 3 }), {
      maxKeys: 5,
    }),
    fc.anything(),
  );
  const wildMethod = fc.oneof(fc.constantFrom(...methods, 'OPTIONS', 'constructor', 'toString'), wildString);

  it('never throws anything but an AirlockError (400 or 405)', () => {
    fc.assert(
      fc.property(wildMethod, wildPath, wildQuery, (method, path, query) => {
        try {
          const request = parseKubeRequest(method, path, query as Record<string, string[]>);
          expect(request.path).toBe(path);
          expect(path.startsWith('/')).toBe(true);
          expect(path).not.toMatch(/%|\\|\/\/|\/\.\.?(\/|$)|[^\x20-\x7e]/);
        } catch (error) {
          expect(error).toBeInstanceOf(AirlockError);
          expect([400, 405]).toContain((error as AirlockError).status);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
