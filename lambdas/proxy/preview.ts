// Works out what a held request would do, for the approver (core/preview.ts
// renders it): the body parsed and redacted; for a write, the API server's own
// answer to the same request with dryRun=All, diffed against the live object;
// for a delete, the live object(s) and what goes with them; and the window's
// activity so far. Every call to the cluster goes through the ClusterReader,
// which records it. Whatever cannot be worked out is a problem on the preview,
// and a preview with problems cannot be approved.
import type { ClusterReader, RecordStore } from '../core/ports.ts';
import { commandLine, type KubeRequest } from '../core/kube-request.ts';
import { redactCommandLine, redactText } from '../core/redaction.ts';
import { mediaType } from '../core/approvals.ts';
import { errorText } from '../core/errors.ts';
import { parseDocuments, redactDocument, stripNoise, summarizeDocument, toYaml, diffLines, type ChangePreview, type WindowActivity } from '../core/preview.ts';
import type { RedactionContext } from '../core/redaction.ts';
import type { HeldRequest } from './gateway.ts';
import { PREVIEW_USER_AGENT } from './cluster-reader.ts';

const WRITES = new Set(['create', 'update', 'patch']);
const RECENT = 8;
/** The most stdin an approver is shown; more cannot be shown whole, so it cannot be approved. */
const EXEC_STDIN_PREVIEW_BYTES = 16 * 1024;

export interface PreviewDeps {
  reader: ClusterReader | undefined;
  records: RecordStore;
}

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function previewHeld(held: HeldRequest, deps: PreviewDeps): Promise<ChangePreview> {
  const { kube } = held;
  const preview: ChangePreview = { problems: [], notes: [], objects: [] };
  if (kube.command) {
    execPreview(held, kube.command, preview);
    await addWindow(held, deps, preview);
    return preview;
  }
  const context: RedactionContext = { secretsResource: kube.resource === 'secrets' };
  const type = mediaType(held.contentType);
  const parsed = parseDocuments(held.body, type);
  let documents: unknown[] = [];
  if ('error' in parsed) preview.problems.push(parsed.error);
  else {
    documents = parsed.documents;
    const fullObject = kube.verb !== 'patch' || type.startsWith('application/apply-patch');
    const redacted = documents.map((document) => redactDocument(document, context));
    // A delete's body is DeleteOptions (shown below, under what the delete takes): the summary is of the live object.
    const deletes = kube.verb === 'delete' || kube.verb === 'deletecollection';
    preview.objects = deletes ? [] : redacted.map((document) => summarizeDocument(document, fullObject));
    if (redacted.length) preview.body = redacted.map((document) => toYaml(document)).join('---\n');
  }
  try {
    if (kube.kind === 'resource' && WRITES.has(kube.verb) && !(kube.resource === 'pods' && kube.subresource === 'eviction')) {
      await dryRunWrite(held, documents, preview, context, deps);
    } else if (kube.kind === 'resource' && (kube.verb === 'delete' || kube.verb === 'deletecollection' || (kube.resource === 'pods' && kube.subresource === 'eviction'))) {
      await liveDeleted(held, documents, preview, context, deps);
    } else if (kube.verb === 'get' || kube.verb === 'list' || kube.verb === 'watch') {
      preview.notes.push('A read: nothing in the cluster changes.');
    } else if (kube.kind === 'resource' && kube.verb !== 'create') {
      preview.notes.push(`A ${kube.verb} of ${kube.resource}${kube.subresource ? `/${kube.subresource}` : ''}: Airlock has no dry run for it; the request line and body above are what it does.`);
    }
  } catch (error) {
    preview.problems.push(`the cluster could not be read for the preview: ${errorText(error, { name: false })}`);
  }
  await addWindow(held, deps, preview);
  return preview;
}

async function addWindow(held: HeldRequest, deps: PreviewDeps, preview: ChangePreview): Promise<void> {
  try {
    preview.window = await windowActivity(held, deps.records);
  } catch (error) {
    preview.notes.push(`The window's activity could not be read: ${errorText(error, { name: false })}`);
  }
}

