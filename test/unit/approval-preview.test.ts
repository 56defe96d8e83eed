// The approver's preview (core/preview.ts, proxy/preview.ts) through the in-memory
// ports: the whole body, redacted, with the fields a reviewer must not miss first;
// the dry run diffed against the live object; a delete's live object; and a
// preview that cannot show the change, which then cannot be approved.
import { describe, expect, it } from 'vitest';
import type { ClusterAnswer, ClusterCall, ClusterReader } from '../../lambdas/core/ports.ts';
import { parseDocuments, summarizeDocument, type ChangePreview } from '../../lambdas/core/preview.ts';
import { renderChangePreview } from '../../lambdas/core/preview-render.ts';
import { approvalEmail } from '../../lambdas/core/approvals.ts';
import { previewKeyFor } from '../../lambdas/proxy/preview.ts';
import { RequestApprovals } from '../../lambdas/proxy/approval-gate.ts';
import { lifecycleWorld, refusal } from '../support/lifecycle-world.ts';
import { parseKubeRequest } from '../../lambdas/core/kube-request.ts';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { ApprovalLinks } from '../../lambdas/core/approvals.ts';
import { approvalRoutes } from '../../lambdas/handlers/approvals.ts';
import type { Services } from '../../lambdas/runtime/services.ts';
import { MemoryTranscriptStore } from '../support/memory.ts';

const PADDING = 'x'.repeat(2100);
const privilegedPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'debug', namespace: 'prod', annotations: { padding: PADDING } },
  spec: {
    hostPID: true,
    serviceAccountName: 'admin',
    containers: [
      {
        name: 'shell',
        image: 'busybox:1.36',
        securityContext: { privileged: true, runAsUser: 0, allowPrivilegeEscalation: true, capabilities: { add: ['SYS_ADMIN'] } },
        env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: 'db-password', key: 'pw' } } }],
      },
    ],
    volumes: [{ name: 'root', hostPath: { path: '/' } }],
  },
};

/** A cluster that answers from a table, and remembers what it was asked. */
class TableCluster implements ClusterReader {
  readonly calls: ClusterCall[] = [];
  private readonly answers: Record<string, { status: number; body: unknown } | Error>;
  constructor(answers: Record<string, { status: number; body: unknown } | Error>) {
    this.answers = answers;
  }
  async send(call: ClusterCall): Promise<ClusterAnswer> {
    this.calls.push(call);
    const answer = this.answers[`${call.method} ${call.path}${call.query ? `?${call.query}` : ''}`];
    if (answer instanceof Error) throw answer;
    if (!answer) return { status: 404, contentType: 'application/json', body: Buffer.from('{"kind":"Status","message":"not found"}') };
    return { status: answer.status, contentType: 'application/json', body: Buffer.from(JSON.stringify(answer.body)) };
  }
}

function world(cluster: ClusterReader | undefined) {
  const w = lifecycleWorld();
  const transcripts = new MemoryTranscriptStore();
  const gate = new RequestApprovals({ ...w.deps, ...(cluster ? { cluster } : {}), transcripts });
  return { ...w, gate, transcripts };
}

async function hold(w: ReturnType<typeof world>, options: Parameters<ReturnType<typeof lifecycleWorld>['held']>[1]) {
  const grant = w.state.grants.get('gr_A') ?? w.activeWindow('gr_A');
  const id = (await refusal(w.gate.authorize(w.held(grant, options)))).details!.approvalId as string;
  const approval = w.state.approvals.get(id)!;
  const stored = await w.transcripts.get(previewKeyFor(id));
  return { approval, preview: stored ? (JSON.parse(stored) as ChangePreview) : undefined };
}

