// `kubectl auth can-i` and `kubectl auth whoami` ask the API server about the
// caller. Through Airlock the caller is the agent, and what it may do is the
// policy intersected with what the connection's identity may do: these
// answers say so, instead of the API server describing the connection's
// identity (which the agent never holds).
import { KUBE_VERBS, type KubeRequest, type KubeVerb } from './kube-request.ts';
import { envelopedObject, messageFields as fields } from './protobuf.ts';
import { evaluatePolicy, type Policy, type PolicyDecision } from './policy.ts';
import { AirlockError } from './status.ts';

export type SelfReview = 'access' | 'rules' | 'subject';

/** Which self-review a request is (a create of one of the three review kinds), if any. */
export function selfReviewOf(kube: KubeRequest): SelfReview | undefined {
  if (kube.kind !== 'resource' || kube.verb !== 'create' || kube.subresource !== '' || kube.name !== '') return undefined;
  if (kube.apiGroup === 'authorization.k8s.io' && kube.namespace === '') {
    if (kube.resource === 'selfsubjectaccessreviews') return 'access';
    if (kube.resource === 'selfsubjectrulesreviews') return 'rules';
  }
  if (kube.apiGroup === 'authentication.k8s.io' && kube.resource === 'selfsubjectreviews' && kube.namespace === '') return 'subject';
  return undefined;
}

export interface AgentIdentity {
  agentName: string;
  agentId: string;
  connection: string;
  grantId: string;
  windowExpiresAt: number;
}

/** The username the agent is known by in Airlock's answers (never the connection's identity). */
export function agentUsername(agentName: string): string {
  return `airlock:agent:${agentName}`;
}

/** `kubectl auth whoami`: the agent, its window and connection — answered by Airlock, never forwarded. */
export function subjectReview(identity: AgentIdentity, apiVersion: string): Record<string, unknown> {
  return {
    kind: 'SelfSubjectReview',
    apiVersion: `authentication.k8s.io/${apiVersion}`,
    metadata: { creationTimestamp: null },
    status: {
      userInfo: {
        username: agentUsername(identity.agentName),
        uid: identity.agentId,
        groups: ['airlock:agents'],
        extra: {
          'airlock.dev/connection': [identity.connection],
          'airlock.dev/window': [identity.grantId],
          'airlock.dev/window-expires': [new Date(identity.windowExpiresAt).toISOString()],
        },
      },
    },
  };
}

interface ResourceAttributes {
  namespace?: string;
  verb?: string;
  group?: string;
  resource?: string;
  subresource?: string;
  name?: string;
}

interface AccessReviewBody {
  apiVersion?: string;
  spec?: { resourceAttributes?: ResourceAttributes; nonResourceAttributes?: { path?: string; verb?: string } };
}

export type AccessAnswer =
  /** The policy allows it: the cluster's own answer (forwarded) is the answer. */
  | { forward: true; decision: PolicyDecision }
  /** The policy refuses or holds it: Airlock answers "no", with why. */
  | { forward: false; decision: PolicyDecision; review: Record<string, unknown> };

const DISCOVERY_PATH = /^\/(api|apis|version|openapi)(\/|$)/;

const PROTOBUF = 'application/vnd.kubernetes.protobuf';

/**
 * The review as sent: JSON, or the protobuf kubectl and client-go send for built-in types (read with
 * @bufbuild/protobuf's wire reader, by the field numbers of k8s.io/api authorization/v1 generated.proto).
 */
function readAccessReview(body: Buffer, contentType: string | undefined): AccessReviewBody {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  try {
    if (type === PROTOBUF) return accessReviewFromProtobuf(body);
    return JSON.parse(body.toString('utf8')) as AccessReviewBody;
  } catch {
    throw new AirlockError(400, 'invalid_body', `a SelfSubjectAccessReview could not be read as ${type || 'JSON'}`);
  }
}

/** The spec message of a review sent as protobuf (envelope -> runtime.Unknown.raw (2) -> the review's spec (2)). */
function protobufSpec(body: Buffer): Uint8Array | undefined {
  return fields(envelopedObject(body)).get(2);
}

function text(message: Uint8Array, number: number): string | undefined {
  const value = fields(message).get(number);
  return value === undefined ? undefined : new TextDecoder('utf-8', { fatal: true }).decode(value);
}

