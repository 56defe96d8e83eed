// One Kubernetes API request, parsed the way the API server's RequestInfoFactory
// reads it, but stricter: anything two readers could disagree on is refused,
// because the policy must check exactly what is forwarded.
import type { RequestRecord } from './model.ts';
import { AirlockError } from './status.ts';

export type KubeVerb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection' | 'exec' | 'attach' | 'portforward' | 'proxy';

export const KUBE_VERBS: readonly KubeVerb[] = Object.freeze(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', 'exec', 'attach', 'portforward', 'proxy'] as const);

export interface KubeRequest {
  kind: 'resource' | 'discovery' | 'nonresource';
  /** For discovery and non-resource requests: 'get' for GET/HEAD. */
  verb: KubeVerb;
  /** '' for the core group. */
  apiGroup: string;
  apiVersion: string;
  /** e.g. 'pods'; '' when not a resource request. */
  resource: string;
  /** e.g. 'log', 'exec', 'status'; '' when none. */
  subresource: string;
  /** '' when cluster-scoped or across all namespaces. */
  namespace: string;
  /** '' for collections. */
  name: string;
  /** The exact path to forward upstream. */
  path: string;
  /** The canonical query to forward, without '?'; '' when none. */
  query: string;
  /** exec only: the command it runs in the container (the query's `command` values, in order). Rules with `commands` read it. */
  command?: readonly string[];
}

// The limits of what is forwarded. Records and transcripts hold path, query and
// forwarded headers whole, so these are also what a record holds: one constant
// each, used by the parser, the gateway and the record (a DynamoDB item stays far
// below 400 KB: 4 KiB + 8 KiB + 5 headers x 1 KiB).
export const MAX_PATH_LENGTH = 4096;
export const MAX_QUERY_PARAMS = 100;
export const MAX_QUERY_LENGTH = 8192;
/** Longest value of a header that is forwarded (user-agent, accept, ...); longer is refused (431). */
export const MAX_HEADER_VALUE_LENGTH = 1024;

const SEGMENT = /^[A-Za-z0-9._:~@+=-]+$/;
// Printable ASCII only; '%' and '\' are handled separately for clearer messages.
const NOT_PRINTABLE_ASCII = /[^\x20-\x7e]/;
// C0, DEL and C1 controls.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const METHOD_VERBS = new Map<string, KubeVerb>([
  ['GET', 'get'],
  ['HEAD', 'get'],
  ['POST', 'create'],
  ['PUT', 'update'],
  ['PATCH', 'patch'],
  ['DELETE', 'delete'],
]);

/** Subresources that open a stream to a container or endpoint; the verb is the subresource name. */
const CONNECT_SUBRESOURCES = new Set<string>(['exec', 'attach', 'portforward', 'proxy']);
/** After /namespaces/{name}, these are subresources of the namespace, not namespaced resources. */
const NAMESPACE_SUBRESOURCES = new Set<string>(['status', 'finalize']);

function show(text: string): string {
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text);
}

function invalidPath(path: string, why: string): AirlockError {
  return new AirlockError(400, 'invalid_path', `invalid request path ${show(path)}: ${why}`);
}

export function invalidQuery(why: string): AirlockError {
  return new AirlockError(400, 'invalid_query', `invalid query: ${why}`);
}

function splitPath(path: unknown): string[] {
  if (typeof path !== 'string') throw new AirlockError(400, 'invalid_path', 'invalid request path: not a string');
  if (!path.startsWith('/')) throw invalidPath(path, "it must start with '/'");
  if (path.length > MAX_PATH_LENGTH) {
    throw invalidPath(path, `it is ${path.length} characters long; the limit is ${MAX_PATH_LENGTH}`);
  }
  if (NOT_PRINTABLE_ASCII.test(path)) {
    throw invalidPath(path, 'only printable ASCII is allowed (no control characters, spaces are refused too)');
  }
  if (path.includes('%')) {
    throw invalidPath(path, "percent-encoding ('%') is not accepted; Kubernetes names never need it");
  }
  if (path.includes('\\')) throw invalidPath(path, 'backslashes are not accepted');
  if (path === '/') return [];
  const segments = path.slice(1).split('/');
  for (const segment of segments) {
    if (segment === '') throw invalidPath(path, "empty path segment ('//' or a trailing '/')");
    if (segment === '.' || segment === '..') throw invalidPath(path, "'.' and '..' segments are not accepted");
    if (!SEGMENT.test(segment)) {
      throw invalidPath(path, `segment ${show(segment)} has characters outside A-Z a-z 0-9 . _ : ~ @ + = -`);
    }
  }
  return segments;
}

function checkQueryText(text: string, what: string): void {
  if (CONTROL.test(text)) throw invalidQuery(`${what} ${show(text)} contains control characters`);
  if (!text.isWellFormed()) throw invalidQuery(`${what} ${show(text)} is not well-formed Unicode`);
}

