import { describe, expect, it } from 'vitest';
import { KUBE_VERBS, parseKubeRequest, type KubeRequest } from '../../lambdas/core/kube-request.ts';
import { AirlockError } from '../../lambdas/core/status.ts';

type Query = Record<string, string[]>;

function parse(method: string, path: string, query: Query = {}): KubeRequest {
  return parseKubeRequest(method, path, query);
}

function refusal(method: string, path: string, query: Query = {}): AirlockError {
  try {
    parseKubeRequest(method, path, query);
  } catch (error) {
    expect(error).toBeInstanceOf(AirlockError);
    return error as AirlockError;
  }
  throw new Error(`expected ${method} ${path} to be refused`);
}

describe('parseKubeRequest: resource paths', () => {
  const cases: [string, string, Query, Partial<KubeRequest>][] = [
    ['GET', '/api/v1/namespaces/prod/pods/web-0', {}, { verb: 'get', resource: 'pods', namespace: 'prod', name: 'web-0' }],
    ['HEAD', '/api/v1/namespaces/prod/pods/web-0', {}, { verb: 'get', name: 'web-0' }],
    ['GET', '/api/v1/namespaces/prod/pods', {}, { verb: 'list', resource: 'pods', namespace: 'prod', name: '' }],
    ['GET', '/api/v1/pods', {}, { verb: 'list', resource: 'pods', namespace: '', name: '' }],
    ['GET', '/api/v1/nodes/node-1', {}, { verb: 'get', resource: 'nodes', namespace: '', name: 'node-1' }],
    ['GET', '/api/v1/nodes/node-1/status', {}, { verb: 'get', resource: 'nodes', name: 'node-1', subresource: 'status' }],
    ['GET', '/api/v1/namespaces/prod/pods/web-0/log', { follow: ['true'] }, { verb: 'get', resource: 'pods', subresource: 'log', namespace: 'prod', name: 'web-0' }],
    ['GET', '/apis/apps/v1/namespaces/prod/deployments/web', {}, { verb: 'get', apiGroup: 'apps', apiVersion: 'v1', resource: 'deployments', namespace: 'prod', name: 'web' }],
    ['PUT', '/apis/apps/v1/namespaces/prod/deployments/web/scale', {}, { verb: 'update', apiGroup: 'apps', resource: 'deployments', subresource: 'scale', name: 'web' }],
    ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {}, { verb: 'list', apiGroup: 'rbac.authorization.k8s.io', resource: 'clusterroles', namespace: '' }],
    ['POST', '/api/v1/namespaces/prod/configmaps', {}, { verb: 'create', resource: 'configmaps', name: '' }],
    ['PUT', '/api/v1/namespaces/prod/configmaps/cm', {}, { verb: 'update', name: 'cm' }],
    ['PATCH', '/api/v1/namespaces/prod/configmaps/cm', {}, { verb: 'patch', name: 'cm' }],
    ['DELETE', '/api/v1/namespaces/prod/configmaps/cm', {}, { verb: 'delete', name: 'cm' }],
    ['DELETE', '/api/v1/namespaces/prod/configmaps', {}, { verb: 'deletecollection', name: '', namespace: 'prod' }],
    ['DELETE', '/api/v1/nodes', {}, { verb: 'deletecollection', resource: 'nodes' }],
    ['POST', '/api/v1/namespaces/prod/serviceaccounts/default/token', {}, { verb: 'create', resource: 'serviceaccounts', subresource: 'token', name: 'default' }],
    ['GET', '/api/v1/namespaces/prod/services/https:web:443/proxy', {}, { verb: 'proxy', resource: 'services', name: 'https:web:443', subresource: 'proxy' }],
  ];
  it.each(cases)('%s %s', (method, path, query, expected) => {
    const request = parse(method, path, query);
    expect(request).toMatchObject({ kind: 'resource', path, ...expected });
  });

  it('fills every field', () => {
    expect(parse('GET', '/apis/batch/v1/namespaces/ops/jobs/nightly/status', { pretty: ['true'] })).toEqual({
      kind: 'resource',
      verb: 'get',
      apiGroup: 'batch',
      apiVersion: 'v1',
      resource: 'jobs',
      subresource: 'status',
      namespace: 'ops',
      name: 'nightly',
      path: '/apis/batch/v1/namespaces/ops/jobs/nightly/status',
      query: 'pretty=true',
    });
  });

  it.each(['/api/v1/namespaces/prod/Secrets', '/api/v1/namespaces/Prod/pods', '/apis/Apps/v1/namespaces/prod/deployments', '/api/V1/namespaces/prod/pods', '/api/v1/namespaces/prod/pods/web-0/Exec'])(
    'refuses uppercase in group, version, resource, subresource or namespace: %s',
    (path) => {
      expect(() => parse('GET', path)).toThrow(/must be lowercase/);
    },
  );

  it('keeps object names as given (some resources allow uppercase names)', () => {
    expect(parse('GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/Admin-Role')).toMatchObject({ resource: 'clusterroles', name: 'Admin-Role' });
  });
});

