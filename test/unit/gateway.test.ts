// The gateway's path on in-memory ports: what is forwarded, what is refused,
// and what each request's record says. The e2e tier proves the same against a
// real API server (test/e2e/adversarial.test.ts, proxy.test.ts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AirlockError } from '../../lambdas/core/status.ts';
import type { HeldRequest, RequestApprovalGate } from '../../lambdas/proxy/gateway.ts';
import { causeOf, startGateway, type Harness } from '../support/gateway-harness.ts';

const PODS = '/api/v1/namespaces/prod/pods';
const json = { 'content-type': ['application/json'] };

let world: Harness;
beforeEach(async () => {
  world = await startGateway();
});
afterEach(async () => {
  await world.stop();
});

describe('an allowed request', () => {
  it('is forwarded with the connection credential and only the selected headers, streamed back, and recorded complete with its transcript', async () => {
    const sent = await world.send({
      path: PODS,
      headers: { accept: ['application/json'], cookie: ['session=1'], 'proxy-authorization': ['Basic x'], 'x-forwarded-for': ['10.0.0.1'], 'user-agent': ['kubectl/v1.33'] },
    });
    expect(sent.status).toBe(200);
    expect(JSON.parse(await sent.text())).toMatchObject({ kind: 'List' });
    // The cluster's own headers pass only when listed; the request id is Airlock's.
    expect(sent.response.headers).toMatchObject({ 'content-type': 'application/json', 'x-airlock-request-id': sent.requestId });
    expect(sent.response.headers['set-cookie']).toBeUndefined();

    expect(world.upstream.forwarded).toHaveLength(1);
    const [forwarded] = world.upstream.forwarded;
    expect(forwarded?.headers).toEqual({ accept: 'application/json', 'user-agent': 'kubectl/v1.33', 'audit-id': sent.requestId, authorization: 'Bearer the-connection-credential' });
    // The API server's own deadline, no later than the window's end (60 s default fits a 30-minute window).
    expect(forwarded?.pathAndQuery).toBe(PODS);

    expect(await sent.record()).toMatchObject({
      decision: 'allowed',
      phase: 'complete',
      status: 200,
      agent: 'unit-agent',
      agentId: 'agt_unit',
      grantId: 'win_unit',
      policyVersion: 'sha256:unit',
      verb: 'list',
      resource: 'pods',
      namespace: 'prod',
      reason: expect.stringContaining('rule 3'),
      forwardedHeaders: { accept: 'application/json', 'user-agent': 'kubectl/v1.33' },
    });
    const transcript = await sent.transcript();
    expect(transcript).toMatchObject({ decision: 'allowed', agent: 'unit-agent', response: { status: 200 } });
    // The agent's token is in no transcript.
    expect(JSON.stringify(transcript)).not.toContain(world.token);
  });

  it('a long fieldSelector, a long path and a long user-agent are recorded whole, exactly as forwarded', async () => {
    const selector = `metadata.name=${'a'.repeat(3000)}`;
    const path = `${PODS}/${'p'.repeat(3000)}`;
    const userAgent = `kubectl/${'u'.repeat(1000)}`;
    const list = await world.send({ path: PODS, query: { fieldSelector: [selector] }, headers: { 'user-agent': [userAgent] } });
    const get = await world.send({ path });
    const [listed, got] = world.upstream.forwarded;
    expect((await list.record())?.query).toBe(listed?.pathAndQuery.split('?')[1]);
    expect((await list.record())?.query).toBe(new URLSearchParams({ fieldSelector: selector }).toString());
    expect((await list.record())?.forwardedHeaders?.['user-agent']).toBe(userAgent);
    expect(listed?.headers['user-agent']).toBe(userAgent);
    expect((await get.record())?.path).toBe(path);
    expect(got?.pathAndQuery.startsWith(path)).toBe(true);
  });

  it('a request approved by the gate is forwarded and its record names the approval spent', async () => {
    const gate: RequestApprovalGate = { authorize: async () => 'apr_spent' };
    const approved = await startGateway({ gateway: { approvals: gate } });
    try {
      const sent = await approved.send({ method: 'DELETE', path: `${PODS}/web-0` });
      expect(sent.status).toBe(200);
      expect(approved.upstream.forwarded).toHaveLength(1);
      expect(await sent.record()).toMatchObject({ decision: 'allowed', approvalId: 'apr_spent', phase: 'complete' });
    } finally {
      await approved.stop();
    }
  });
});

