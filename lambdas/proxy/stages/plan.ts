// Plan and apply (core/plans.ts). A token bound to a plan changes only what
// happens to mutating requests the policy allows or holds; reads pass as
// usual and denied requests were refused by scope already.
//
//   plan  : the request is forwarded with dryRun=All (recorded so: the record's
//           query says it and names the plan), the API server's answer is
//           collected into the plan — fingerprint, redacted body, redacted
//           answer — before the agent gets it. Nothing in the cluster changes.
//   apply : a request whose fingerprint is a planned change passes once (the
//           spend is a conditional write); any other request goes on to the
//           approval gate exactly as without a plan (held or refused).
//
// The plan is read now, like the window: a cancelled, expired or foreign plan
// refuses (403), a store that cannot be read refuses (503).
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { Plan, PlanChange } from '../../core/model.ts';
import { describeKubeRequest, kubeTarget } from '../../core/kube-request.ts';
import { envelopedObject } from '../../core/protobuf.ts';
import { isMutatingVerb, MAX_PLAN_CHANGES, PLAN_PREVIEW_LINE_CHARS, PLAN_PREVIEW_LINES, planChangeFingerprint, withDryRun } from '../../core/plans.ts';
import type { ClusterAnswer } from '../../core/ports.ts';
import { loadPreview } from '../lazy.ts';
import { AirlockError } from '../../core/status.ts';
import { errorText } from '../../core/errors.ts';
import type { Forwarded, Planned, ResolvedOptions, Scoped } from './context.ts';

/**
 * Subresources whose writes the API server runs as a dry run when asked in the
 * query. Any other (eviction, binding, token, ...) is refused under a plan
 * rather than risk a real change.
 */
const PLANNABLE_SUBRESOURCES = new Set(['', 'status', 'scale']);

/** The most of a dry-run answer read back (a single object; anything longer is refused rather than half-planned). */
const MAX_DRY_RUN_ANSWER_BYTES = 3 * 1024 * 1024;

/** Planned: it passes as planned. Scoped (its record naming the plan): the approval gate decides, as without a plan. */
export async function plan(scoped: Scoped, options: ResolvedOptions): Promise<Scoped | Planned> {
  const { claims, kube, request, agent, connection, grant, decision, bound } = scoped;
  if (!claims.plan) return scoped;
  const record = scoped.record;
  const current = await readPlan(claims.plan.planId, options, record.id);
  if (!current || current.agentId !== agent.id || current.connection !== connection.name || current.grantId !== grant.id) {
    throw new AirlockError(403, 'plan_not_found', `plan ${claims.plan.planId} is not a plan of this agent in window ${grant.id}`);
  }
  const named = { ...record, planId: current.id };
  const asUsual: Scoped = { ...scoped, record: named };
  if (scoped.selfReview || !isMutatingVerb(kube.verb)) return asUsual;
  const bodySha256 = createHash('sha256').update(request.body).digest('hex');
  const fingerprint = planChangeFingerprint({
    agentId: agent.id,
    connection: connection.name,
    method: request.method,
    path: kube.path,
    query: kube.query,
    bodySha256,
    contentType: request.headers['content-type']?.[0],
    policyVersion: connection.policyVersion,
  });
  if (claims.plan.mode === 'plan') {
    if (current.status !== 'open') throw new AirlockError(403, 'plan_not_open', `plan ${current.id} is ${current.status}: nothing more can be planned in it`);
    if (!PLANNABLE_SUBRESOURCES.has(kube.subresource)) {
      throw new AirlockError(403, 'not_plannable', `${describeKubeRequest(kube)} cannot be sent as a dry run, so it cannot be planned; send it without a plan`);
    }
    // The API server sees the request whole and changes nothing; the record holds the query as sent.
    return {
      ...scoped,
      request: { ...request, body: dryRunDeleteBody(request.method, request.body) },
      bound: { ...bound, query: withDryRun(bound.query) },
      approvalId: undefined,
      // awaitRecord writes the decision's reason into the record.
      decision: { ...decision, reason: `dry run for plan ${current.id} (${decision.reason})` },
      record: named,
      planned: { plan: current, mode: 'plan', fingerprint, bodySha256, body: request.body },
    };
  }
  if (current.status !== 'applying' || (current.expiresAt ?? 0) <= options.now()) {
    const why =
      current.status === 'applying'
        ? `its approval expired at ${new Date(current.expiresAt ?? 0).toISOString()}`
        : `it is ${current.status}${current.cancelReason ? ` (${current.cancelReason})` : ''}`;
    throw new AirlockError(403, 'plan_not_applying', `${describeKubeRequest(kube)} was sent under plan ${current.id}, which cannot be applied: ${why}`);
  }
  if (!current.changes.some((change) => change.fingerprint === fingerprint)) return asUsual;
  const spent = await options.state.spendPlanChange(current.id, fingerprint, record.id).catch((error: unknown) => {
    options.log.error('plan store unavailable; refusing', { requestId: record.id, error: errorText(error) });
    throw new AirlockError(503, 'state_unavailable', 'the plan cannot be checked right now, so nothing was forwarded; retry shortly');
  });
  // Already applied once: from here it is a request without a plan.
  if (!spent) return asUsual;
  return {
    ...scoped,
    approvalId: current.approvalId,
    decision: { ...decision, reason: `planned change of plan ${current.id}, approved in ${current.approvalId ?? '(none)'}` },
    record: { ...named, ...(current.approvalId ? { approvalId: current.approvalId } : {}) },
    planned: { plan: current, mode: 'apply', fingerprint },
  };
}

