// What a request does, as the API server will carry it out. A request is checked
// as every verb the API server authorizes it as, and as each effect its verb does
// not say (an eviction deletes, a pod spec reads a Secret, server-side apply
// creates). The policy decides each of these checks; see evaluateRequest.
import type { parse as parseYaml } from 'yaml';
import type { KubeRequest, KubeVerb } from './kube-request.ts';
import { AirlockError } from './status.ts';
import { errorText } from './errors.ts';

export interface RequestCheck {
  /** The request as the policy sees it: the request itself, or one derived from it. */
  request: KubeRequest;
  /** Why this is checked, for people: "server-side apply creates the object when it does not exist". */
  why: string;
  /**
   * Rule entries (resources such as 'pods/eviction', or verbs such as 'deletecollection') that,
   * named by the rule that allows the request itself, also cover this check when no rule allows
   * it on its own: `allow create pods/eviction` is a deliberate grant of evictions.
   */
  coveredBy?: string[];
}

/** A request the API server turns into a credential or wider rights. Only a rule that names `entry` can allow it. */
export interface Escalation {
  /** What a rule must name in `resources`, e.g. 'serviceaccounts/token'. */
  entry: string;
  why: string;
}

export interface RequestBody {
  contentType: string | undefined;
  body: Buffer;
  /**
   * The YAML parser (the `yaml` package's parse), needed for a body sent as YAML (sentAsYaml). The
   * caller passes it: the gateway loads it on the first such body (proxy/lazy.ts), since most are JSON.
   */
  parseYaml?: typeof parseYaml;
}

const WRITE_VERBS = new Set<KubeVerb>(['create', 'update', 'patch']);
const READ_VERBS = new Set<KubeVerb>(['get', 'list', 'watch']);

/**
 * Resources whose registry allows create-on-update (AllowCreateOnUpdate() true in
 * kube-apiserver 1.33): a PUT to a name that does not exist creates it, and the API
 * server then authorizes it as create too. Custom resources never do.
 */
const CREATE_ON_UPDATE: Record<string, readonly string[]> = {
  '': ['endpoints', 'events', 'limitranges', 'services'],
  'events.k8s.io': ['events'],
  'coordination.k8s.io': ['leases', 'leasecandidates'],
  'node.k8s.io': ['runtimeclasses'],
  'rbac.authorization.k8s.io': ['roles', 'rolebindings', 'clusterroles', 'clusterrolebindings'],
};

const RBAC_GROUP = 'rbac.authorization.k8s.io';
const WIDENS_RIGHTS = 'writes RBAC, which widens what some identity may do';

/**
 * Requests that yield a credential the cluster accepts, or widen permissions. A broad
 * rule (no resources, '*', 'x/*', '*'/'token') never allows these; see CONTRACT.md.
 */
export function escalationOf(request: KubeRequest): Escalation | undefined {
  if (request.kind !== 'resource') return undefined;
  const { apiGroup: group, resource, subresource, verb } = request;
  const entry = subresource ? `${resource}/${subresource}` : resource;
  if (group === '') {
    if (resource === 'serviceaccounts' && subresource === 'token') return { entry, why: 'mints a ServiceAccount token the cluster accepts' };
    if (resource === 'secrets' && READ_VERBS.has(verb)) return { entry: 'secrets', why: 'reads Secrets, which hold credentials' };
    if (resource === 'nodes' && subresource === 'proxy') return { entry, why: "reaches the kubelet's API, which runs commands in any pod on the node" };
    if (resource === 'pods' && subresource === 'ephemeralcontainers') return { entry, why: "runs a new container inside a running pod, with the pod's service account" };
    return undefined;
  }
  if (!WRITE_VERBS.has(verb)) return undefined;
  if (group === RBAC_GROUP && ['roles', 'rolebindings', 'clusterroles', 'clusterrolebindings'].includes(resource)) return { entry, why: WIDENS_RIGHTS };
  if (group === 'certificates.k8s.io' && resource === 'certificatesigningrequests') return { entry, why: 'asks the cluster to sign a client certificate' };
  if (group === 'admissionregistration.k8s.io') return { entry, why: 'installs admission webhooks or policies, which see and rewrite every request' };
  if (group === 'apiregistration.k8s.io' && resource === 'apiservices') return { entry, why: 'sends a whole API group, with its callers, to a service of its choosing' };
  return undefined;
}