interface CanonicalQuery {
  text: string;
  /** The watch parameter's single value, or undefined when absent. */
  watch: string | undefined;
}

function canonicalizeQuery(query: unknown): CanonicalQuery {
  // API Gateway gives null when there is no query string.
  if (query === null || query === undefined) return { text: '', watch: undefined };
  if (typeof query !== 'object' || Array.isArray(query)) throw invalidQuery('expected a map of parameter lists');
  const params = new URLSearchParams();
  let count = 0;
  let watch: string | undefined;
  for (const [key, values] of Object.entries(query)) {
    if (!Array.isArray(values)) throw invalidQuery(`parameter ${show(key)} is not a list of values`);
    if (key === '') throw invalidQuery('empty parameter name');
    checkQueryText(key, 'parameter name');
    for (const value of values as unknown[]) {
      if (typeof value !== 'string') throw invalidQuery(`parameter ${show(key)} has a non-string value`);
      checkQueryText(value, `value of ${show(key)}`);
      count += 1;
      if (count > MAX_QUERY_PARAMS) throw invalidQuery(`more than ${MAX_QUERY_PARAMS} parameters`);
      params.append(key, value);
    }
    if (key === 'watch' && values.length > 0) {
      if (values.length > 1) throw invalidQuery('more than one watch parameter; send exactly one');
      watch = values[0] as string;
    }
  }
  const text = params.toString();
  if (text.length > MAX_QUERY_LENGTH) {
    throw invalidQuery(`the encoded query is ${text.length} characters long; the limit is ${MAX_QUERY_LENGTH}`);
  }
  return { text, watch };
}

/**
 * Kubernetes' own bool decoding (Convert_Slice_string_To_bool): false only for
 * '0' or 'false' in any case; anything else, the empty string included, is true.
 * Go compares with Unicode case folding, so a non-ASCII value could fold to
 * 'false' there and not here: refuse it rather than guess.
 */
function watchIsTrue(value: string): boolean {
  if (NOT_PRINTABLE_ASCII.test(value)) throw invalidQuery(`watch=${show(value)} is not a plain ASCII value`);
  return !(value === '0' || value.toLowerCase() === 'false');
}

function isDiscovery(segments: string[]): boolean {
  const [first, second, third] = segments;
  switch (first) {
    case 'api':
      return segments.length === 1 || (segments.length === 2 && second === 'v1');
    case 'apis':
      return segments.length <= 3;
    case 'version':
      return segments.length === 1;
    case 'openapi':
      return (second === 'v2' && third === undefined) || second === 'v3';
    default:
      return false;
  }
}

/**
 * Parses one request on the /k8s/{connection} route. `path` is what follows the
 * connection; `query` the decoded multi-value query. Throws AirlockError
 * (400 invalid_path / invalid_query, 405 method_not_allowed) for anything refused.
 */
