// Every HTTP route, in one table: the CDK construct builds API Gateway from it
// and the local server routes with it, so both expose the same surface.

/** Which Lambda function serves a route (one per concern; the state machines' tasks run in a seventh, `workflow`). */
export type FunctionName = 'tokens' | 'access' | 'proxy' | 'admin' | 'approvals' | 'health';

/**
 * Who may call:
 * - `agent`: an agent key (HTTP Basic), checked by the function;
 * - `agent-iam`: on AWS, SigV4 verified by API Gateway (AWS_IAM), the caller's principal mapped to an agent;
 * - `admin`: the local admin key; on AWS, SigV4 verified by API Gateway (AWS_IAM);
 * - `proxy`: an Airlock token, checked by the gateway;
 * - `approver`: a signed approval link; `none`: public.
 */
export type RouteAuth = 'agent' | 'agent-iam' | 'admin' | 'proxy' | 'approver' | 'none';

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'ANY';
  /** API Gateway resource template. */
  resource: string;
  function: FunctionName;
  auth: RouteAuth;
  /** Response streaming (API Gateway responseTransferMode STREAM). */
  streaming?: boolean;
}

const AGENT_ROUTES: readonly Route[] = [
  { method: 'POST', resource: '/v1/tokens', function: 'tokens', auth: 'agent' },
  { method: 'POST', resource: '/v1/access-requests', function: 'access', auth: 'agent' },
  { method: 'GET', resource: '/v1/access-requests', function: 'access', auth: 'agent' },
  { method: 'GET', resource: '/v1/access-requests/{id}', function: 'access', auth: 'agent' },
  { method: 'POST', resource: '/v1/access-requests/{id}/end', function: 'access', auth: 'agent' },
  { method: 'GET', resource: '/v1/approvals/{id}', function: 'access', auth: 'agent' },
  { method: 'POST', resource: '/v1/plans', function: 'access', auth: 'agent' },
  { method: 'GET', resource: '/v1/plans/{id}', function: 'access', auth: 'agent' },
  { method: 'POST', resource: '/v1/plans/{id}/close', function: 'access', auth: 'agent' },
  { method: 'POST', resource: '/v1/plans/{id}/apply', function: 'access', auth: 'agent' },
  // MCP: the OAuth client-credentials token endpoint (agent key; SigV4 under /v1/iam).
  { method: 'POST', resource: '/v1/mcp/token', function: 'tokens', auth: 'agent' },
];

/** Where the Kubernetes API lives at the root of an API server (anything else there is not reachable through Airlock). */
export const KUBERNETES_ROOT_PATHS = ['/api', '/apis', '/version', '/openapi'] as const;

/** What a path with no route is told (locally and by API Gateway), so that kubectl prints what to do. */
export const KUBERNETES_HINT =
  'Airlock serves the Kubernetes API at /api, /apis, /version and /openapi (and /k8s/{connection}/...) with an Airlock token; other API server paths are not reachable through it. Use the kubeconfig from `airlock kubeconfig --connection NAME`';

/** The agent routes again under /v1/iam: the same handlers, for agents that sign with SigV4 as their IAM principal. */
export const IAM_PREFIX = '/v1/iam';