/**
 * plan mode: the dry-run answer is read whole and collected into the plan
 * before the agent sees it, so a plan closed after the command exits holds
 * every change the command made. The answer is then streamed back as usual.
 */
export async function collectDryRun(forwarded: Forwarded & Pick<Planned, 'planned'>, options: ResolvedOptions): Promise<Forwarded> {
  const { upstream, kube, request, record, planned } = forwarded;
  if (planned.mode !== 'plan' || !planned.fingerprint || !planned.bodySha256 || !planned.body) return forwarded;
  const read = await readWhole(upstream, MAX_DRY_RUN_ANSWER_BYTES);
  const sent: ClusterAnswer = { status: upstream.statusCode ?? 0, contentType: String(upstream.headers['content-type'] ?? ''), body: read };
  const { status, contentType, body: answer } = (sent.status === 404 && (await updateOfPlannedCreate(forwarded, options))) || sent;
  // Only an admitted change joins the plan (what the API server refused would fail when applied too), so only it is previewed.
  const preview = status < 300 ? await previewPlanned(forwarded, { status, contentType, body: answer }, options) : undefined;
  const change: PlanChange = {
    fingerprint: planned.fingerprint,
    method: request.method,
    path: kube.path,
    query: kube.query,
    summary: `${request.method} ${kubeTarget(kube)}${kube.namespace ? ` in ${kube.namespace}` : ' (cluster-wide)'} (${kube.verb})`,
    bodySha256: planned.bodySha256,
    ...(request.headers['content-type']?.[0] ? { mediaType: request.headers['content-type'][0].split(';')[0]!.trim().toLowerCase() } : {}),
    dryRun: { status },
    ...(preview ? { preview } : {}),
    // Only what the policy holds needs the approval: a change it allows outright passes without one (Helm's release records).
    held: forwarded.decision.effect === 'approve',
    requestId: record.id,
    at: options.now(),
  };
  if (status < 300) {
    const added = await options.state.addPlanChange(planned.plan.id, change, MAX_PLAN_CHANGES).catch((error: unknown) => {
      options.log.error('plan change not stored; refusing', { requestId: record.id, error: errorText(error) });
      throw new AirlockError(503, 'state_unavailable', `the change could not be added to plan ${planned.plan.id}; run \`airlock plan\` again`);
    });
    if (!added) throw new AirlockError(409, 'plan_not_open', `plan ${planned.plan.id} was closed or is full (${MAX_PLAN_CHANGES} changes): this change is not in it`);
  }
  // The answer as read, with its status and headers, streamed back by streamBack like any other.
  const replay = Object.assign(new PassThrough(), {
    statusCode: status,
    headers: { ...upstream.headers, ...(contentType ? { 'content-type': contentType } : {}), warning: '299 - "airlock plan: dry run, nothing was changed"' },
  });
  replay.end(answer);
  return { ...forwarded, upstream: replay as unknown as IncomingMessage };
}

/**
 * An update (PUT) of an object this plan creates: the create was a dry run, so the API server answers
 * the update 404 — Helm's upgrade creates its new release record and then updates it, in one run. What
 * the update does once the create is applied is what the API server makes of the same body created, so
 * that dry run (dryRun=All, recorded through the ClusterReader) is sent instead and its answer goes
 * back. Nothing changes either way, and the change stays bound to the update exactly as sent. Undefined
 * (the 404 stands) when the plan creates nothing in that collection or the dry run cannot be sent.
 */
