// can-i, can-i --list and whoami through the gateway on in-memory ports: answered for the agent
// (never refused for asking, always recorded); the e2e tier (test/e2e/clients-kubectl.test.ts)
// proves the same with real kubectl against a real API server.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PolicyRule } from '../../lambdas/core/policy.ts';
import { json as answer } from '../support/fake-upstream.ts';
import { startGateway, type Harness } from '../support/gateway-harness.ts';

const RULES: PolicyRule[] = [
  { effect: 'deny', resources: ['secrets'] },
  { effect: 'approve', verbs: ['delete'], namespaces: ['prod'] },
  { effect: 'allow', verbs: ['get', 'list'], namespaces: ['prod'] },
];
const JSON_BODY = { 'content-type': ['application/json'] };
const accessReview = (attributes: Record<string, string>) =>
  Buffer.from(JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: attributes } }));

let world: Harness;
beforeEach(async () => {
  world = await startGateway({ rules: RULES });
});
afterEach(async () => {
  await world.stop();
});

describe('self reviews', () => {
  it('whoami is answered by Airlock as the agent, never forwarded, and recorded', async () => {
    const sent = await world.send({ method: 'POST', path: '/apis/authentication.k8s.io/v1/selfsubjectreviews', headers: JSON_BODY, body: Buffer.from('{}') });
    expect(sent.status).toBe(201);
    const review = JSON.parse(await sent.text()) as { status: { userInfo: { username: string; uid: string } } };
    expect(review.status.userInfo).toMatchObject({ username: `airlock:agent:${world.agent.name}`, uid: world.agent.id });
    expect(world.upstream.forwarded).toEqual([]);
    expect(await sent.record()).toMatchObject({ decision: 'allowed', status: 201, reason: 'whoami answered by Airlock: the agent, its window and connection', phase: 'complete' });
  });

  it('can-i for what the policy holds is "no" with why, answered here; for what it allows, the cluster answers', async () => {
    const held = await world.send({
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      headers: JSON_BODY,
      body: accessReview({ verb: 'delete', resource: 'pods', namespace: 'prod' }),
    });
    expect(held.status).toBe(201);
    expect(JSON.parse(await held.text())).toMatchObject({ status: { allowed: false, reason: expect.stringMatching(/^airlock: needs a one-time human approval/) } });
    expect(world.upstream.forwarded).toEqual([]);
    expect((await held.record())?.reason).toMatch(/^can-i answered by Airlock: no \(rule 2/);

    world.upstream.answer = answer(201, { kind: 'SelfSubjectAccessReview', status: { allowed: true } });
    const allowed = await world.send({
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      headers: JSON_BODY,
      body: accessReview({ verb: 'get', resource: 'pods', namespace: 'prod' }),
    });
    expect(JSON.parse(await allowed.text())).toMatchObject({ status: { allowed: true } });
    expect(world.upstream.forwarded).toHaveLength(1);
  });

  it('can-i --list asks the cluster for JSON and keeps only what the policy allows without approval', async () => {
    world.upstream.answer = answer(201, {
      kind: 'SelfSubjectRulesReview',
      apiVersion: 'authorization.k8s.io/v1',
      spec: {},
      status: { resourceRules: [{ verbs: ['get', 'delete'], apiGroups: [''], resources: ['pods', 'secrets'] }], nonResourceRules: [], incomplete: false },
    });
    const body = Buffer.from(JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectRulesReview', spec: { namespace: 'prod' } }));
    const sent = await world.send({ method: 'POST', path: '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', headers: { ...JSON_BODY, accept: ['application/vnd.kubernetes.protobuf'] }, body });
    expect(sent.status).toBe(201);
    expect(JSON.parse(await sent.text())).toMatchObject({ spec: { namespace: 'prod' }, status: { resourceRules: [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }] } });
    expect(world.upstream.forwarded[0]?.headers.accept).toBe('application/json');
    expect(await sent.record()).toMatchObject({ decision: 'allowed', forwardedHeaders: expect.objectContaining({ accept: 'application/json' }) });
  });

  it('a cluster that refuses the rules review: its answer is passed on; a body that is not a review is a 400 on record', async () => {
    world.upstream.answer = answer(403, { kind: 'Status', code: 403, message: 'forbidden' });
    const body = Buffer.from(JSON.stringify({ spec: { namespace: 'prod' } }));
    const refused = await world.send({ method: 'POST', path: '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', headers: JSON_BODY, body });
    expect(refused.status).toBe(403);
    expect(JSON.parse(await refused.text())).toMatchObject({ message: 'forbidden' });
    const bad = await world.send({
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      headers: { 'content-type': ['application/vnd.kubernetes.protobuf'] },
      body: Buffer.from('not protobuf'),
    });
    expect(bad.status).toBe(400);
    expect(await bad.record()).toMatchObject({ status: 400 });
  });
});