export const ROUTES: readonly Route[] = [
  { method: 'GET', resource: '/healthz', function: 'health', auth: 'none' },
  ...AGENT_ROUTES,
  ...AGENT_ROUTES.map((route) => ({ ...route, resource: route.resource.replace(/^\/v1/, IAM_PREFIX), auth: 'agent-iam' as const })),
  { method: 'GET', resource: '/approvals/{id}', function: 'approvals', auth: 'approver' },
  { method: 'POST', resource: '/approvals/{id}', function: 'approvals', auth: 'approver' },
  { method: 'POST', resource: '/v1/agents', function: 'admin', auth: 'admin' },
  { method: 'GET', resource: '/v1/agents', function: 'admin', auth: 'admin' },
  { method: 'POST', resource: '/v1/agents/{name}/disable', function: 'admin', auth: 'admin' },
  { method: 'POST', resource: '/v1/agents/{name}/enable', function: 'admin', auth: 'admin' },
  { method: 'POST', resource: '/v1/connections', function: 'admin', auth: 'admin' },
  { method: 'GET', resource: '/v1/connections', function: 'admin', auth: 'admin' },
  { method: 'GET', resource: '/v1/connections/{name}', function: 'admin', auth: 'admin' },
  { method: 'PUT', resource: '/v1/connections/{name}', function: 'admin', auth: 'admin' },
  { method: 'POST', resource: '/v1/revocations', function: 'admin', auth: 'admin' },
  { method: 'GET', resource: '/v1/audit', function: 'admin', auth: 'admin' },
  // Before /v1/audit/{id}: the first matching route wins.
  { method: 'GET', resource: '/v1/audit/export', function: 'admin', auth: 'admin' },
  { method: 'GET', resource: '/v1/audit/verify', function: 'admin', auth: 'admin' },
  { method: 'GET', resource: '/v1/audit/{id}', function: 'admin', auth: 'admin' },
  { method: 'POST', resource: '/v1/audit/repair', function: 'admin', auth: 'admin' },
  { method: 'GET', resource: '/v1/policy-review', function: 'admin', auth: 'admin' },
  { method: 'GET', resource: '/audit', function: 'admin', auth: 'admin' },
  { method: 'GET', resource: '/audit/{id}', function: 'admin', auth: 'admin' },
  { method: 'GET', resource: '/audit/agents/{name}', function: 'admin', auth: 'admin' },
  // `airlock exec`: one command in a container; Airlock opens the exec stream, the output streams back framed.
  { method: 'POST', resource: '/v1/exec', function: 'proxy', auth: 'proxy', streaming: true },
  { method: 'ANY', resource: '/k8s/{connection}/{proxy+}', function: 'proxy', auth: 'proxy', streaming: true },
  // MCP (lambdas/mcp): the endpoint runs in the proxy function, whose gateway it calls in-process.
  { method: 'ANY', resource: '/mcp', function: 'proxy', auth: 'proxy', streaming: true },
  { method: 'GET', resource: '/.well-known/oauth-protected-resource', function: 'tokens', auth: 'none' },
  { method: 'GET', resource: '/.well-known/oauth-protected-resource/mcp', function: 'tokens', auth: 'none' },
  { method: 'GET', resource: '/.well-known/oauth-authorization-server', function: 'tokens', auth: 'none' },
  { method: 'GET', resource: '/v1/mcp/authorize', function: 'tokens', auth: 'none' },
  // The Kubernetes API paths at the root too (`kubectl get --raw`, `kubectl proxy`): the token names the connection.
  ...KUBERNETES_ROOT_PATHS.flatMap((root): Route[] => [
    { method: 'ANY', resource: root, function: 'proxy', auth: 'proxy', streaming: true },
    { method: 'ANY', resource: `${root}/{proxy+}`, function: 'proxy', auth: 'proxy', streaming: true },
  ]),
];

export interface RouteMatch {
  route: Route;
  pathParameters: Record<string, string>;
}

/** Matches a raw (undecoded) path the way API Gateway does: literal segments, {param}, {proxy+}. */
export function matchRoute(method: string, path: string): RouteMatch | undefined {
  const segments = path.split('/').slice(1);
  for (const route of ROUTES) {
    if (route.method !== 'ANY' && route.method !== method) continue;
    const template = route.resource.split('/').slice(1);
    const parameters: Record<string, string> = {};
    let matched = true;
    for (let index = 0; index < template.length; index++) {
      const part = template[index]!;
      if (part.endsWith('+}')) {
        const rest = segments.slice(index).join('/');
        if (rest === '') matched = false;
        else parameters[part.slice(1, -2)] = rest;
        break;
      }
      const segment = segments[index];
      if (segment === undefined) {
        matched = false;
        break;
      }
      if (part.startsWith('{')) {
        if (segment === '') {
          matched = false;
          break;
        }
        parameters[part.slice(1, -1)] = segment;
      } else if (part !== segment) {
        matched = false;
        break;
      }
      if (index === template.length - 1 && segments.length !== template.length) matched = false;
    }
    if (matched) return { route, pathParameters: parameters };
  }
  return undefined;
}