/** Example requests of every escalation class, for policy warnings and `airlock verify`. */
export function escalationSamples(namespace: string): KubeRequest[] {
  const at = (verb: KubeVerb, apiGroup: string, resource: string, subresource = '', namespaced = true, name = 'example'): KubeRequest => ({
    kind: 'resource',
    verb,
    apiGroup,
    apiVersion: 'v1',
    resource,
    subresource,
    namespace: namespaced ? namespace : '',
    name,
    path: '',
    query: '',
  });
  return [
    at('create', '', 'serviceaccounts', 'token', true, 'default'),
    at('get', '', 'secrets'),
    at('list', '', 'secrets', '', true, ''),
    at('get', '', 'nodes', 'proxy', false),
    at('patch', '', 'pods', 'ephemeralcontainers'),
    at('create', RBAC_GROUP, 'rolebindings', '', true, ''),
    at('create', RBAC_GROUP, 'roles', '', true, ''),
    at('create', RBAC_GROUP, 'clusterrolebindings', '', false, ''),
    at('update', RBAC_GROUP, 'clusterroles', '', false),
    at('create', 'certificates.k8s.io', 'certificatesigningrequests', '', false, ''),
    at('update', 'certificates.k8s.io', 'certificatesigningrequests', 'approval', false),
    at('create', 'admissionregistration.k8s.io', 'mutatingwebhookconfigurations', '', false, ''),
    at('create', 'admissionregistration.k8s.io', 'validatingwebhookconfigurations', '', false, ''),
    at('create', 'apiregistration.k8s.io', 'apiservices', '', false, ''),
  ];
}

/** Workloads: their bodies hold pod specs, whose references the kubelet resolves. */
const WORKLOADS = new Set(['pods', 'podtemplates', 'replicationcontrollers', 'deployments', 'statefulsets', 'daemonsets', 'replicasets', 'jobs', 'cronjobs']);

/** Custom resources (Argo, Knative, ...) often embed pod templates: their bodies are read too. */
function isCustomGroup(group: string): boolean {
  return group.includes('.') && !group.endsWith('.k8s.io') && group !== 'apps' && group !== 'batch';
}

function derived(request: KubeRequest, change: Partial<KubeRequest>): KubeRequest {
  return { ...request, ...change };
}

/** Every check the request needs: the request itself first, then what the API server also authorizes, then its effects. */
export function checksOf(request: KubeRequest, body: RequestBody): RequestCheck[] {
  const checks: RequestCheck[] = [{ request, why: '' }];
  if (request.kind !== 'resource') return checks;
  const { verb, resource, subresource, apiGroup, name } = request;
  const contentType = mediaTypeOf(body.contentType);
  const apply = verb === 'patch' && contentType.startsWith('application/apply-patch');

  // The API server authorizes these as create too: each verb must be allowed.
  if (apply && subresource === '') {
    checks.push({ request: derived(request, { verb: 'create' }), why: 'server-side apply creates the object when it does not exist' });
  }
  if (verb === 'update' && subresource === '' && name !== '' && CREATE_ON_UPDATE[apiGroup]?.includes(resource)) {
    checks.push({ request: derived(request, { verb: 'create' }), why: `a PUT creates ${resource} that do not exist` });
  }

  // Effects the verb does not say.
  if (resource === 'pods' && subresource === 'eviction' && verb === 'create') {
    checks.push({ request: derived(request, { verb: 'delete', subresource: '' }), why: 'an eviction deletes the pod', coveredBy: ['pods/eviction', '*/eviction'] });
  } else if (resource === 'pods' && subresource === 'binding') {
    checks.push({ request: derived(request, { verb: 'update', subresource: '' }), why: 'a binding assigns the pod to a node', coveredBy: ['pods/binding', '*/binding'] });
  } else if (resource === 'pods' && subresource === 'ephemeralcontainers') {
    checks.push({ request: derived(request, { verb: 'exec', subresource: 'exec' }), why: 'an ephemeral container runs commands inside the pod', coveredBy: ['pods/ephemeralcontainers'] });
  } else if (subresource !== '' && WRITE_VERBS.has(verb) && resource !== 'serviceaccounts') {
    // status, scale, finalize, approval, resize, ...: a write to a subresource changes the object.
    const parentVerb = verb === 'create' ? 'update' : verb;
    checks.push({
      request: derived(request, { verb: parentVerb, subresource: '' }),
      why: `writing ${resource}/${subresource} changes the ${resource} object`,
      coveredBy: [`${resource}/${subresource}`, `*/${subresource}`],
    });
  }
  if (verb === 'deletecollection') {
    checks.push({ request: derived(request, { verb: 'delete' }), why: 'a deletecollection deletes every object it matches', coveredBy: ['deletecollection'] });
  }
  if (verb === 'delete' && apiGroup === '' && resource === 'namespaces' && subresource === '' && name !== '') {
    checks.push({
      request: derived(request, { verb: 'deletecollection', apiGroup: '*', resource: '*', namespace: name, name: '' }),
      why: `deleting namespace ${name} deletes every object in it`,
      coveredBy: ['namespaces'],
    });
  }

  if (WRITE_VERBS.has(verb) && body.body.length > 0) {
    const readsBody = (subresource === '' && (WORKLOADS.has(resource) || isCustomGroup(apiGroup))) || (resource === 'pods' && subresource === 'ephemeralcontainers');
    const secretBody = apiGroup === '' && resource === 'secrets' && subresource === '';
    if (readsBody || secretBody) {
      const document = readBody(request, body, contentType);
      if (readsBody) checks.push(...podSpecChecks(request, document, contentType));
      if (secretBody) checks.push(...tokenSecretChecks(request, document));
    }
  }
  return checks;
}