function accessReviewFromProtobuf(body: Buffer): AccessReviewBody {
  const spec = protobufSpec(body);
  if (!spec) return {};
  const specFields = fields(spec);
  const resource = specFields.get(1);
  const nonResource = specFields.get(2);
  return {
    apiVersion: 'authorization.k8s.io/v1',
    spec: {
      ...(resource
        ? {
            resourceAttributes: {
              namespace: text(resource, 1),
              verb: text(resource, 2),
              group: text(resource, 3),
              resource: text(resource, 5),
              subresource: text(resource, 6),
              name: text(resource, 7),
            },
          }
        : {}),
      ...(nonResource ? { nonResourceAttributes: { path: text(nonResource, 1), verb: text(nonResource, 2) } } : {}),
    },
  };
}

/** The policy's answer to `kubectl auth can-i VERB RESOURCE [NAME] -n NS`. */
export function answerAccessReview(policy: Policy, body: Buffer, contentType?: string): AccessAnswer {
  const review = readAccessReview(body, contentType);
  const spec = review?.spec ?? {};
  const no = (decision: PolicyDecision, reason: string): AccessAnswer => ({
    forward: false,
    decision,
    review: {
      kind: 'SelfSubjectAccessReview',
      apiVersion: review.apiVersion ?? 'authorization.k8s.io/v1',
      metadata: { creationTimestamp: null },
      spec,
      status: { allowed: false, denied: decision.effect === 'deny', reason: `airlock: ${reason}` },
    },
  });
  if (spec.nonResourceAttributes) {
    const { path = '', verb = '' } = spec.nonResourceAttributes;
    const decision: PolicyDecision = { effect: 'deny', ruleIndex: -1, reason: `non-resource URL ${path} is not reachable through Airlock` };
    if (verb === 'get' && DISCOVERY_PATH.test(path)) return { forward: true, decision: { effect: 'allow', ruleIndex: -1, reason: 'discovery (read-only API metadata)' } };
    return no(decision, decision.reason);
  }
  const attributes = spec.resourceAttributes;
  if (!attributes || typeof attributes.resource !== 'string' || typeof attributes.verb !== 'string') {
    throw new AirlockError(400, 'invalid_body', 'a SelfSubjectAccessReview needs spec.resourceAttributes with verb and resource (or spec.nonResourceAttributes)');
  }
  const verb = attributes.verb;
  if (!(KUBE_VERBS as readonly string[]).includes(verb)) {
    const decision: PolicyDecision = { effect: 'deny', ruleIndex: -1, reason: `verb "${verb}" is never passed through Airlock` };
    return no(decision, decision.reason);
  }
  const request: KubeRequest = {
    kind: 'resource',
    verb: verb as KubeVerb,
    apiGroup: attributes.group ?? '',
    apiVersion: '',
    resource: attributes.resource,
    subresource: attributes.subresource ?? '',
    namespace: attributes.namespace ?? '',
    name: attributes.name ?? '',
    path: '',
    query: '',
  };
  const decision = evaluatePolicy(policy, request);
  if (decision.effect === 'allow') return { forward: true, decision };
  if (decision.effect === 'approve') return no(decision, `needs a one-time human approval of each such request (${decision.reason})`);
  return no(decision, `refused by policy: ${decision.reason}`);
}

/** The namespace a rules review asks about (`kubectl auth can-i --list -n NS`), JSON or protobuf (SelfSubjectRulesReviewSpec.namespace = 1). */
export function rulesReviewNamespace(body: Buffer, contentType: string | undefined): string {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  try {
    if (type === PROTOBUF) {
      const spec = protobufSpec(body);
      return (spec && text(spec, 1)) ?? '';
    }
    return (JSON.parse(body.toString('utf8')) as RulesReview | null)?.spec?.namespace ?? '';
  } catch {
    throw new AirlockError(400, 'invalid_body', `a SelfSubjectRulesReview could not be read as ${type || 'JSON'}`);
  }
}

interface ResourceRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
}

interface RulesReview {
  apiVersion?: string;
  kind?: string;
  spec?: { namespace?: string };
  status?: { resourceRules?: ResourceRule[]; nonResourceRules?: { verbs: string[]; nonResourceURLs?: string[] }[]; incomplete?: boolean; evaluationError?: string };
}

