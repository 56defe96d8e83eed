// Works out what a change would do, for the approver (core/preview.ts renders
// it): the body parsed and redacted; for a write, the API server's own answer
// to the same request with dryRun=All, diffed against the live object; for a
// delete, the live object(s) and what goes with them; and the window's activity
// so far. A held request (approval-gate.ts) gets its dry run sent here; a plan's
// change (stages/plan.ts) already was one, and brings its answer. Every call to
// the cluster goes through the ClusterReader, which records it. Whatever cannot
// be worked out is a problem on the preview, and a preview with problems cannot
// be approved.
import type { ClusterAnswer, ClusterReader, RecordStore, TranscriptStore } from '../core/ports.ts';
import { commandLine, type KubeRequest } from '../core/kube-request.ts';
import type { Approval } from '../core/model.ts';
import { mediaType } from '../core/approvals.ts';
import { errorText } from '../core/errors.ts';
import { parseDocuments, previewLines, redactDocument, stripNoise, summarizeDocument, toYaml, diffLines, type ChangePreview } from '../core/preview.ts';
import { redactCommandLine, redactText, type RedactionContext } from '../core/redaction.ts';
import type { HeldRequest } from './gateway.ts';
import { windowActivity } from './window-activity.ts';

const WRITES = new Set(['create', 'update', 'patch']);
/** The most stdin an approver is shown; more cannot be shown whole, so it cannot be approved. */
const EXEC_STDIN_PREVIEW_BYTES = 16 * 1024;

/** Where an approval's whole preview is kept in the transcript store. */
export function previewKeyFor(approvalId: string): string {
  return `previews/${approvalId}.json`;
}

/** Where a plan change's whole preview is kept: under its plan, by the dry-run request that planned it. */
export function planChangePreviewKeyFor(planId: string, requestId: string): string {
  return `previews/${planId}/${requestId}.json`;
}

export interface PreviewDeps {
  reader: ClusterReader | undefined;
  records: RecordStore;
}

/** The change a preview is of: a held request, or a plan's change (its body as the agent sent it). */
export type PreviewSubject = Pick<HeldRequest, 'requestId' | 'agent' | 'connection' | 'grant' | 'kube' | 'method' | 'body' | 'contentType'>;

export interface PreviewOptions {
  /** The API server's answer to this very request sent with dryRun=All, when it was sent already (a plan's change). */
  dryRun?: ClusterAnswer;
  /** Whether to show the window's activity (a plan shows it once, not per change). Default true. */
  window?: boolean;
  /** Names Airlock's own calls in their records: "approval preview of held request req_…". */
  purpose?: string;
}

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function previewChange(subject: PreviewSubject, deps: PreviewDeps, options: PreviewOptions = {}): Promise<ChangePreview> {
  const { kube } = subject;
  const preview: ChangePreview = { problems: [], notes: [], objects: [] };
  const window = async (): Promise<void> => {
    if (options.window === false) return;
    try {
      preview.window = await windowActivity({ agentName: subject.agent.name, connection: subject.connection.name, grant: subject.grant, requestId: subject.requestId }, deps.records);
    } catch (error) {
      preview.notes.push(`The window's activity could not be read: ${errorText(error, { name: false })}`);
    }
  };
  if (kube.command) {
    execPreview(subject, kube.command, preview);
    await window();
    return preview;
  }
  const context: RedactionContext = { secretsResource: kube.resource === 'secrets' };
  const type = mediaType(subject.contentType);
  const parsed = parseDocuments(subject.body, type);
  // client-go's typed clients (Helm's release records) send whole objects as Kubernetes protobuf, which Airlock
  // does not decode itself: the API server's dry-run answer to these exact bytes is the object as it decodes them.
  const decodedByDryRun = 'error' in parsed && type === PROTOBUF && kube.kind === 'resource' && kube.subresource === '' && (kube.verb === 'create' || kube.verb === 'update');
  let documents: unknown[] = [];
  if ('error' in parsed) {
    if (!decodedByDryRun) preview.problems.push(parsed.error);
  } else {
    documents = parsed.documents;
    const fullObject = kube.verb !== 'patch' || type.startsWith('application/apply-patch');
    const redacted = documents.map((document) => redactDocument(document, context));
    // A delete's body is DeleteOptions (shown below, under what the delete takes): the summary is of the live object.
    const deletes = kube.verb === 'delete' || kube.verb === 'deletecollection';
    preview.objects = deletes ? [] : redacted.map((document) => summarizeDocument(document, fullObject));
    if (redacted.length) preview.body = redacted.map((document) => toYaml(document)).join('---\n');
  }
  const ask = caller(subject, deps, options.purpose ?? `approval preview of held request ${subject.requestId}`);
  const cluster = async (): Promise<void> => {
    try {
      if (kube.kind === 'resource' && WRITES.has(kube.verb) && !(kube.resource === 'pods' && kube.subresource === 'eviction')) {
        const after = await dryRunWrite(subject, documents, preview, context, ask, options.dryRun);
        if (decodedByDryRun) showDecoded(after, preview, context, 'error' in parsed ? parsed.error : '');
      } else if (kube.kind === 'resource' && (kube.verb === 'delete' || kube.verb === 'deletecollection' || (kube.resource === 'pods' && kube.subresource === 'eviction'))) {
        await liveDeleted(subject, documents, preview, context, ask);
      } else if (kube.verb === 'get' || kube.verb === 'list' || kube.verb === 'watch') {
        preview.notes.push('A read: nothing in the cluster changes.');
      } else if (kube.kind === 'resource' && kube.verb !== 'create') {
        preview.notes.push(`A ${kube.verb} of ${kube.resource}${kube.subresource ? `/${kube.subresource}` : ''}: Airlock has no dry run for it; the request line and body above are what it does.`);
      }
    } catch (error) {
      preview.problems.push(`the cluster could not be read for the preview: ${errorText(error, { name: false })}`);
    }
  };
  // Side by side: a held request waits for its preview before its 403, so the slowest part sets the delay, not the sum.
  await Promise.all([cluster(), window()]);
  return preview;
}