describe('the summary', () => {
  it('names every field a reviewer must not miss in a privileged pod, and its Secret references', () => {
    const summary = summarizeDocument(privilegedPod, true);
    expect(summary).toMatchObject({ kind: 'Pod', target: 'prod/debug', images: ['busybox:1.36'] });
    const flags = summary.flags.join('\n');
    for (const expected of [
      'privileged: true',
      'hostPID: true',
      'hostPath volume: /',
      'added capabilities: SYS_ADMIN',
      'runAsUser: 0',
      'allowPrivilegeEscalation: true',
      'service account: admin',
      'Secret reference: db-password',
    ]) {
      expect(flags).toContain(expected);
    }
  });

  it('names RBAC role references and subjects', () => {
    const binding = { kind: 'RoleBinding', metadata: { name: 'b' }, roleRef: { kind: 'ClusterRole', name: 'cluster-admin' }, subjects: [{ kind: 'ServiceAccount', name: 'bot', namespace: 'prod' }] };
    expect(summarizeDocument(binding, true).flags).toEqual(
      expect.arrayContaining([expect.stringContaining('RBAC roleRef: ClusterRole cluster-admin'), expect.stringContaining('RBAC subject: ServiceAccount prod/bot')]),
    );
  });

  it('reads multi-document YAML and refuses what it cannot read', () => {
    expect(parseDocuments(Buffer.from('a: 1\n---\nb: 2\n'), 'application/yaml')).toEqual({ documents: [{ a: 1 }, { b: 2 }] });
    expect(parseDocuments(Buffer.from('{"a":'), 'application/json')).toHaveProperty('error');
    expect(parseDocuments(Buffer.from([0x6b, 0x38, 0x73, 0]), 'application/vnd.kubernetes.protobuf')).toHaveProperty('error');
  });
});