/**
 * `kubectl auth can-i --list`: the cluster's rules for the connection's identity, kept only where the
 * policy allows without approval. Wildcards the policy narrows but cannot list (a rule for every
 * resource, minus denied ones) stay, and the answer says it is incomplete and why.
 */
export function filterRulesReview(policy: Policy, namespace: string, clusterAnswer: unknown): Record<string, unknown> {
  const answer = (clusterAnswer ?? {}) as RulesReview;
  const kept: ResourceRule[] = [];
  let approximate = false;
  for (const rule of answer.status?.resourceRules ?? []) {
    for (const verb of rule.verbs) {
      for (const group of rule.apiGroups ?? ['']) {
        for (const resource of rule.resources ?? ['*']) {
          for (const name of rule.resourceNames?.length ? rule.resourceNames : ['']) {
            const atoms = verb === '*' ? KUBE_VERBS.filter((each) => !['exec', 'attach', 'portforward'].includes(each)) : [verb];
            for (const atomVerb of atoms) {
              if (group === '*' || resource === '*' || resource.includes('*')) {
                // The policy's allow rules narrow a wildcard; what they leave cannot be listed exactly.
                for (const narrowed of narrowWildcard(policy, atomVerb, group, resource, namespace)) kept.push({ ...narrowed, ...(name ? { resourceNames: [name] } : {}) });
                approximate = true;
                continue;
              }
              const [base, sub = ''] = resource.split('/');
              const request: KubeRequest = { kind: 'resource', verb: atomVerb as KubeVerb, apiGroup: group, apiVersion: '', resource: base!, subresource: sub, namespace, name, path: '', query: '' };
              if (!(KUBE_VERBS as readonly string[]).includes(atomVerb)) continue;
              if (evaluatePolicy(policy, request).effect === 'allow') kept.push({ verbs: [atomVerb], apiGroups: [group], resources: [resource], ...(name ? { resourceNames: [name] } : {}) });
            }
          }
        }
      }
    }
  }
  const nonResourceRules = (answer.status?.nonResourceRules ?? [])
    .map((rule) => ({
      verbs: rule.verbs.filter((verb) => verb === 'get' || verb === '*').map(() => 'get'),
      nonResourceURLs: (rule.nonResourceURLs ?? []).filter((url) => DISCOVERY_PATH.test(url) || url === '/api' || url === '/apis'),
    }))
    .filter((rule) => rule.verbs.length > 0 && rule.nonResourceURLs.length > 0);
  const restrictions = policy.rules.map((rule, index) => ({ rule, index })).filter(({ rule }) => rule.effect !== 'allow');
  const notes = [
    ...(answer.status?.incomplete ? [answer.status.evaluationError ?? 'the cluster said its list is incomplete'] : []),
    ...(approximate
      ? [
          `airlock: rules with * are narrowed by the policy's allow rules, but its deny and approve rules (${restrictions.length}) and the credential rules still apply within them; ask \`kubectl auth can-i VERB RESOURCE\` for an exact answer`,
        ]
      : []),
  ];
  return {
    kind: 'SelfSubjectRulesReview',
    apiVersion: answer.apiVersion ?? 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec: { namespace },
    status: {
      resourceRules: kept,
      nonResourceRules,
      incomplete: notes.length > 0,
      ...(notes.length ? { evaluationError: notes.join('; ') } : {}),
    },
  };
}

/** A wildcard cluster rule intersected with each allow rule of the policy that applies in `namespace`. */
function narrowWildcard(policy: Policy, verb: string, group: string, resource: string, namespace: string): ResourceRule[] {
  const out: ResourceRule[] = [];
  for (const rule of policy.rules) {
    if (rule.effect !== 'allow') continue;
    if (rule.verbs && !rule.verbs.includes('*') && !rule.verbs.includes(verb as never)) continue;
    if (rule.namespaces && !rule.namespaces.includes('*') && !rule.namespaces.includes(namespace)) continue;
    const groups = group === '*' ? (rule.apiGroups ?? ['*']) : rule.apiGroups && !rule.apiGroups.includes('*') && !rule.apiGroups.includes(group) ? [] : [group];
    if (groups.length === 0) continue;
    const resources = resource === '*' ? (rule.resources ?? ['*']) : [resource];
    out.push({ verbs: [verb], apiGroups: groups, resources, ...(rule.names ? { resourceNames: rule.names } : {}) });
  }
  return out;
}