/** An exec (`airlock exec`): nothing to dry-run; the command line and stdin are what it does, shown whole or not approvable. */
function execPreview(subject: PreviewSubject, command: readonly string[], preview: ChangePreview): void {
  const { kube } = subject;
  const container = new URLSearchParams(kube.query).get('container') ?? undefined;
  const stdin = subject.body.length ? subject.body : undefined;
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

/** previewChange that never throws: whatever goes wrong is a problem on the preview (then it cannot be approved), never a reason to hide it. */
export async function workOutPreview(subject: PreviewSubject, deps: PreviewDeps, options: PreviewOptions = {}): Promise<ChangePreview> {
  try {
    return await previewChange(subject, deps, options);
  } catch (error) {
    return { problems: [`the preview could not be worked out: ${errorText(error, { name: false })}`], notes: [], objects: [] };
  }
}

/** What the approval (or plan change) item keeps of a preview: the key of the whole one, its problems and the email's lines, bounded. */
export type KeptPreview = NonNullable<Approval['preview']>;

/**
 * Stores the whole preview in the transcript store under `key` and returns what the item keeps.
 * A preview that cannot be stored cannot be shown: that is one more problem, never a reason to hide it.
 */
export async function keepPreview(preview: ChangePreview, key: string, transcripts: TranscriptStore | undefined, limits: { lines: number; lineChars: number }): Promise<KeptPreview> {
  let kept: string | undefined = key;
  try {
    if (!transcripts) throw new Error('this gateway has no store for previews');
    await transcripts.put(key, JSON.stringify(preview));
  } catch (error) {
    kept = undefined;
    preview.problems.push(`the preview could not be stored: ${errorText(error, { name: false })}`);
  }
  const lines = previewLines(preview)
    .slice(0, limits.lines)
    .map((line) => line.slice(0, limits.lineChars));
  return { ...(kept ? { key: kept } : {}), problems: preview.problems.map((problem) => problem.slice(0, 500)), lines };
}

type Ask = (method: string, path: string, query: string, body: Buffer, what: string, target?: Partial<KubeRequest>) => Promise<ClusterAnswer>;

function caller(subject: PreviewSubject, deps: PreviewDeps, purpose: string): Ask {
  const { kube } = subject;
  return (method, path, query, body, what, target = {}) => {
    if (!deps.reader) throw new Error('this gateway has no way to read the cluster for previews');
    return deps.reader.send({
      session: { agentId: subject.agent.id, agentName: subject.agent.name, grantId: subject.grant.id },
      connection: subject.connection,
      method,
      path,
      query,
      ...(method === subject.method && body.length && subject.contentType ? { contentType: subject.contentType } : {}),
      body,
      target: { verb: kube.verb, apiGroup: kube.apiGroup, resource: kube.resource, subresource: kube.subresource, namespace: kube.namespace, name: kube.name, ...target },
      purpose: `${purpose}: ${what}`,
    });
  };
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

const PROTOBUF = 'application/vnd.kubernetes.protobuf';

/** A protobuf body shown as the API server decoded it; without its dry-run answer it cannot be shown at all. */
function showDecoded(after: Obj | undefined, preview: ChangePreview, context: RedactionContext, unreadable: string): void {
  if (!after) {
    if (!preview.problems.length) preview.problems.push(unreadable);
    return;
  }
  const redacted = redactDocument(after, context);
  preview.objects = [summarizeDocument(redacted, true)];
  preview.body = shown(after, context);
  preview.notes.push('Sent as Kubernetes protobuf: the body is shown as the API server decodes these exact bytes (its dry-run answer).');
}

function shown(value: unknown, context: RedactionContext): string {
  return toYaml(stripNoise(redactDocument(value, context)));
}

/** Works out the dry run's diff; returns the API server's dry-run answer when it gave one. */
async function dryRunWrite(subject: PreviewSubject, documents: unknown[], preview: ChangePreview, context: RedactionContext, ask: Ask, sent: ClusterAnswer | undefined): Promise<Obj | undefined> {
  const { kube } = subject;
  // A create names its object in the body, or has the name generated.
  const first = documents[0];
  const givenName = isObject(first) && isObject(first.metadata) && typeof first.metadata.name === 'string' ? first.metadata.name : '';
  const creates = kube.verb === 'create' && kube.subresource === '';
  // A create the API server admits has nothing live under its name (else: 409 AlreadyExists), so no read is needed.
  const livePath = creates ? '' : kube.path;
  const dryRun = async (): Promise<ClusterAnswer> => {
    // A plan's change was sent as a dry run already; its answer is used unless the client asked for one Airlock cannot read (protobuf).
    if (sent && isObject(json(sent.body))) return sent;
    const params = new URLSearchParams(kube.query);
    if (!params.getAll('dryRun').includes('All')) params.append('dryRun', 'All');
    return ask(subject.method, kube.path, params.toString(), subject.body, 'dry run (dryRun=All)');
  };
  const live = async (): Promise<ClusterAnswer | undefined> => (livePath ? ask('GET', livePath, '', Buffer.alloc(0), 'the live object', { verb: 'get' }) : undefined);
  // The two reads are independent (a dry run changes nothing): side by side.
  const [dry, current] = await Promise.all([dryRun(), live()]);
  if (dry.status < 200 || dry.status >= 300) {
    preview.problems.push(`the API server refused the dry run (${statusMessage(dry.status, dry.body)})`);
    return undefined;
  }
  const after = json(dry.body);
  if (!isObject(after)) {
    preview.problems.push('the dry run answered something that is not a JSON object');
    return undefined;
  }
  let before = '';
  if (creates) preview.notes.push(givenName || documents.length === 0 ? 'A new object: nothing is live under this name.' : 'A new object (the name is generated).');
  else if (current?.status === 200) before = shown(json(current.body), context);
  else if (current?.status === 404) preview.notes.push('A new object: nothing is live under this name.');
  else {
    preview.problems.push(`the live object could not be read (${current ? statusMessage(current.status, current.body) : 'no answer'})`);
    return after;
  }
  preview.diff = diffLines(before, shown(after, context));
  return after;
}

async function liveDeleted(subject: PreviewSubject, documents: unknown[], preview: ChangePreview, context: RedactionContext, ask: Ask): Promise<void> {
  const { kube } = subject;
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
    const answer = await ask('GET', kube.path, list.toString(), Buffer.alloc(0), 'the objects the collection delete matches', { verb: 'list' });
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
    const answer = await ask('GET', path, '', Buffer.alloc(0), 'the live object it deletes', { verb: 'get', subresource: '' });
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