describe('parseKubeRequest: namespaces as a resource', () => {
  it.each([
    ['GET', '/api/v1/namespaces', { verb: 'list', resource: 'namespaces', namespace: '', name: '' }],
    ['GET', '/api/v1/namespaces/prod', { verb: 'get', resource: 'namespaces', namespace: 'prod', name: 'prod' }],
    ['DELETE', '/api/v1/namespaces/prod', { verb: 'delete', resource: 'namespaces', namespace: 'prod', name: 'prod' }],
    ['POST', '/api/v1/namespaces', { verb: 'create', resource: 'namespaces', namespace: '' }],
    ['PUT', '/api/v1/namespaces/prod/finalize', { verb: 'update', resource: 'namespaces', namespace: 'prod', name: 'prod', subresource: 'finalize' }],
    ['GET', '/api/v1/namespaces/prod/status', { verb: 'get', resource: 'namespaces', namespace: 'prod', name: 'prod', subresource: 'status' }],
  ] as const)('%s %s', (method, path, expected) => {
    expect(parse(method, path)).toMatchObject({ kind: 'resource', ...expected });
  });

  it('refuses segments after a namespace subresource', () => {
    expect(refusal('GET', '/api/v1/namespaces/prod/status/extra')).toMatchObject({ status: 400, code: 'invalid_path' });
  });
});

describe('parseKubeRequest: connect subresources take their own verb', () => {
  it.each([
    ['POST', '/api/v1/namespaces/prod/pods/web-0/exec', 'exec'],
    ['GET', '/api/v1/namespaces/prod/pods/web-0/exec', 'exec'],
    ['POST', '/api/v1/namespaces/prod/pods/web-0/attach', 'attach'],
    ['GET', '/api/v1/namespaces/prod/pods/web-0/attach', 'attach'],
    ['POST', '/api/v1/namespaces/prod/pods/web-0/portforward', 'portforward'],
    ['GET', '/api/v1/namespaces/prod/pods/web-0/portforward', 'portforward'],
    ['GET', '/api/v1/namespaces/prod/pods/web-0/proxy', 'proxy'],
    ['DELETE', '/api/v1/namespaces/prod/pods/web-0/proxy', 'proxy'],
    ['PUT', '/api/v1/nodes/node-1/proxy', 'proxy'],
  ] as const)('%s %s -> %s', (method, path, verb) => {
    const request = parse(method, path);
    expect(request.verb).toBe(verb);
    expect(request.subresource).toBe(verb);
  });

  it('a watch query does not change a connect verb', () => {
    expect(parse('GET', '/api/v1/namespaces/prod/pods/web-0/exec', { watch: ['1'], command: ['ls'] }).verb).toBe('exec');
  });

  it('lets the proxy subresource carry a path, and only the proxy subresource', () => {
    const request = parse('GET', '/api/v1/namespaces/prod/services/web/proxy/metrics/v1');
    expect(request).toMatchObject({
      verb: 'proxy',
      resource: 'services',
      name: 'web',
      subresource: 'proxy',
      path: '/api/v1/namespaces/prod/services/web/proxy/metrics/v1',
    });
    expect(refusal('GET', '/api/v1/namespaces/prod/pods/web-0/log/extra')).toMatchObject({ code: 'invalid_path' });
    expect(refusal('POST', '/api/v1/namespaces/prod/pods/web-0/exec/sh')).toMatchObject({ code: 'invalid_path' });
  });

  it('refuses the legacy /proxy/ prefix', () => {
    expect(refusal('GET', '/api/v1/proxy/namespaces/prod/pods/web-0')).toMatchObject({ code: 'invalid_path' });
  });
});