describe('a held request carries its preview', () => {
  it('shows a large privileged pod whole, the dry run as a diff against nothing live, and the window', async () => {
    const body = JSON.stringify(privilegedPod);
    const cluster = new TableCluster({
      'POST /api/v1/namespaces/prod/pods?dryRun=All': { status: 201, body: { ...privilegedPod, metadata: { ...privilegedPod.metadata, uid: 'u1', resourceVersion: '9' } } },
    });
    const w = world(cluster);
    const { approval, preview } = await hold(w, { method: 'POST', path: '/api/v1/namespaces/prod/pods', body, contentType: 'application/json' });
    expect(preview!.problems).toEqual([]);
    expect(preview!.body).toContain(PADDING); // whole, past the old 2 KiB limit
    expect(preview!.diff).toContain('+   hostPID: true');
    expect(preview!.diff).not.toContain('resourceVersion');
    expect(preview!.notes).toContain('A new object: nothing is live under this name.');
    expect(preview!.window).toMatchObject({ grantId: 'gr_A', reason: 'fix the rollout' });
    // One call: a create the API server admits has nothing live under its name (else 409), so there is nothing to read.
    expect(cluster.calls.map((call) => `${call.method} ${call.path}?${call.query}`)).toEqual(['POST /api/v1/namespaces/prod/pods?dryRun=All']);
    expect(cluster.calls[0]!.purpose).toMatch(/^approval preview of held request req_1: dry run/);
    expect(approval.preview).toMatchObject({ key: previewKeyFor(approval.id), problems: [] });
    const email = approvalEmail(approval, 'oncall@example.com', 'https://airlock.example/approvals/x?sig=y').text;
    expect(email).toContain('! privileged: true');
    expect(email).toContain('! hostPath volume: /');
    const html = renderChangePreview(preview!);
    expect(html).toContain('hostPID: true');
    expect(html).not.toContain('cannot be approved');
  });

  it('never shows Secret values: data and stringData of a YAML Secret are redacted', async () => {
    const yaml = 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\nstringData:\n  password: hunter2\n';
    const cluster = new TableCluster({
      'PUT /api/v1/namespaces/prod/secrets/db?dryRun=All': { status: 200, body: { kind: 'Secret', metadata: { name: 'db' }, data: { password: 'aHVudGVyMg==' } } },
      'GET /api/v1/namespaces/prod/secrets/db': { status: 200, body: { kind: 'Secret', metadata: { name: 'db' }, data: { password: 'b2xk' } } },
    });
    const w = world(cluster);
    const { preview } = await hold(w, { method: 'PUT', path: '/api/v1/namespaces/prod/secrets/db', body: yaml, contentType: 'application/yaml' });
    const shown = JSON.stringify(preview);
    expect(shown).not.toContain('hunter2');
    expect(shown).not.toContain('aHVudGVyMg==');
    expect(shown).not.toContain('b2xk');
    expect(preview!.body).toContain('password: "[REDACTED]"');
  });

  it('shows a patch as the dry-run object against the live one', async () => {
    const live = { kind: 'Deployment', metadata: { name: 'web', namespace: 'prod', managedFields: [{ manager: 'kubectl' }], generation: 4 }, spec: { replicas: 3 } };
    const cluster = new TableCluster({
      'PATCH /apis/apps/v1/namespaces/prod/deployments/web?dryRun=All': { status: 200, body: { ...live, spec: { replicas: 0 } } },
      'GET /apis/apps/v1/namespaces/prod/deployments/web': { status: 200, body: live },
    });
    const w = world(cluster);
    const { preview } = await hold(w, { method: 'PATCH', path: '/apis/apps/v1/namespaces/prod/deployments/web', body: '{"spec":{"replicas":0}}', contentType: 'application/merge-patch+json' });
    expect(preview!.diff).toContain('-   replicas: 3');
    expect(preview!.diff).toContain('+   replicas: 0');
    expect(preview!.diff).not.toContain('managedFields');
    expect(preview!.objects[0]!.flags).toContain('replicas: 0 (spec.replicas)');
  });

  it("asks for a patch's dry run and its live object side by side, not one after the other", async () => {
    const live = { kind: 'ConfigMap', metadata: { name: 'c', namespace: 'prod' }, data: { mode: 'old' } };
    const table = new TableCluster({
      'PATCH /api/v1/namespaces/prod/configmaps/c?dryRun=All': { status: 200, body: { ...live, data: { mode: 'new' } } },
      'GET /api/v1/namespaces/prod/configmaps/c': { status: 200, body: live },
    });
    // The dry run answers only once the live object has been asked for: asked in turn, the hold would never end.
    let asked!: () => void;
    const liveAsked = new Promise<void>((resolve) => (asked = resolve));
    const cluster: ClusterReader = {
      send: async (call) => {
        if (call.method === 'GET') asked();
        else await liveAsked;
        return table.send(call);
      },
    };
    const { preview } = await hold(world(cluster), { method: 'PATCH', path: '/api/v1/namespaces/prod/configmaps/c', body: '{"data":{"mode":"new"}}', contentType: 'application/merge-patch+json' });
    expect(preview!.problems).toEqual([]);
    expect(preview!.diff).toContain('+   mode: new');
  });

  it('shows what a delete removes: the live object, its owners and the propagation policy', async () => {
    const pod = {
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'prod', ownerReferences: [{ kind: 'ReplicaSet', name: 'web-1', controller: true }] },
      spec: { containers: [{ name: 'c', image: 'nginx' }] },
    };
    const cluster = new TableCluster({ 'GET /api/v1/namespaces/prod/pods/web': { status: 200, body: pod } });
    const w = world(cluster);
    const { preview } = await hold(w, { method: 'DELETE', path: '/api/v1/namespaces/prod/pods/web' });
    expect(preview!.problems).toEqual([]);
    expect(preview!.live).toContain('image: nginx');
    expect(preview!.deletes!.join('\n')).toContain('ReplicaSet web-1 (controller)');
    expect(preview!.deletes!.join('\n')).toContain('propagationPolicy');
  });
});