export function parseKubeRequest(method: string, path: string, query: Record<string, string[]>): KubeRequest {
  const segments = splitPath(path);
  const methodVerb = typeof method === 'string' ? METHOD_VERBS.get(method) : undefined;
  if (methodVerb === undefined) {
    throw new AirlockError(405, 'method_not_allowed', `method ${show(String(method))} is not allowed; use GET, HEAD, POST, PUT, PATCH or DELETE`);
  }
  const readOnly = method === 'GET' || method === 'HEAD';
  const canonical = canonicalizeQuery(query);
  const request: KubeRequest = {
    kind: 'nonresource',
    verb: methodVerb,
    apiGroup: '',
    apiVersion: '',
    resource: '',
    subresource: '',
    namespace: '',
    name: '',
    path,
    query: canonical.text,
  };

  if (isDiscovery(segments)) {
    if (!readOnly) {
      throw new AirlockError(405, 'method_not_allowed', `${show(path)} is API discovery; only GET and HEAD are allowed`);
    }
    request.kind = 'discovery';
    if (segments[0] === 'api') request.apiVersion = segments[1] ?? '';
    if (segments[0] === 'apis') {
      request.apiGroup = segments[1] ?? '';
      request.apiVersion = segments[2] ?? '';
    }
    return request;
  }

  let parts: string[];
  if (segments[0] === 'api' && segments.length >= 3) {
    request.apiVersion = segments[1]!;
    parts = segments.slice(2);
  } else if (segments[0] === 'apis' && segments.length >= 4) {
    request.apiGroup = segments[1]!;
    request.apiVersion = segments[2]!;
    parts = segments.slice(3);
  } else {
    return request; // non-resource: /healthz, /metrics, /logs/..., /api/v2, ...
  }
  request.kind = 'resource';

  // Legacy /watch/ prefix: a watch of the collection or object that follows.
  let legacyWatch = false;
  if (parts[0] === 'watch') {
    legacyWatch = true;
    parts = parts.slice(1);
    if (parts.length === 0) throw invalidPath(path, 'the /watch/ prefix must be followed by a resource');
    if (!readOnly) {
      throw new AirlockError(405, 'method_not_allowed', `${show(path)} is a watch; only GET and HEAD are allowed`);
    }
  }
  // Kubernetes reads a leading 'proxy' as the long-removed proxy verb; refuse it
  // rather than read it differently.
  if (parts[0] === 'proxy') {
    throw invalidPath(path, 'the legacy /proxy/ prefix is not supported; use the proxy subresource (.../{name}/proxy)');
  }

  // /namespaces/{ns}/{resource}/... is namespaced; /namespaces/{ns}[/status|/finalize]
  // is the namespace object itself, whose namespace is its own name (as in Kubernetes).
  if (parts[0] === 'namespaces' && parts.length > 1) {
    request.namespace = parts[1]!;
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
  }
  const [resource, name = '', subresource = '', ...rest] = parts;
  // Groups, versions, resources, subresources and namespaces are lowercase in Kubernetes. An
  // uppercase one would slip past a rule that names the lowercase form while meaning nothing to
  // the API server: refuse it rather than let the two read it differently. (Object names may
  // have uppercase letters in some resources, so names are left alone.)
  for (const [what, value] of [
    ['API group', request.apiGroup],
    ['API version', request.apiVersion],
    ['resource', resource!],
    ['subresource', subresource],
    ['namespace', request.namespace],
  ] as const) {
    if (/[A-Z]/.test(value)) throw invalidPath(path, `${what} ${show(value)} must be lowercase`);
  }
  request.resource = resource!;
  request.name = name;
  request.subresource = subresource;
  if (rest.length > 0 && subresource !== 'proxy') {
    throw invalidPath(path, `unexpected segments after subresource ${show(subresource)}`);
  }
  if (legacyWatch && subresource !== '') throw invalidPath(path, 'a /watch/ path cannot name a subresource');

  if (CONNECT_SUBRESOURCES.has(subresource)) {
    request.verb = subresource as KubeVerb;
    // The API server runs the `command` values in this order (canonicalizeQuery checked them).
    if (subresource === 'exec') request.command = Object.freeze([...((query as Record<string, string[]>).command ?? [])]);
  } else if (legacyWatch) {
    request.verb = 'watch';
  } else if (methodVerb === 'get') {
    const watch = canonical.watch !== undefined && watchIsTrue(canonical.watch);
    if (name === '') {
      request.verb = watch ? 'watch' : 'list';
    } else if (watch) {
      // The API server ignores watch on a single object and returns it; checking
      // it as a watch would check something other than what happens.
      throw invalidQuery('watch on a single object is not a Kubernetes watch; watch the collection with fieldSelector=metadata.name=NAME');
    } else {
      request.verb = 'get';
    }
  } else if (methodVerb === 'delete' && name === '') {
    request.verb = 'deletecollection';
  }
  return request;
}

/** The request in words, for refusals and approvers: "list pods in namespace prod", "get /healthz". */
export function describeKubeRequest(kube: KubeRequest): string {
  if (kube.kind !== 'resource') return `${kube.verb} ${kube.path}`;
  const command = kube.command ? ` running \`${commandLine(kube.command)}\`` : '';
  return `${kube.verb} ${kubeTarget(kube)}${kube.namespace ? ` in namespace ${kube.namespace}` : ' (cluster-wide)'}${command}`;
}

/** A recorded request in words, for audit pages and the policy review: "list pods in prod". */
export function describeRequest(record: Pick<RequestRecord, 'verb' | 'apiGroup' | 'resource' | 'subresource' | 'namespace' | 'name' | 'path'>): string {
  if (!record.resource) return `${record.verb} ${record.path}`;
  const what = `${record.resource}${record.subresource ? `/${record.subresource}` : ''}${record.apiGroup ? `.${record.apiGroup}` : ''}`;
  return `${record.verb} ${what}${record.name ? ` ${record.name}` : ''}${record.namespace ? ` in ${record.namespace}` : ''}`;
}

/** An exec's command as one line a person can read (and a POSIX shell would split back the same): words with anything but plain characters are single-quoted. */
export function commandLine(command: readonly string[]): string {
  if (command.length === 0) return '(no command)';
  return command.map((word) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** What a resource request names: `pods/log/web-0`, `deployments/web.apps`. */
export function kubeTarget(kube: KubeRequest): string {
  const resource = kube.subresource ? `${kube.resource}/${kube.subresource}` : kube.resource;
  const target = kube.name ? `${resource}/${kube.name}` : resource;
  return `${target}${kube.apiGroup ? `.${kube.apiGroup}` : ''}`;
}