describe('parseKubeRequest: watch', () => {
  const list = '/api/v1/namespaces/prod/pods';
  it.each([
    [['true'], 'watch'],
    [['1'], 'watch'],
    [['TRUE'], 'watch'],
    [['yes'], 'watch'],
    [[''], 'watch'], // Kubernetes decodes an empty bool parameter as true
    [['0'], 'list'],
    [['false'], 'list'],
    [['False'], 'list'],
    [['FALSE'], 'list'],
    [[], 'list'],
  ] as const)('watch=%j -> %s', (values, verb) => {
    expect(parse('GET', list, { watch: [...values] }).verb).toBe(verb);
  });

  it('no watch parameter -> list', () => {
    expect(parse('GET', list, { limit: ['500'] }).verb).toBe('list');
  });

  it('refuses more than one watch value', () => {
    expect(refusal('GET', list, { watch: ['0', '1'] })).toMatchObject({ status: 400, code: 'invalid_query' });
    expect(refusal('GET', list, { watch: ['1', '1'] })).toMatchObject({ status: 400, code: 'invalid_query' });
  });

  it('refuses a non-ASCII watch value (Go folds case differently)', () => {
    expect(refusal('GET', list, { watch: ['falſe'] })).toMatchObject({ code: 'invalid_query' });
  });

  it('refuses watch on a single object: Kubernetes would answer with a plain get', () => {
    expect(refusal('GET', `${list}/web-0`, { watch: ['1'] })).toMatchObject({ status: 400, code: 'invalid_query' });
    expect(parse('GET', `${list}/web-0`, { watch: ['false'] }).verb).toBe('get');
  });

  it('legacy /watch/ prefix means watch and keeps the path', () => {
    expect(parse('GET', '/api/v1/watch/namespaces/prod/pods')).toMatchObject({
      verb: 'watch',
      resource: 'pods',
      namespace: 'prod',
      name: '',
      path: '/api/v1/watch/namespaces/prod/pods',
    });
    expect(parse('GET', '/api/v1/watch/pods', { watch: ['false'] })).toMatchObject({ verb: 'watch', namespace: '' });
    expect(parse('GET', '/apis/apps/v1/watch/namespaces/prod/deployments/web')).toMatchObject({
      verb: 'watch',
      apiGroup: 'apps',
      resource: 'deployments',
      name: 'web',
    });
    expect(parse('GET', '/api/v1/watch/namespaces/prod')).toMatchObject({
      verb: 'watch',
      resource: 'namespaces',
      name: 'prod',
      namespace: 'prod',
    });
  });

  it('refuses malformed legacy watches', () => {
    expect(refusal('GET', '/api/v1/watch')).toMatchObject({ code: 'invalid_path' });
    expect(refusal('GET', '/api/v1/watch/namespaces/prod/pods/web-0/status')).toMatchObject({ code: 'invalid_path' });
    expect(refusal('DELETE', '/api/v1/watch/namespaces/prod/pods')).toMatchObject({ status: 405 });
  });

  it('watch values are ignored for non-read methods', () => {
    expect(parse('DELETE', list, { watch: ['1'] }).verb).toBe('deletecollection');
  });
});

describe('parseKubeRequest: discovery and non-resource paths', () => {
  it.each([
    ['/api', '', ''],
    ['/api/v1', '', 'v1'],
    ['/apis', '', ''],
    ['/apis/apps', 'apps', ''],
    ['/apis/apps/v1', 'apps', 'v1'],
    ['/version', '', ''],
    ['/openapi/v2', '', ''],
    ['/openapi/v3', '', ''],
    ['/openapi/v3/apis/apps/v1', '', ''],
    ['/openapi/v3/api/v1', '', ''],
  ])('%s is discovery', (path, apiGroup, apiVersion) => {
    expect(parse('GET', path)).toMatchObject({ kind: 'discovery', verb: 'get', resource: '', apiGroup, apiVersion, path });
    expect(parse('HEAD', path).kind).toBe('discovery');
  });

  it.each(['/', '/healthz', '/livez', '/readyz', '/metrics', '/logs/kube-apiserver.log', '/api/v2', '/openapi', '/openapi/v2/x', '/.well-known/openid-configuration', '/openid/v1/jwks', '/version/x'])(
    '%s is non-resource',
    (path) => {
      expect(parse('GET', path)).toMatchObject({ kind: 'nonresource', verb: 'get', resource: '', path });
    },
  );

  it('non-resource writes get the method verb', () => {
    expect(parse('POST', '/healthz')).toMatchObject({ kind: 'nonresource', verb: 'create' });
  });

  it.each(['POST', 'PUT', 'PATCH', 'DELETE'])('discovery refuses %s with 405', (method) => {
    expect(refusal(method, '/apis/apps/v1')).toMatchObject({ status: 405, code: 'method_not_allowed' });
  });
});

describe('parseKubeRequest: methods', () => {
  it.each(['OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'get', '', 'constructor', '__proto__'])('%j -> 405', (method) => {
    const error = refusal(method, '/api/v1/namespaces/prod/pods');
    expect(error).toMatchObject({ status: 405, code: 'method_not_allowed' });
  });
});