describe('every refusal is answered with a Status, never forwarded, and recorded with its decision and reason', () => {
  const refusals: { what: string; request: Parameters<Harness['send']>[0]; status: number; cause: string; decision: 'denied' | 'held' | 'error'; setUp?: (world: Harness) => Promise<void> }[] = [
    { what: 'no token', request: { path: PODS, headers: { authorization: [] } }, status: 401, cause: 'missing_token', decision: 'denied' },
    { what: 'two Authorization headers', request: { path: PODS, headers: { authorization: ['Bearer a', 'Bearer b'] } }, status: 400, cause: 'duplicate_authorization', decision: 'denied' },
    { what: 'a connection name that cannot exist', request: { path: PODS, connection: '../v1/agents' }, status: 404, cause: 'connection_not_found', decision: 'denied' },
    { what: 'a path two readers could read differently', request: { path: '/api/v1/namespaces/prod/../kube-system/pods' }, status: 400, cause: 'invalid_path', decision: 'denied' },
    { what: 'a method Kubernetes does not take', request: { path: PODS, method: 'TRACE' }, status: 405, cause: 'method_not_allowed', decision: 'denied' },
    { what: 'a forwarded header longer than the record holds', request: { path: PODS, headers: { 'user-agent': ['x'.repeat(1025)] } }, status: 431, cause: 'header_too_long', decision: 'denied' },
    { what: 'Impersonate-User', request: { path: PODS, headers: { 'impersonate-user': ['admin'] } }, status: 403, cause: 'impersonation_refused', decision: 'denied' },
    {
      what: 'Impersonate-Group on a write',
      request: { path: '/api/v1/namespaces/prod/configmaps', method: 'POST', headers: { 'impersonate-group': ['system:masters'], ...json }, body: Buffer.from('{}') },
      status: 403,
      cause: 'impersonation_refused',
      decision: 'denied',
    },
    { what: 'X-Remote-User', request: { path: PODS, headers: { 'x-remote-user': ['admin'] } }, status: 403, cause: 'impersonation_refused', decision: 'denied' },
    { what: 'a denied resource', request: { path: '/api/v1/namespaces/prod/secrets' }, status: 403, cause: 'forbidden_by_policy', decision: 'denied' },
    { what: 'a namespace no rule allows', request: { path: '/api/v1/namespaces/staging/pods' }, status: 403, cause: 'forbidden_by_policy', decision: 'denied' },
    { what: 'exec (interactive)', request: { path: `${PODS}/web-0/exec`, method: 'POST' }, status: 501, cause: 'interactive_not_supported', decision: 'denied' },
    { what: 'an Upgrade header on an allowed read', request: { path: PODS, headers: { upgrade: ['websocket'] } }, status: 501, cause: 'interactive_not_supported', decision: 'denied' },
    { what: 'a risky request on a gateway without approvals', request: { path: `${PODS}/web-0`, method: 'DELETE' }, status: 403, cause: 'approval_required', decision: 'held' },
    { what: 'an unknown window', request: { path: PODS }, status: 403, cause: 'no_window', decision: 'denied', setUp: async (w) => void w.state.grants.delete(w.grant.id) },
    {
      what: 'a revoked window',
      request: { path: PODS },
      status: 403,
      cause: 'window_revoked',
      decision: 'denied',
      setUp: async (w) => void (await w.state.transitionGrant(w.grant.id, ['active'], { status: 'revoked' })),
    },
    {
      what: 'an ended window',
      request: { path: PODS },
      status: 403,
      cause: 'window_expired',
      decision: 'denied',
      setUp: async (w) => void (await w.state.transitionGrant(w.grant.id, ['active'], { expiresAt: Date.now() - 1 })),
    },
    { what: 'a disabled agent', request: { path: PODS }, status: 403, cause: 'agent_disabled', decision: 'denied', setUp: async (w) => void (await w.state.disableAgent(w.agent.id, Date.now())) },
    {
      what: 'a connection revoked after the window started',
      request: { path: PODS },
      status: 403,
      cause: 'window_revoked',
      decision: 'denied',
      setUp: (w) => w.state.setConnectionRevokedBefore(w.connection.name, Date.now()),
    },
    { what: 'a watch timeoutSeconds that is not a number', request: { path: PODS, query: { watch: ['1'], timeoutSeconds: ['soon'] } }, status: 400, cause: 'invalid_query', decision: 'denied' },
  ];

  it.each(refusals)('$what: $status $cause, recorded $decision', async ({ request, status, cause, decision, setUp }) => {
    await setUp?.(world);
    const sent = await world.send(request);
    expect(sent.status).toBe(status);
    const text = await sent.text();
    expect(JSON.parse(text)).toMatchObject({ kind: 'Status', code: status });
    expect(causeOf(text)).toBe(cause);
    expect(world.upstream.forwarded).toEqual([]);
    const record = await sent.record();
    expect(record).toMatchObject({ decision, status, phase: 'complete' });
    if (cause !== 'forbidden_by_policy') expect(record?.reason).toMatch(new RegExp(`^${cause}: `));
    expect(await sent.transcript()).toMatchObject({ decision, response: { status } });
  });

  it('a token for another connection: 401 wrong_connection, or 404 when the connection named does not exist', async () => {
    await world.state.putConnection({ ...world.connection, name: 'staging' }, 'create');
    const other = await world.send({ path: PODS, connection: 'staging' });
    expect(other.status).toBe(401);
    expect(causeOf(await other.text())).toBe('wrong_connection');
    const missing = await world.send({ path: PODS, connection: 'nowhere' });
    expect(missing.status).toBe(404);
    expect(causeOf(await missing.text())).toBe('connection_not_found');
    expect(await missing.record()).toMatchObject({ decision: 'denied', connection: 'nowhere', agent: '(unauthenticated)' });
    expect(world.upstream.forwarded).toEqual([]);
  });

  it('a policy refusal is recorded with the rule that refused it, and names the request in words', async () => {
    const sent = await world.send({ path: '/api/v1/namespaces/prod/secrets' });
    expect(JSON.parse(await sent.text())).toMatchObject({ message: 'airlock: list secrets in namespace prod is not allowed on "prod": rule 1 (deny resources [secrets])' });
    expect(await sent.record()).toMatchObject({ decision: 'denied', reason: 'rule 1 (deny resources [secrets])', verb: 'list', resource: 'secrets', policyVersion: 'sha256:unit' });
  });

  it('a refusal carries its message as a Warning header too, for clients that drop the Status body (Helm, WebSocket exec)', async () => {
    const sent = await world.send({ path: '/api/v1/namespaces/prod/secrets' });
    expect(sent.response.headers.warning).toBe('299 - "airlock: list secrets in namespace prod is not allowed on \\"prod\\": rule 1 (deny resources [secrets])"');
  });

  it("an effect's refusal reaches the record with the effect's reason: a pod that mounts a Secret is a read of secrets", async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image: 'busybox' }], volumes: [{ name: 'v', secret: { secretName: 'db-password' } }] },
    };
    const sent = await world.send({ path: PODS, method: 'POST', headers: json, body: Buffer.from(JSON.stringify(pod)) });
    expect(sent.status).toBe(403);
    const message = (JSON.parse(await sent.text()) as { message: string }).message;
    const record = await sent.record();
    expect(record).toMatchObject({ decision: 'denied', verb: 'create', resource: 'pods' });
    expect(record?.reason).toMatch(/secret.*rule 1 \(deny resources \[secrets\]\)/i);
    expect(message).toContain(record?.reason);
    expect(world.upstream.forwarded).toEqual([]);
  });

  it('a request the gate holds is recorded as held, naming the approval to wait for', async () => {
    const held: HeldRequest[] = [];
    const gate: RequestApprovalGate = {
      authorize: async (request) => {
        held.push(request);
        throw new AirlockError(403, 'approval_required', 'DELETE pods/web-0 needs a one-time human approval', { approvalId: 'apr_wait' });
      },
    };
    const gated = await startGateway({ gateway: { approvals: gate } });
    try {
      const sent = await gated.send({ method: 'DELETE', path: `${PODS}/web-0` });
      expect(sent.status).toBe(403);
      expect(JSON.parse(await sent.text())).toMatchObject({ details: { name: 'apr_wait', kind: 'approval' } });
      expect(held[0]).toMatchObject({ requestId: sent.requestId, method: 'DELETE', kube: { verb: 'delete', name: 'web-0' }, grant: { id: 'win_unit' } });
      expect(await sent.record()).toMatchObject({ decision: 'held', approvalId: 'apr_wait', status: 403, reason: expect.stringMatching(/^approval_required: /) });
      expect(gated.upstream.forwarded).toEqual([]);
    } finally {
      await gated.stop();
    }
  });

  it('a body over the limit: 413 body_too_large, not forwarded, recorded denied', async () => {
    const small = await startGateway({ gateway: { maxRequestBodyBytes: 16 } });
    try {
      const sent = await small.send({ path: '/api/v1/namespaces/prod/configmaps', method: 'POST', headers: json, body: Buffer.alloc(17, 'a') });
      expect(sent.status).toBe(413);
      expect(causeOf(await sent.text())).toBe('body_too_large');
      expect(await sent.record()).toMatchObject({ decision: 'denied', status: 413, requestBytes: 17 });
      expect(small.upstream.forwarded).toEqual([]);
    } finally {
      await small.stop();
    }
  });

  it('Impersonate-User on discovery is not refused, and never forwarded', async () => {
    const sent = await world.send({ path: '/api', headers: { 'impersonate-user': ['system:anonymous'] } });
    expect(sent.status).toBe(200);
    expect(world.upstream.forwarded[0]?.headers['impersonate-user']).toBeUndefined();
    expect(await sent.record()).toMatchObject({ decision: 'allowed', verb: 'get' });
  });

  it('a refusal before the token is read records the raw request, cut to the recorded limits', async () => {
    const sent = await world.send({ path: `/${'a'.repeat(5000)}`, headers: { authorization: [] } });
    const record = await sent.record();
    expect(record).toMatchObject({ agent: '(unauthenticated)', agentId: '-', verb: '-', decision: 'denied' });
    expect(record?.path).toHaveLength(4096);
  });
});