const JSON_TYPES = /^application\/([a-z.-]+\+)?json$/;
const YAML_TYPES = new Set(['application/yaml', 'application/apply-patch+yaml', 'application/x-yaml', 'text/yaml']);

const mediaTypeOf = (contentType: string | undefined) => (contentType ?? '').split(';')[0]!.trim().toLowerCase();

/** Whether a body with this Content-Type is read as YAML (then checksOf needs `parseYaml`). */
export function sentAsYaml(contentType: string | undefined): boolean {
  return YAML_TYPES.has(mediaTypeOf(contentType));
}

/** The body as the API server will decode it, or a 415 when Airlock cannot read what it must check. */
function readBody(request: KubeRequest, { body, parseYaml }: RequestBody, contentType: string): unknown {
  const text = body.toString('utf8');
  if (YAML_TYPES.has(contentType) && !parseYaml) throw new Error('a YAML body was checked without the YAML parser');
  try {
    if (JSON_TYPES.test(contentType)) return JSON.parse(text);
    if (YAML_TYPES.has(contentType)) return parseYaml!(text, { maxAliasCount: 0, uniqueKeys: true, merge: false });
  } catch (error) {
    const detail = errorText(error, { name: false }).split('\n')[0];
    throw new AirlockError(400, 'unreadable_body', `the ${request.resource} body could not be read as ${contentType} (${detail}); Airlock checks what a workload references, so it must read the body`);
  }
  throw new AirlockError(
    415,
    'unreadable_body',
    `a ${request.resource} body sent as ${contentType || 'no Content-Type'} cannot be checked for the Secrets and tokens it references; send JSON or YAML (kubectl and client-go do with --output json / ContentType application/json)`,
  );
}

export interface Reference {
  /** '' when the body does not say which (a patch touching a reference): checked as any Secret. */
  name: string;
  where: string;
}

const SECRET_KEY = /secret/i;

/**
 * Walks any body (object, patch, JSON patch ops) for the Secrets it references and the service
 * account tokens its pod specs mount. `fullObject` is false for a patch that only says what changes.
 * The one walker: the policy checks (below) and the approver's preview (core/preview.ts) both read it.
 */
