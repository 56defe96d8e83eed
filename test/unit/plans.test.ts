// Plan, approve once, apply, on in-memory ports: the gateway's plan stage
// (dry runs collected; planned changes pass once; anything else as without a
// plan), and the plan's lifecycle (one approval, expiry, the kill switch).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Plan, PlanChange } from '../../lambdas/core/model.ts';
import type { ChangePreview } from '../../lambdas/core/preview.ts';
import { closePlan, decide, openPlan, revokeAgent, startApply } from '../../lambdas/core/lifecycle.ts';
import { withDryRun, withoutDryRun } from '../../lambdas/core/plans.ts';
import { AirlockError } from '../../lambdas/core/status.ts';
import { redactCommandLine } from '../../lambdas/core/redaction.ts';
import { causeOf, startGateway, type Harness } from '../support/gateway-harness.ts';
import { json } from '../support/fake-upstream.ts';
import { MemoryWorkflows } from '../support/memory.ts';
import type { PolicyRule } from '../../lambdas/core/policy.ts';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { ApprovalLinks, approvalEmail } from '../../lambdas/core/approvals.ts';
import { approvalRoutes } from '../../lambdas/handlers/approvals.ts';
import { windowActivity } from '../../lambdas/proxy/window-activity.ts';
import type { Services } from '../../lambdas/runtime/services.ts';

const RULES: PolicyRule[] = [
  { effect: 'deny', resources: ['secrets'] },
  { effect: 'approve', verbs: ['create', 'delete', 'patch', 'update'], resources: ['configmaps'], namespaces: ['prod'] },
  { effect: 'allow', verbs: ['get', 'list', 'watch'], resources: ['configmaps', 'pods'], namespaces: ['prod'] },
];

const configMap = (name: string) => Buffer.from(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'prod' }, data: { key: `value-${name}` } }));

let world: Harness;
let workflows: MemoryWorkflows;
let held: number;
const deps = () => ({ state: world.state, records: world.records, log: world.log, now: Date.now, workflows });

beforeEach(async () => {
  held = 0;
  workflows = new MemoryWorkflows();
  world = await startGateway({
    rules: RULES,
    clusterReader: true,
    gateway: {
      approvals: {
        authorize: () => {
          held++;
          return Promise.reject(new AirlockError(403, 'approval_required', 'held for approval (unit stand-in)'));
        },
      },
    },
  });
});
afterEach(() => world.stop());

async function tokenFor(plan: Plan, mode: 'plan' | 'apply'): Promise<string> {
  const { agent, connection, grant } = world;
  return (await world.tokens.issue({ agentId: agent.id, agentName: agent.name, connection: connection.name, grantId: grant.id, windowExpiresAt: grant.expiresAt!, plan: { planId: plan.id, mode } }))
    .token;
}

async function create(token: string, name: string) {
  return world.send({
    method: 'POST',
    path: '/api/v1/namespaces/prod/configmaps',
    query: { fieldManager: ['kubectl-client-side-apply'] },
    headers: { authorization: [`Bearer ${token}`], 'content-type': ['application/json'] },
    body: configMap(name),
  });
}

async function planned(names: string[]): Promise<Plan> {
  const { agent, connection, grant } = world;
  const plan = await openPlan(deps(), { agent, connection, grant, reason: 'roll out the config', command: 'kubectl apply -f cms/' });
  const token = await tokenFor(plan, 'plan');
  world.upstream.answer = json(201, { kind: 'ConfigMap', metadata: { name: 'dry' }, data: { key: 'value' } });
  for (const name of names) {
    const sent = await create(token, name);
    expect(sent.status).toBe(201);
    await sent.record();
  }
  return (await world.state.getPlan(plan.id))!;
}

/** A change's whole preview, as the approval page reads it from the transcript store. */
async function previewOf(change: PlanChange): Promise<ChangePreview> {
  expect(change.preview?.key).toBeDefined();
  return JSON.parse((await world.transcripts.get(change.preview!.key!))!) as ChangePreview;
}

async function approved(plan: Plan): Promise<Plan> {
  const { connection, grant } = world;
  const { approval } = await closePlan(deps(), plan, connection, grant);
  await decide(deps(), approval!.id, 'oncall@example.com', 'approve');
  return startApply(deps(), (await world.state.getPlan(plan.id))!);
}