describe('a whole object sent as Kubernetes protobuf (client-go, Helm release records)', () => {
  const protobuf = 'application/vnd.kubernetes.protobuf';
  // Any bytes: Airlock never decodes them itself, the API server's dry-run answer does.
  const body = 'k8s\u0000\n\u000c\n\u0002v1\u0012\u0006opaque';
  const release = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'sh.helm.release.v1.web.v2', namespace: 'prod', labels: { owner: 'helm', status: 'pending-upgrade' } },
    data: { release: 'H4sI' },
  };

  it('is shown as the API server decodes those exact bytes: its dry-run answer, summarized', async () => {
    const cluster = new TableCluster({ 'POST /api/v1/namespaces/prod/configmaps?dryRun=All': { status: 201, body: release } });
    const w = world(cluster);
    const { approval, preview } = await hold(w, { method: 'POST', path: '/api/v1/namespaces/prod/configmaps', body, contentType: protobuf });
    expect(preview!.problems).toEqual([]);
    expect(approval.preview!.problems).toEqual([]);
    expect(preview!.body).toContain('sh.helm.release.v1.web.v2');
    expect(preview!.body).toContain('status: pending-upgrade');
    expect(preview!.objects[0]).toMatchObject({ kind: 'ConfigMap', target: 'prod/sh.helm.release.v1.web.v2' });
    expect(preview!.notes.join('\n')).toContain('Sent as Kubernetes protobuf');
    // The exact bytes, with their content type, went to the dry run.
    expect(cluster.calls[0]!.contentType).toBe(protobuf);
    expect(cluster.calls[0]!.body.toString()).toBe(body);
  });

  it('cannot be shown (no Approve) when the dry run is refused, and never for a protobuf delete', async () => {
    const refused = new TableCluster({ 'POST /api/v1/namespaces/prod/configmaps?dryRun=All': { status: 403, body: { kind: 'Status', message: 'forbidden' } } });
    const held = await hold(world(refused), { method: 'POST', path: '/api/v1/namespaces/prod/configmaps', body, contentType: protobuf });
    expect(held.approval.preview!.problems.join('; ')).toMatch(/refused the dry run \(403: forbidden\)/);
    expect(held.preview!.body).toBeUndefined();
    const live = new TableCluster({ 'GET /api/v1/namespaces/prod/configmaps/web': { status: 200, body: release } });
    const deleted = await hold(world(live), { method: 'DELETE', path: '/api/v1/namespaces/prod/configmaps/web', body, contentType: protobuf });
    expect(deleted.approval.preview!.problems.join('; ')).toMatch(/cannot be read and redacted by Airlock/);
  });
});

describe('a collection delete', () => {
  it('counts what a list with the same selector matches, and names each', async () => {
    const items = ['a', 'b', 'c'].map((name) => ({ kind: 'Pod', metadata: { name, namespace: 'prod' } }));
    const cluster = new TableCluster({ 'GET /api/v1/namespaces/prod/pods?labelSelector=app%3Dweb': { status: 200, body: { kind: 'PodList', items } } });
    const w = world(cluster);
    const held = w.held(w.activeWindow('gr_A'), { method: 'DELETE', path: '/api/v1/namespaces/prod/pods' });
    const kube = parseKubeRequest('DELETE', '/api/v1/namespaces/prod/pods', { labelSelector: ['app=web'] });
    const id = (await refusal(w.gate.authorize({ ...held, kube }))).details!.approvalId as string;
    const preview = JSON.parse((await w.transcripts.get(previewKeyFor(id)))!) as ChangePreview;
    expect(preview.problems).toEqual([]);
    expect(preview.deletes![0]).toBe('3 object(s) match labelSelector=app=web');
    expect(preview.deletes).toContain('deletes prod/c');
  });
});