async function updateOfPlannedCreate(forwarded: Forwarded & Pick<Planned, 'planned'>, options: ResolvedOptions): Promise<ClusterAnswer | undefined> {
  const { request, kube, planned, agent, connection, grant, record } = forwarded;
  if (request.method !== 'PUT' || kube.verb !== 'update' || kube.subresource !== '' || !kube.name || !options.cluster) return undefined;
  const collection = kube.path.slice(0, kube.path.lastIndexOf('/'));
  if (!planned.plan.changes.some((change) => change.method === 'POST' && change.path === collection)) return undefined;
  const contentType = request.headers['content-type']?.[0];
  try {
    const created = await options.cluster.send({
      session: { agentId: agent.id, agentName: agent.name, grantId: grant.id },
      connection,
      method: 'POST',
      path: collection,
      query: 'dryRun=All',
      ...(contentType ? { contentType } : {}),
      body: planned.body!,
      target: { verb: 'create', apiGroup: kube.apiGroup, resource: kube.resource, subresource: '', namespace: kube.namespace, name: kube.name },
      purpose: `plan ${planned.plan.id}: update ${record.id} of an object the plan creates, sent as its create (dryRun=All)`,
    });
    return created.status < 300 ? created : undefined;
  } catch (error) {
    options.log.warn('plan: the create behind an update could not be sent as a dry run', { requestId: record.id, error: errorText(error) });
    return undefined;
  }
}

/**
 * A DELETE with a body: the API server reads its DeleteOptions from the body
 * alone and ignores the query's dryRun, so the body says dryRun too. The
 * change stays bound to the body the agent sent (its hash is taken before).
 */
function dryRunDeleteBody(method: string, body: Buffer): Buffer {
  if (method !== 'DELETE' || body.length === 0) return body;
  // client-go's typed clients (Helm's release storage) send empty DeleteOptions as protobuf: the same as none.
  if (isEmptyProtobufObject(body)) return Buffer.alloc(0);
  let options: unknown;
  try {
    options = JSON.parse(body.toString('utf8'));
  } catch {
    options = undefined;
  }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new AirlockError(400, 'not_plannable', 'a DELETE under a plan must carry JSON DeleteOptions, empty ones, or none, so that it can be sent as a dry run');
  }
  return Buffer.from(JSON.stringify({ ...options, dryRun: ['All'] }));
}

/** A Kubernetes protobuf envelope holding an object with no field set (empty DeleteOptions). Anything else, or anything that does not parse, is not. */
function isEmptyProtobufObject(body: Buffer): boolean {
  try {
    return envelopedObject(body).length === 0;
  } catch {
    return false;
  }
}

async function readPlan(id: string, options: ResolvedOptions, requestId: string): Promise<Plan | undefined> {
  return options.state.getPlan(id).catch((error: unknown) => {
    options.log.error('state store unavailable; refusing', { requestId, error: errorText(error) });
    throw new AirlockError(503, 'state_unavailable', 'the plan cannot be checked right now, so nothing was forwarded; retry shortly');
  });
}

async function readWhole(stream: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > limit) {
      stream.destroy();
      throw new AirlockError(502, 'dry_run_too_large', `the API server's dry-run answer is larger than ${limit} bytes; it cannot be planned`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * What the change would do, for the approver, as for a held request (proxy/preview.ts): the body as the agent sent
 * it (and will send it to apply), whole and redacted; the dry-run answer the API server just gave, diffed against
 * the live object; for a delete the live object. Kept in the transcript store; the plan item keeps its key, its
 * problems (a held change with any cannot be approved: handlers/approvals.ts) and the email's lines.
 */
async function previewPlanned(forwarded: Forwarded & Pick<Planned, 'planned'>, dryRun: ClusterAnswer, options: ResolvedOptions): Promise<PlanChange['preview']> {
  const { request, kube, agent, connection, grant, record, planned } = forwarded;
  // Empty protobuf DeleteOptions (client-go, Helm) say nothing: the defaults, as with no body.
  const body = request.method === 'DELETE' && isEmptyProtobufObject(planned.body!) ? Buffer.alloc(0) : planned.body!;
  const { workOutPreview, keepPreview, planChangePreviewKeyFor } = await loadPreview();
  const preview = await workOutPreview(
    { requestId: record.id, agent, connection, grant, kube, method: request.method, body, contentType: body.length ? request.headers['content-type']?.[0] : undefined },
    { reader: options.cluster, records: options.records },
    { dryRun, window: false, purpose: `preview of change ${record.id} of plan ${planned.plan.id}` },
  );
  return keepPreview(preview, planChangePreviewKeyFor(planned.plan.id, record.id), options.transcripts, { lines: PLAN_PREVIEW_LINES, lineChars: PLAN_PREVIEW_LINE_CHARS });
}