/** An exec (`airlock exec`): nothing to dry-run; the command line and stdin are what it does, shown whole or not approvable. */
function execPreview(held: HeldRequest, command: readonly string[], preview: ChangePreview): void {
  const { kube } = held;
  const container = new URLSearchParams(kube.query).get('container') ?? undefined;
  const stdin = held.body.length ? held.body : undefined;
  let shownStdin: string | undefined;
  if (new URLSearchParams(kube.query).get('stdin') === 'true') {
    const text = (stdin ?? Buffer.alloc(0)).toString('utf8');
    if (stdin && !Buffer.from(text, 'utf8').equals(stdin)) preview.problems.push('the standard input is not UTF-8 text, so it cannot be shown');
    else if (Buffer.byteLength(text) > EXEC_STDIN_PREVIEW_BYTES)
      preview.problems.push(`the standard input is ${Buffer.byteLength(text)} bytes; at most ${EXEC_STDIN_PREVIEW_BYTES} can be shown to an approver`);
    else shownStdin = redactText(text);
  }
  preview.exec = {
    pod: `${kube.namespace}/${kube.name}`,
    ...(container ? { container } : {}),
    command: redactCommandLine(commandLine(command)),
    ...(shownStdin !== undefined ? { stdin: shownStdin } : {}),
  };
  preview.notes.push('A command run in a container: Airlock has no dry run for it; the command line and standard input above are what it does, with the rights of the container.');
}

function call(held: HeldRequest, deps: PreviewDeps, method: string, path: string, query: string, body: Buffer, what: string, target: Partial<KubeRequest> = {}) {
  if (!deps.reader) throw new Error('this gateway has no way to read the cluster for previews');
  const { kube } = held;
  return deps.reader.send({
    session: { agentId: held.agent.id, agentName: held.agent.name, grantId: held.grant.id },
    connection: held.connection,
    method,
    path,
    query,
    ...(method === held.method && body.length && held.contentType ? { contentType: held.contentType } : {}),
    body,
    target: { verb: kube.verb, apiGroup: kube.apiGroup, resource: kube.resource, subresource: kube.subresource, namespace: kube.namespace, name: kube.name, ...target },
    purpose: `approval preview of held request ${held.requestId}: ${what}`,
  });
}