describe('airlock plan: the gateway', () => {
  it('sends each change the policy allows or holds as a dry run, recorded with the plan, and collects it', async () => {
    const plan = await planned(['one', 'two', 'three']);
    expect(world.upstream.forwarded.map((forwarded) => forwarded.pathAndQuery)).toEqual(Array(3).fill('/api/v1/namespaces/prod/configmaps?fieldManager=kubectl-client-side-apply&dryRun=All'));
    expect(held).toBe(0);
    expect(plan.changes).toHaveLength(3);
    expect(plan.changes[0]).toMatchObject({ method: 'POST', path: '/api/v1/namespaces/prod/configmaps', query: 'fieldManager=kubectl-client-side-apply', dryRun: { status: 201 } });
    // What the approver sees of each (§1): the body whole, the dry-run answer as a diff; a create needs no read of the cluster.
    const preview = await previewOf(plan.changes[0]!);
    expect(preview.problems).toEqual([]);
    expect(preview.body).toContain('key: value-one');
    expect(preview.objects[0]).toMatchObject({ kind: 'ConfigMap', target: 'prod/one' });
    expect(preview.diff).toContain('+   key: value');
    expect(preview.notes).toContain('A new object: nothing is live under this name.');
    expect(plan.changes[0]!.preview).toMatchObject({ key: `previews/${plan.id}/${plan.changes[0]!.requestId}.json`, problems: [] });
    const records = [...world.records.records.values()];
    expect(records.every((record) => record.planId === plan.id && record.query.endsWith('dryRun=All') && record.decision === 'allowed')).toBe(true);
    expect(records[0]!.reason).toMatch(/^dry run for plan pln_/);
  });

  it('shows a change whole past 2 KiB, and says so of one it cannot read', async () => {
    const big = await planned(['x'.repeat(3000)]);
    const preview = await previewOf(big.changes[0]!);
    expect(preview.problems).toEqual([]);
    expect(preview.body).toContain('x'.repeat(3000));
    const { agent, connection, grant } = world;
    const plan = await openPlan(deps(), { agent, connection, grant, reason: 'broken', command: 'kubectl create -f broken.json' });
    world.upstream.answer = json(201, { kind: 'ConfigMap', metadata: { name: 'dry' } });
    const sent = await world.send({
      method: 'POST',
      path: '/api/v1/namespaces/prod/configmaps',
      headers: { authorization: [`Bearer ${await tokenFor(plan, 'plan')}`], 'content-type': ['application/json'] },
      body: Buffer.from('{"kind": "ConfigMap", "metadata": {'),
    });
    expect(sent.status).toBe(201);
    await sent.record();
    const [change] = (await world.state.getPlan(plan.id))!.changes;
    expect(change!.preview!.problems.join()).toMatch(/could not be read as application\/json/);
  });

  it('shows a patch as the dry-run answer against the live object, read through the recorded cluster reader', async () => {
    const { agent, connection, grant } = world;
    const plan = await openPlan(deps(), { agent, connection, grant, reason: 'switch', command: 'kubectl patch cm one' });
    world.upstream.answer = (forwarded, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      const mode = forwarded.method === 'PATCH' ? 'new' : 'old';
      response.end(JSON.stringify({ kind: 'ConfigMap', metadata: { name: 'one', namespace: 'prod', resourceVersion: mode === 'new' ? '2' : '1' }, data: { mode } }));
    };
    const sent = await world.send({
      method: 'PATCH',
      path: '/api/v1/namespaces/prod/configmaps/one',
      headers: { authorization: [`Bearer ${await tokenFor(plan, 'plan')}`], 'content-type': ['application/merge-patch+json'] },
      body: Buffer.from('{"data":{"mode":"new"}}'),
    });
    expect(sent.status).toBe(200);
    await sent.record();
    expect(world.upstream.forwarded.map((forwarded) => `${forwarded.method} ${forwarded.pathAndQuery}`)).toEqual([
      'PATCH /api/v1/namespaces/prod/configmaps/one?dryRun=All',
      'GET /api/v1/namespaces/prod/configmaps/one',
    ]);
    const [change] = (await world.state.getPlan(plan.id))!.changes;
    const preview = await previewOf(change!);
    expect(preview.problems).toEqual([]);
    expect(preview.diff).toContain('-   mode: old');
    expect(preview.diff).toContain('+   mode: new');
    expect(preview.diff).not.toContain('resourceVersion');
    // The read reached the cluster recorded, naming the plan's change.
    const read = [...world.records.records.values()].find((record) => record.method === 'GET');
    expect(read).toMatchObject({ decision: 'allowed', reason: expect.stringMatching(new RegExp(`^preview of change req_\\S+ of plan ${plan.id}: the live object`)) });
  });

  it('passes reads as usual and denies what the policy denies', async () => {
    const { agent, connection, grant } = world;
    const plan = await openPlan(deps(), { agent, connection, grant, reason: 'look around', command: 'kubectl get cm' });
    const token = await tokenFor(plan, 'plan');
    const read = await world.send({ path: '/api/v1/namespaces/prod/configmaps', headers: { authorization: [`Bearer ${token}`] } });
    expect(read.status).toBe(200);
    expect(world.upstream.forwarded[0]!.pathAndQuery).toBe('/api/v1/namespaces/prod/configmaps');
    expect((await read.record())?.planId).toBe(plan.id);
    const secret = await world.send({
      method: 'POST',
      path: '/api/v1/namespaces/prod/secrets',
      headers: { authorization: [`Bearer ${token}`], 'content-type': ['application/json'] },
      body: Buffer.from('{}'),
    });
    expect(secret.status).toBe(403);
    expect(causeOf(await secret.text())).toBe('forbidden_by_policy');
    expect((await world.state.getPlan(plan.id))!.changes).toHaveLength(0);
  });

  it('keeps no Secret value in a plan', async () => {
    const rules: PolicyRule[] = [{ effect: 'approve', verbs: ['create'], resources: ['secrets'], namespaces: ['prod'] }];
    await world.stop();
    world = await startGateway({ rules, clusterReader: true });
    const { agent, connection, grant } = world;
    const plan = await openPlan(deps(), { agent, connection, grant, reason: 'a secret', command: 'kubectl create secret' });
    world.upstream.answer = json(201, { kind: 'Secret', metadata: { name: 's' }, data: { password: 'aHVudGVyMg==' } });
    const sent = await world.send({
      method: 'POST',
      path: '/api/v1/namespaces/prod/secrets',
      headers: { authorization: [`Bearer ${await tokenFor(plan, 'plan')}`], 'content-type': ['application/json'] },
      body: Buffer.from(JSON.stringify({ kind: 'Secret', metadata: { name: 's' }, data: { password: 'aHVudGVyMg==' } })),
    });
    expect(sent.status).toBe(201);
    const stored = JSON.stringify(await world.state.getPlan(plan.id));
    expect(stored).not.toContain('aHVudGVyMg==');
    const [change] = (await world.state.getPlan(plan.id))!.changes;
    const preview = JSON.stringify(await previewOf(change!));
    expect(preview).not.toContain('aHVudGVyMg==');
    expect(preview).toContain('[REDACTED]');
  });

  it('makes a DELETE with DeleteOptions a dry run in its body too (the API server ignores the query then)', async () => {
    const { agent, connection, grant } = world;
    const plan = await openPlan(deps(), { agent, connection, grant, reason: 'clean up', command: 'kubectl delete cm one' });
    world.upstream.answer = json(200, { kind: 'Status', status: 'Success' });
    const sent = await world.send({
      method: 'DELETE',
      path: '/api/v1/namespaces/prod/configmaps/one',
      headers: { authorization: [`Bearer ${await tokenFor(plan, 'plan')}`], 'content-type': ['application/json'] },
      body: Buffer.from('{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}'),
    });
    expect(sent.status).toBe(200);
    const forwarded = world.upstream.forwarded[0]!;
    expect(forwarded.pathAndQuery).toBe('/api/v1/namespaces/prod/configmaps/one?dryRun=All');
    expect(JSON.parse(forwarded.body.toString('utf8'))).toEqual({ kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background', dryRun: ['All'] });
    const [change] = (await world.state.getPlan(plan.id))!.changes;
    const preview = await previewOf(change!);
    expect(preview.body).not.toContain('dryRun');
    expect(preview.deletes!.join('\n')).toContain('propagationPolicy: Background');
  });

  it('sends a DELETE with empty protobuf DeleteOptions (client-go, Helm) without a body, and refuses other protobuf', async () => {
    const { agent, connection, grant } = world;
    const plan = await openPlan(deps(), { agent, connection, grant, reason: 'clean up', command: 'helm uninstall' });
    world.upstream.answer = json(200, { kind: 'Status', status: 'Success' });
    const token = await tokenFor(plan, 'plan');
    const typeMeta = Buffer.from([0x0a, 2, 0x76, 0x31, 0x12, 13, ...Buffer.from('DeleteOptions')]);
    const envelope = (raw: number[]) => Buffer.concat([Buffer.from('k8s\0', 'latin1'), Buffer.from([0x0a, typeMeta.length]), typeMeta, Buffer.from([0x12, raw.length, ...raw])]);
    const remove = (body: Buffer) =>
      world.send({ method: 'DELETE', path: '/api/v1/namespaces/prod/configmaps/one', headers: { authorization: [`Bearer ${token}`], 'content-type': ['application/vnd.kubernetes.protobuf'] }, body });
    const empty = await remove(envelope([]));
    expect(empty.status).toBe(200);
    expect(world.upstream.forwarded[0]!.body.length).toBe(0);
    expect(world.upstream.forwarded[0]!.pathAndQuery).toBe('/api/v1/namespaces/prod/configmaps/one?dryRun=All');
    await empty.record();
    // Shown as what they are: the defaults (the delete's preview reads the live object).
    const [change] = (await world.state.getPlan(plan.id))!.changes;
    expect((await previewOf(change!)).problems).toEqual([]);
    const withOptions = await remove(envelope([0x08, 0x05]));
    expect(withOptions.status).toBe(400);
    expect(world.upstream.forwarded.filter((forwarded) => forwarded.method === 'DELETE')).toHaveLength(1);
  });

  it("answers an update of an object the plan creates (Helm's new release record) with the dry run of its create", async () => {
    const { agent, connection, grant } = world;
    const plan = await openPlan(deps(), { agent, connection, grant, reason: 'upgrade', command: 'helm upgrade' });
    const token = await tokenFor(plan, 'plan');
    // The cluster: a create is admitted; the update of what does not exist is 404 (the create was a dry run).
    world.upstream.answer = (forwarded, response) => {
      const created = forwarded.method === 'POST';
      response.writeHead(created ? 201 : 404, { 'content-type': 'application/json' });
      response.end(JSON.stringify(created ? { kind: 'ConfigMap', metadata: { name: 'rec', namespace: 'prod' }, data: { status: 'deployed' } } : { kind: 'Status', code: 404 }));
    };
    const update = (name: string) =>
      world.send({
        method: 'PUT',
        path: `/api/v1/namespaces/prod/configmaps/${name}`,
        headers: { authorization: [`Bearer ${token}`], 'content-type': ['application/json'] },
        body: Buffer.from(JSON.stringify({ kind: 'ConfigMap', metadata: { name, namespace: 'prod' }, data: { status: 'deployed' } })),
      });
    // Nothing created in that collection yet: the 404 stands, and it is not planned.
    const alone = await update('rec');
    expect(alone.status).toBe(404);
    await alone.record();
    expect((await world.state.getPlan(plan.id))!.changes).toHaveLength(0);
    expect((await create(token, 'rec')).status).toBe(201);
    world.upstream.forwarded.length = 0;
    const after = await update('rec');
    expect(after.status).toBe(201);
    await after.record();
    expect(world.upstream.forwarded.map((forwarded) => `${forwarded.method} ${forwarded.pathAndQuery}`)).toEqual([
      'PUT /api/v1/namespaces/prod/configmaps/rec?dryRun=All',
      'POST /api/v1/namespaces/prod/configmaps?dryRun=All',
      'GET /api/v1/namespaces/prod/configmaps/rec',
    ]);
    const changes = (await world.state.getPlan(plan.id))!.changes;
    expect(changes.map((change) => `${change.method} ${change.path}`)).toEqual(['POST /api/v1/namespaces/prod/configmaps', 'PUT /api/v1/namespaces/prod/configmaps/rec']);
    // Bound to the update as sent, and recorded: the create's dry run names the update it stands for.
    expect(changes[1]!.query).toBe('');
    const sentAsCreate = [...world.records.records.values()].find((record) => record.method === 'POST' && record.reason.includes('an object the plan creates'));
    expect(sentAsCreate).toMatchObject({ decision: 'allowed', query: 'dryRun=All', status: 201 });
  });

  it('refuses a change once the plan is closed', async () => {
    const plan = await planned(['one']);
    await closePlan(deps(), plan, world.connection, world.grant);
    const late = await create(await tokenFor(plan, 'plan'), 'two');
    expect(late.status).toBe(403);
    expect(causeOf(await late.text())).toBe('plan_not_open');
  });
});

describe('airlock apply: the gateway', () => {
  it('passes each planned change once, without dryRun, recorded with the plan and its approval', async () => {
    const plan = await approved(await planned(['one', 'two']));
    const token = await tokenFor(plan, 'apply');
    world.upstream.forwarded.length = 0;
    for (const name of ['one', 'two']) {
      const sent = await create(token, name);
      expect(sent.status).toBe(201);
      expect(await sent.record()).toMatchObject({ planId: plan.id, approvalId: plan.approvalId, decision: 'allowed', query: 'fieldManager=kubectl-client-side-apply' });
    }
    expect(world.upstream.forwarded.map((forwarded) => forwarded.pathAndQuery)).toEqual(Array(2).fill('/api/v1/namespaces/prod/configmaps?fieldManager=kubectl-client-side-apply'));
    expect(held).toBe(0);
    // Twice: the second is a request without a plan, held as usual.
    const again = await create(token, 'one');
    expect(again.status).toBe(403);
    expect(held).toBe(1);
  });

  it('holds a request that is not in the plan', async () => {
    const plan = await approved(await planned(['one']));
    const other = await create(await tokenFor(plan, 'apply'), 'not-planned');
    expect(other.status).toBe(403);
    expect(held).toBe(1);
    expect((await other.record())?.planId).toBe(plan.id);
  });

  it('cannot be applied twice, nor before approval', async () => {
    const plan = await planned(['one']);
    const { plan: closed } = await closePlan(deps(), plan, world.connection, world.grant);
    await expect(startApply(deps(), closed)).rejects.toMatchObject({ code: 'plan_not_approved' });
    await decide(deps(), closed.approvalId!, 'oncall@example.com', 'approve');
    const applying = await startApply(deps(), (await world.state.getPlan(plan.id))!);
    expect(applying.status).toBe('applying');
    await expect(startApply(deps(), (await world.state.getPlan(plan.id))!)).rejects.toMatchObject({ code: 'plan_not_applicable' });
  });

  it('expires with its approval', async () => {
    const plan = await approved(await planned(['one']));
    await world.state.updatePlan(plan.id, ['applying'], { expiresAt: Date.now() - 1 });
    const late = await create(await tokenFor(plan, 'apply'), 'one');
    expect(late.status).toBe(403);
    expect(causeOf(await late.text())).toBe('plan_not_applying');
    expect(world.upstream.forwarded.filter((forwarded) => !forwarded.pathAndQuery.includes('dryRun'))).toHaveLength(0);
  });

  it('is cancelled by the kill switch: open, pending and applying plans alike', async () => {
    const applying = await approved(await planned(['one']));
    const { agent, connection, grant } = world;
    const open = await openPlan(deps(), { agent, connection, grant, reason: 'another', command: 'kubectl apply' });
    const token = await tokenFor(applying, 'apply');
    await revokeAgent(deps(), (await world.state.getAgent(agent.id))!, 'admin');
    expect((await world.state.getPlan(applying.id))!.status).toBe('cancelled');
    expect((await world.state.getPlan(open.id))!.status).toBe('cancelled');
    const after = await create(token, 'one');
    expect(after.status).toBe(403);
  });

  it('a closed plan with its approval pending is cancelled with its window', async () => {
    const plan = await planned(['one']);
    const { approval } = await closePlan(deps(), plan, world.connection, world.grant);
    await revokeAgent(deps(), (await world.state.getAgent(world.agent.id))!, 'admin');
    expect((await world.state.getApproval(approval!.id))!.status).toBe('cancelled');
    await expect(startApply(deps(), (await world.state.getPlan(plan.id))!)).rejects.toMatchObject({ code: 'plan_not_applicable' });
  });
});

describe('the command an approver reads', () => {
  it('has literal values and credential-like options redacted', () => {
    expect(redactCommandLine('kubectl create secret generic s --from-literal=password=hunter2 --token abc --kubeconfig=x')).toBe(
      'kubectl create secret generic s --from-literal=password=[REDACTED] --token [REDACTED] --kubeconfig=x',
    );
  });
});

describe('the dryRun parameter', () => {
  it('is left out of what a change is bound to, and added once', () => {
    expect(withoutDryRun('a=1&dryRun=All&b=2')).toBe('a=1&b=2');
    expect(withDryRun('a=1&dryRun=All')).toBe('a=1&dryRun=All');
    expect(withDryRun('')).toBe('dryRun=All');
  });
});

describe("the plan's approval page", () => {
  /** The page's routes over this world's ports, and an approver's link into one approval. */
  async function pageOf(approvalId: string) {
    const links = new ApprovalLinks(Buffer.alloc(32, 7), Date.now);
    const services = { ...deps(), transcripts: world.transcripts, links } as unknown as Services;
    const routes = approvalRoutes(async () => services);
    const approval = (await world.state.getApproval(approvalId))!;
    const sig = new URL(await links.link('https://airlock.example', approval, 'oncall@example.com')).searchParams.get('sig')!;
    const event = (method: string, body?: string): APIGatewayProxyEvent =>
      ({
        httpMethod: method,
        resource: '/approvals/{id}',
        pathParameters: { id: approvalId },
        queryStringParameters: method === 'GET' ? { sig } : null,
        headers: body ? { 'content-type': 'application/x-www-form-urlencoded' } : {},
        body: body ?? null,
        isBase64Encoded: false,
      }) as unknown as APIGatewayProxyEvent;
    const html = String((await routes(event('GET'), {} as Context)).body);
    const decide = async (decision: string) => {
      const form = /name="form" value="([^"]+)"/.exec(html)![1]!;
      return routes(event('POST', new URLSearchParams({ sig, form, decision }).toString()), {} as Context);
    };
    return { html, decide };
  }

  it('shows every change with its body and dry-run diff, and offers Approve', async () => {
    const plan = await planned(['one', 'x'.repeat(3000)]);
    const window = await windowActivity({ agentName: world.agent.name, connection: world.connection.name, grant: world.grant }, world.records);
    const { approval } = await closePlan(deps(), plan, world.connection, world.grant, window);
    const { html, decide } = await pageOf(approval!.id);
    // The window once, for all its changes: the agent's reason and what it did (its two dry runs).
    expect(html.match(/<h3>This window<\/h3>/g)).toHaveLength(1);
    expect(html).toContain('So far: 2 allowed');
    expect(html).toContain('Change 1 of 2: POST configmaps in prod (create)');
    expect(html).toContain('Change 2 of 2');
    expect(html).toContain('key: value-one');
    expect(html).toContain('x'.repeat(3000));
    expect(html.match(/Dry run against the live object/g)).toHaveLength(2);
    expect(html).toContain('value="approve"');
    const email = approvalEmail(approval!, 'oncall@example.com', 'https://airlock.example/a?sig=b').text;
    expect(email).toContain('    Object:   ConfigMap prod/one');
    expect((await decide('approve')).status).toBe(200);
  });

  it('offers no Approve when a held change cannot be shown, and refuses a POST approve with 409', async () => {
    const { agent, connection, grant } = world;
    const plan = await openPlan(deps(), { agent, connection, grant, reason: 'broken', command: 'kubectl create -f dir/' });
    const token = await tokenFor(plan, 'plan');
    world.upstream.answer = json(201, { kind: 'ConfigMap', metadata: { name: 'dry' } });
    expect((await create(token, 'fine')).status).toBe(201);
    const broken = await world.send({
      method: 'POST',
      path: '/api/v1/namespaces/prod/configmaps',
      headers: { authorization: [`Bearer ${token}`], 'content-type': ['application/json'] },
      body: Buffer.from('{"kind": "ConfigMap", "metadata": {'),
    });
    expect(broken.status).toBe(201);
    await broken.record();
    const { approval } = await closePlan(deps(), (await world.state.getPlan(plan.id))!, connection, grant);
    const { html, decide } = await pageOf(approval!.id);
    expect(html).toContain('key: value-fine');
    expect(html).toContain('Airlock cannot show what this request does, so it cannot be approved.');
    expect(html).toMatch(/change 2: the body could not be read as application\/json/);
    expect(html).not.toContain('value="approve"');
    expect(html).toContain('value="deny"');
    const posted = await decide('approve');
    expect(posted.status).toBe(409);
    expect(String(posted.body)).toContain('cannot be approved');
    expect((await world.state.getApproval(approval!.id))!.status).toBe('pending');
    expect(approvalEmail(approval!, 'oncall@example.com', 'https://airlock.example/a?sig=b').text).toContain('CANNOT BE SHOWN (no Approve)');
  });

  it('offers no Approve when a held change has no preview to show (not stored)', async () => {
    const plan = await planned(['one']);
    world.transcripts.objects.delete(plan.changes[0]!.preview!.key!);
    const { approval } = await closePlan(deps(), plan, world.connection, world.grant);
    const { html } = await pageOf(approval!.id);
    expect(html).toContain('change 1: its preview is not available');
    expect(html).not.toContain('value="approve"');
  });
});
