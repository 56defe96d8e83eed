import { describe, expect, it } from 'vitest';
import { matchRoute, ROUTES } from '../../lambdas/routes.ts';

describe('route table', () => {
  it('matches literal, parameter and greedy routes like API Gateway', () => {
    expect(matchRoute('POST', '/v1/tokens')?.route.function).toBe('tokens');
    expect(matchRoute('POST', '/v1/agents/bot-1/disable')).toMatchObject({ route: { function: 'admin' }, pathParameters: { name: 'bot-1' } });
    expect(matchRoute('DELETE', '/k8s/prod/api/v1/namespaces/x/pods/y')).toMatchObject({
      route: { function: 'proxy', streaming: true },
      pathParameters: { connection: 'prod', proxy: 'api/v1/namespaces/x/pods/y' },
    });
  });

  it('does not match wrong methods, missing segments or extra segments', () => {
    expect(matchRoute('DELETE', '/v1/tokens')).toBeUndefined();
    expect(matchRoute('GET', '/v1/agents/x')).toBeUndefined();
    expect(matchRoute('GET', '/k8s/prod')).toBeUndefined();
    expect(matchRoute('GET', '/v1/audit/a/b')).toBeUndefined();
    expect(matchRoute('GET', '/metrics')).toBeUndefined();
  });

  it('serves the Kubernetes API paths at the root through the proxy (the token names the connection)', () => {
    expect(matchRoute('GET', '/api/v1/namespaces/prod/pods')).toMatchObject({ route: { function: 'proxy', auth: 'proxy' }, pathParameters: { proxy: 'v1/namespaces/prod/pods' } });
    for (const path of ['/api', '/apis', '/apis/apps/v1', '/version', '/openapi/v3']) expect(matchRoute('GET', path)?.route.function, path).toBe('proxy');
  });

  it('streams /v1/exec, /k8s, /mcp (served by the proxy function) and the root Kubernetes paths, and every admin route is admin-authorized', () => {
    expect(ROUTES.filter((route) => route.streaming).map((route) => route.resource)).toEqual([
      '/v1/exec',
      '/k8s/{connection}/{proxy+}',
      '/mcp',
      ...['/api', '/apis', '/version', '/openapi'].flatMap((root) => [root, `${root}/{proxy+}`]),
    ]);
    for (const route of ROUTES.filter((r) => r.function === 'admin')) expect(route.auth).toBe('admin');
    expect(ROUTES.filter((route) => route.auth === 'agent-iam').map((route) => route.resource)).toContain('/v1/iam/tokens');
    // MCP: the endpoint runs beside the gateway; its token endpoint has an IAM twin; the OAuth metadata is public.
    expect(matchRoute('POST', '/mcp')?.route).toMatchObject({ function: 'proxy', auth: 'proxy' });
    expect(matchRoute('POST', '/v1/iam/mcp/token')?.route).toMatchObject({ function: 'tokens', auth: 'agent-iam' });
    expect(matchRoute('GET', '/.well-known/oauth-protected-resource/mcp')?.route).toMatchObject({ function: 'tokens', auth: 'none' });
  });
});