describe('parseKubeRequest: path refusals', () => {
  const base = '/api/v1/namespaces/prod/pods';
  it.each([
    ['no leading slash', 'api/v1/pods'],
    ['empty', ''],
    ['dot-dot segment', `${base}/../secrets`],
    ['dot segment', '/api/v1/./namespaces/prod/pods'],
    ['trailing dot-dot', '/api/v1/namespaces/prod/..'],
    ['encoded dot-dot', `${base}/%2e%2e/secrets`],
    ['encoded slash', '/api/v1/namespaces/prod%2fsecrets'],
    ['any percent', `${base}/web%41`],
    ['double slash', '/api/v1//namespaces/prod/pods'],
    ['leading double slash', '//api/v1/pods'],
    ['trailing slash', `${base}/`],
    ['backslash', `${base}\\..\\secrets`],
    ['NUL', `${base}/web\u0000`],
    ['newline', `${base}/web\n`],
    ['tab', `${base}/\tweb`],
    ['DEL', `${base}/web\u007f`],
    ['non-ASCII', `${base}/wéb`],
    ['fullwidth dot', `${base}/\uff0e\uff0e`],
    ['space', `${base}/web 0`],
    ['question mark', `${base}/web?x=1`],
    ['hash', `${base}/web#x`],
    ['semicolon', `${base}/web;x`],
    ['5000-char path', `/api/v1/namespaces/prod/configmaps/${'a'.repeat(5000)}`],
  ])('%s', (_label, path) => {
    const error = refusal('GET', path);
    expect(error.status).toBe(400);
    expect(error.code).toBe('invalid_path');
    expect(error.message).toMatch(/invalid request path/);
  });

  it('accepts a path of exactly the limit', () => {
    const prefix = '/api/v1/namespaces/prod/configmaps/';
    const path = prefix + 'a'.repeat(4096 - prefix.length);
    expect(parse('GET', path).name).toHaveLength(4096 - prefix.length);
  });

  it('refuses a non-string path', () => {
    expect(refusal('GET', undefined as unknown as string)).toMatchObject({ status: 400, code: 'invalid_path' });
  });
});

describe('parseKubeRequest: query', () => {
  const path = '/api/v1/namespaces/prod/pods';

  it('re-encodes the query in the given order', () => {
    const request = parse('GET', path, {
      labelSelector: ['app=web,tier in (a,b)'],
      limit: ['500'],
      fieldSelector: ['metadata.name=web-0'],
    });
    expect(request.query).toBe('labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29&limit=500&fieldSelector=metadata.name%3Dweb-0');
  });

  it('keeps repeated values', () => {
    expect(parse('POST', `${path}/web-0/exec`, { command: ['sh', '-c', 'ls /'], stdout: ['true'] }).query).toBe('command=sh&command=-c&command=ls+%2F&stdout=true');
  });

  it('empty and missing queries give an empty string', () => {
    expect(parse('GET', path, {}).query).toBe('');
    expect(parse('GET', path, null as unknown as Query).query).toBe('');
    expect(parse('GET', path, { a: [] }).query).toBe('');
  });

  it('round-trips: what is forwarded decodes to what was checked', () => {
    const query = { labelSelector: ['a=b&c=d'], x: ['ü+ %'], watch: ['1'] };
    const request = parse('GET', path, query);
    const decoded: Query = {};
    for (const [key, value] of new URLSearchParams(request.query)) (decoded[key] ??= []).push(value);
    expect(decoded).toEqual(query);
  });

  it.each([
    ['control character in a value', { labelSelector: ['a\u0000'] }],
    ['newline in a value', { labelSelector: ['a\nb'] }],
    ['C1 control in a value', { labelSelector: ['a\u0085'] }],
    ['control character in a key', { 'a\u0001': ['x'] }],
    ['empty key', { '': ['x'] }],
    ['lone surrogate', { x: ['\ud800'] }],
    ['non-list value', { x: 'y' as unknown as string[] }],
    ['non-string value', { x: [1 as unknown as string] }],
    ['too many params', Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`p${i}`, ['v']]))],
    ['too many values', { command: Array.from({ length: 101 }, () => 'x') }],
    ['too long', { x: ['a'.repeat(8200)] }],
  ])('refuses %s', (_label, query) => {
    expect(refusal('GET', path, query as Query)).toMatchObject({ status: 400, code: 'invalid_query' });
  });

  it('accepts 100 params', () => {
    const query = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`p${i}`, ['v']]));
    expect(parse('GET', path, query).query.split('&')).toHaveLength(100);
  });

  it('refuses a non-object query', () => {
    expect(refusal('GET', path, 'watch=1' as unknown as Query)).toMatchObject({ code: 'invalid_query' });
    expect(refusal('GET', path, [] as unknown as Query)).toMatchObject({ code: 'invalid_query' });
  });
});

describe('KUBE_VERBS', () => {
  it('lists the contract verbs', () => {
    expect([...KUBE_VERBS].sort()).toEqual(['attach', 'create', 'delete', 'deletecollection', 'exec', 'get', 'list', 'patch', 'portforward', 'proxy', 'update', 'watch']);
    expect(Object.isFrozen(KUBE_VERBS)).toBe(true);
  });
});