export function bodyReferences(document: unknown, fullObject: boolean): { secrets: Reference[]; tokens: Reference[] } {
  const secrets: Reference[] = [];
  const tokens: Reference[] = [];
  const visit = (value: unknown, path: string): void => {
    if (Array.isArray(value)) {
      value.forEach((item, index) => visit(item, `${path}[${index}]`));
      return;
    }
    if (typeof value !== 'object' || value === null) return;
    const object = value as Record<string, unknown>;
    // A JSON patch operation: its path (or from) says what it touches.
    if (typeof object.op === 'string' && (typeof object.path === 'string' || typeof object.from === 'string')) {
      for (const pointer of [object.path, object.from]) {
        if (typeof pointer !== 'string') continue;
        if (SECRET_KEY.test(pointer)) secrets.push({ name: referencedName(object.value), where: pointer });
        if (/serviceAccount|automountServiceAccountToken/.test(pointer)) tokens.push({ name: typeof object.value === 'string' ? object.value : '', where: pointer });
      }
    }
    // A pod spec (or, in a patch, any part of one that touches its service account): the kubelet mounts
    // the service account's token unless told not to.
    if (Array.isArray(object.containers) || 'automountServiceAccountToken' in object || 'serviceAccountName' in object || 'serviceAccount' in object) {
      const account = typeof object.serviceAccountName === 'string' ? object.serviceAccountName : typeof object.serviceAccount === 'string' ? object.serviceAccount : 'default';
      const automount = object.automountServiceAccountToken;
      // A patch that sets it to anything but false (null removes a false) or changes the account mounts a token too.
      if (fullObject ? automount !== false : ('automountServiceAccountToken' in object && automount !== false) || 'serviceAccountName' in object || 'serviceAccount' in object) {
        tokens.push({ name: account, where: `${path}.automountServiceAccountToken` });
      }
    }
    for (const [key, child] of Object.entries(object)) {
      const at = path ? `${path}.${key}` : key;
      if (key === 'serviceAccountToken') tokens.push({ name: '', where: at });
      if (SECRET_KEY.test(key)) {
        if (typeof child === 'string') secrets.push({ name: /name$/i.test(key) ? child : '', where: at });
        else if (Array.isArray(child)) child.forEach((item, index) => secrets.push({ name: referencedName(item), where: `${at}[${index}]` }));
        else secrets.push({ name: referencedName(child), where: at });
      }
      visit(child, at);
    }
  };
  visit(document, '');
  return { secrets, tokens };
}

function podSpecChecks(request: KubeRequest, document: unknown, contentType: string): RequestCheck[] {
  const fullObject = request.verb !== 'patch' || contentType.startsWith('application/apply-patch');
  const { secrets, tokens } = bodyReferences(document, fullObject);
  const checks: RequestCheck[] = [];
  const seen = new Set<string>();
  for (const reference of secrets) {
    const key = `s:${reference.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const which = reference.name ? `Secret "${reference.name}"` : 'a Secret';
    checks.push({
      request: derived(request, { verb: 'get', apiGroup: '', resource: 'secrets', subresource: '', name: reference.name }),
      why: `the ${request.resource} body reads ${which} (${reference.where}), and its value reaches the pod`,
    });
  }
  for (const reference of tokens) {
    const key = `t:${reference.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const account = reference.name ? `service account "${reference.name}"` : 'a service account';
    checks.push({
      request: derived(request, { verb: 'create', apiGroup: '', resource: 'serviceaccounts', subresource: 'token', name: reference.name }),
      why: `the pod would mount a token of ${account} (${reference.where}), a credential the cluster accepts; set automountServiceAccountToken: false in the pod spec`,
    });
  }
  return checks;
}

function referencedName(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return '';
  const object = value as Record<string, unknown>;
  for (const field of ['name', 'secretName']) {
    if (typeof object[field] === 'string') return object[field];
  }
  return '';
}

/** A Secret of type service-account-token is filled with a token by the cluster. */
function tokenSecretChecks(request: KubeRequest, document: unknown): RequestCheck[] {
  if (typeof document !== 'object' || document === null) return [];
  const secret = document as { type?: unknown; metadata?: { annotations?: Record<string, unknown> } };
  if (secret.type !== 'kubernetes.io/service-account-token') return [];
  const account = secret.metadata?.annotations?.['kubernetes.io/service-account.name'];
  const name = typeof account === 'string' ? account : '';
  return [
    {
      request: derived(request, { verb: 'create', resource: 'serviceaccounts', subresource: 'token', name }),
      why: `a Secret of type kubernetes.io/service-account-token is filled with a token of service account "${name}"`,
    },
  ];
}