function json(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

function statusMessage(status: number, body: Buffer): string {
  const answer = json(body);
  return isObject(answer) && typeof answer.message === 'string' ? `${status}: ${answer.message}` : `${status}`;
}

function shown(value: unknown, context: RedactionContext): string {
  return toYaml(stripNoise(redactDocument(value, context)));
}

async function dryRunWrite(held: HeldRequest, documents: unknown[], preview: ChangePreview, context: RedactionContext, deps: PreviewDeps): Promise<void> {
  const { kube } = held;
  const params = new URLSearchParams(kube.query);
  if (!params.getAll('dryRun').includes('All')) params.append('dryRun', 'All');
  const dry = await call(held, deps, held.method, kube.path, params.toString(), held.body, 'dry run (dryRun=All)');
  if (dry.status < 200 || dry.status >= 300) {
    preview.problems.push(`the API server refused the dry run (${statusMessage(dry.status, dry.body)})`);
    return;
  }
  const after = json(dry.body);
  if (!isObject(after)) {
    preview.problems.push('the dry run answered something that is not a JSON object');
    return;
  }
  // The object the request addresses: its own path, or for a create the name it gives.
  const first = documents[0];
  const givenName = isObject(first) && isObject(first.metadata) && typeof first.metadata.name === 'string' ? first.metadata.name : '';
  const livePath = kube.verb === 'create' && kube.subresource === '' ? (givenName ? `${kube.path}/${encodeURIComponent(givenName)}` : '') : kube.path;
  let before = '';
  if (livePath) {
    const live = await call(held, deps, 'GET', livePath, '', Buffer.alloc(0), 'the live object', { verb: 'get', name: kube.name || givenName });
    if (live.status === 200) before = shown(json(live.body), context);
    else if (live.status === 404) preview.notes.push('A new object: nothing is live under this name.');
    else {
      preview.problems.push(`the live object could not be read (${statusMessage(live.status, live.body)})`);
      return;
    }
  } else preview.notes.push('A new object (the name is generated).');
  preview.diff = diffLines(before, shown(after, context));
}

async function liveDeleted(held: HeldRequest, documents: unknown[], preview: ChangePreview, context: RedactionContext, deps: PreviewDeps): Promise<void> {
  const { kube } = held;
  const params = new URLSearchParams(kube.query);
  const options = isObject(documents[0]) ? documents[0] : {};
  const propagation = params.get('propagationPolicy') ?? (typeof options.propagationPolicy === 'string' ? options.propagationPolicy : undefined);
  const deletes: string[] = [];
  deletes.push(
    propagation
      ? `propagationPolicy: ${propagation}${propagation === 'Orphan' ? ' (dependents are left running)' : ' (dependents owned by it are deleted too)'}`
      : 'propagationPolicy: the resource default (usually Background: dependents owned by it are deleted too)',
  );
  if (isObject(options.preconditions)) deletes.push(`preconditions: ${JSON.stringify(options.preconditions)}`);
  if (typeof options.gracePeriodSeconds === 'number') deletes.push(`gracePeriodSeconds: ${options.gracePeriodSeconds}`);
  if (kube.verb === 'deletecollection') {
    const list = new URLSearchParams();
    for (const key of ['labelSelector', 'fieldSelector']) for (const value of params.getAll(key)) list.append(key, value);
    const answer = await call(held, deps, 'GET', kube.path, list.toString(), Buffer.alloc(0), 'the objects the collection delete matches', { verb: 'list' });
    if (answer.status !== 200) {
      preview.problems.push(`the objects it would delete could not be listed (${statusMessage(answer.status, answer.body)})`);
      return;
    }
    const items = (json(answer.body) as { items?: unknown[] } | undefined)?.items ?? [];
    deletes.unshift(`${items.length} object(s) match${list.toString() ? ` ${decodeURIComponent(list.toString())}` : ' (no selector: every one)'}`);
    for (const item of items.slice(0, 50)) {
      const meta = isObject(item) && isObject(item.metadata) ? item.metadata : {};
      deletes.push(`deletes ${String(meta.namespace ? `${String(meta.namespace)}/` : '')}${String(meta.name ?? '?')}${ownersOf(meta)}`);
    }
    if (items.length > 50) deletes.push(`… and ${items.length - 50} more`);
    preview.live = items
      .slice(0, 5)
      .map((item) => shown(item, context))
      .join('---\n');
  } else {
    const path = kube.subresource === 'eviction' ? kube.path.replace(/\/eviction$/, '') : kube.path;
    const answer = await call(held, deps, 'GET', path, '', Buffer.alloc(0), 'the live object it deletes', { verb: 'get', subresource: '' });
    if (answer.status === 404) preview.notes.push('Nothing is live under this name: the delete will answer 404 Not Found.');
    else if (answer.status !== 200) {
      preview.problems.push(`the live object could not be read (${statusMessage(answer.status, answer.body)})`);
      return;
    } else {
      const live = json(answer.body);
      const meta = isObject(live) && isObject(live.metadata) ? live.metadata : {};
      const owners = ownersOf(meta);
      deletes.push(owners ? `it is owned by${owners.replace(/^ \(owned by/, '').replace(/\)$/, '')}` : 'it has no owner (ownerReferences): nothing recreates it');
      if (Array.isArray(meta.finalizers) && meta.finalizers.length) deletes.push(`finalizers: ${meta.finalizers.map(String).join(', ')}`);
      preview.live = shown(live, context);
      preview.objects.unshift(summarizeDocument(redactDocument(live, context), true));
    }
  }
  preview.deletes = deletes;
}

function ownersOf(meta: Obj): string {
  const owners = Array.isArray(meta.ownerReferences) ? (meta.ownerReferences as Obj[]) : [];
  if (!owners.length) return '';
  return ` (owned by ${owners.map((owner) => `${String(owner.kind)} ${String(owner.name)}${owner.controller ? ' (controller)' : ''}`).join(', ')})`;
}

async function windowActivity(held: HeldRequest, records: RecordStore): Promise<WindowActivity> {
  const { grant } = held;
  const since = grant.activatedAt ?? grant.requestedAt;
  const page = await records.query({ agent: held.agent.name, connection: held.connection.name, since, limit: 500 });
  // What the agent did: Airlock's own preview calls (dry runs, reads) are recorded, but are not the agent's.
  const mine = page.items.filter((record) => record.grantId === grant.id && record.id !== held.requestId && record.userAgent !== PREVIEW_USER_AGENT);
  const counts: Record<string, number> = {};
  for (const record of mine) counts[record.decision] = (counts[record.decision] ?? 0) + 1;
  return {
    grantId: grant.id,
    reason: grant.reason,
    ...(grant.ticket ? { ticket: grant.ticket } : {}),
    counts,
    recent: mine
      .slice(0, RECENT)
      .map(
        (record) => `${new Date(record.time).toISOString()} ${record.decision} ${record.method} ${record.path}${record.query ? `?${record.query}` : ''}${record.status ? ` → ${record.status}` : ''}`,
      ),
  };
}