describe('a human never approves blind', () => {
  it('an unreadable body, a refused dry run, an unreachable cluster and no cluster reader are each a problem', async () => {
    const refused = new TableCluster({ 'POST /api/v1/namespaces/prod/pods?dryRun=All': { status: 403, body: { kind: 'Status', message: 'forbidden' } } });
    const cases: [ClusterReader | undefined, Parameters<ReturnType<typeof lifecycleWorld>['held']>[1], RegExp][] = [
      [refused, { method: 'POST', path: '/api/v1/namespaces/prod/pods', body: '{"kind":', contentType: 'application/json' }, /could not be read as application\/json/],
      [refused, { method: 'POST', path: '/api/v1/namespaces/prod/pods', body: JSON.stringify(privilegedPod), contentType: 'application/json' }, /refused the dry run \(403: forbidden\)/],
      [
        new TableCluster({ 'GET /api/v1/namespaces/prod/pods/web': new Error('connection refused') }),
        { method: 'DELETE', path: '/api/v1/namespaces/prod/pods/web' },
        /could not be read for the preview: connection refused/,
      ],
      [undefined, { method: 'DELETE', path: '/api/v1/namespaces/prod/pods/web' }, /no way to read the cluster/],
    ];
    for (const [cluster, options, problem] of cases) {
      const w = world(cluster);
      const { approval, preview } = await hold(w, options);
      expect(approval.preview!.problems.join('; ')).toMatch(problem);
      expect(renderChangePreview(preview!)).toContain('Airlock cannot show what this request does, so it cannot be approved.');
      expect(approvalEmail(approval, 'oncall@example.com', 'https://airlock.example/a?sig=b').text).toContain('CANNOT BE SHOWN (no Approve)');
    }
  });
});

describe('the approval page of a change it cannot show', () => {
  it('offers Deny only, and refuses a POST approve with 409 (a deny still counts)', async () => {
    const w = world(new TableCluster({ 'POST /api/v1/namespaces/prod/pods?dryRun=All': { status: 422, body: { kind: 'Status', message: 'Pod is invalid' } } }));
    const { approval } = await hold(w, { method: 'POST', path: '/api/v1/namespaces/prod/pods', body: JSON.stringify(privilegedPod), contentType: 'application/json' });
    const links = new ApprovalLinks(Buffer.alloc(32, 7), w.now);
    const services = { ...w.deps, transcripts: w.transcripts, links } as unknown as Services;
    const routes = approvalRoutes(async () => services);
    const event = (method: string, body?: string): APIGatewayProxyEvent =>
      ({
        httpMethod: method,
        resource: '/approvals/{id}',
        pathParameters: { id: approval.id },
        queryStringParameters: method === 'GET' ? { sig } : null,
        headers: body ? { 'content-type': 'application/x-www-form-urlencoded' } : {},
        body: body ?? null,
        isBase64Encoded: false,
      }) as unknown as APIGatewayProxyEvent;
    const sig = new URL(await links.link('https://airlock.example', approval, 'oncall@example.com')).searchParams.get('sig')!;
    const page = await routes(event('GET'), {} as Context);
    expect(page.status).toBe(200);
    const html = String(page.body);
    expect(html).toContain('Airlock cannot show what this request does, so it cannot be approved.');
    expect(html).toContain('Pod is invalid');
    expect(html).not.toContain('value="approve"');
    expect(html).toContain('value="deny"');
    const form = /name="form" value="([^"]+)"/.exec(html)![1]!;
    const posted = await routes(event('POST', new URLSearchParams({ sig, form, decision: 'approve' }).toString()), {} as Context);
    expect(posted.status).toBe(409);
    expect(String(posted.body)).toContain('cannot be approved');
    expect(w.state.approvals.get(approval.id)!.status).toBe('pending');
    const denied = await routes(event('POST', new URLSearchParams({ sig, form, decision: 'deny' }).toString()), {} as Context);
    expect(denied.status).toBe(200);
    expect(w.state.approvals.get(approval.id)!.status).toBe('denied');
  });
});
