// What an approver sees of a held change: the body, parsed and redacted, a
// summary of the fields a reviewer must not miss, the API server's dry-run
// answer as a diff against the live object, what a delete takes with it, and
// the window it belongs to. Pure: the gateway gathers (proxy/preview.ts), this
// renders. A preview with problems is one an approver cannot see, so the page
// offers no Approve for it: a human never approves blind. The HTML for the
// approval page is in preview-render.ts (no YAML parser there).
import { parseAllDocuments, stringify } from 'yaml';
import { bodyReferences } from './effects.ts';
import { redactJson, type RedactionContext } from './redaction.ts';
import { errorText } from './errors.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One object in the body (or one patch), summarized. */
export interface ObjectSummary {
  kind: string;
  /** namespace/name, or name, or '' when the body does not say. */
  target: string;
  images: string[];
  /** What a reviewer must not miss, one line each: "privileged: true (spec.containers[0].securityContext)". */
  flags: string[];
}

export interface WindowActivity {
  grantId: string;
  reason?: string;
  ticket?: string;
  counts: Record<string, number>;
  /** Newest first: "2026-12-02T03:00:00Z allowed GET pods in prod". */
  recent: string[];
}

export interface ExecPreview {
  /** namespace/pod */
  pod: string;
  container?: string;
  command: string;
  stdin?: string;
}

export interface ChangePreview {
  /** Why Airlock cannot show what the request does. Non-empty: no Approve. */
  problems: string[];
  /** Notes that do not stop approval ("a new object: nothing is live under this name"). */
  notes: string[];
  objects: ObjectSummary[];
  /** The whole body, redacted, as YAML (documents separated by ---). */
  body?: string;
  /** The API server's dry-run answer against the live object: unified lines (' ', '-', '+'). */
  diff?: string;
  /** The live object(s) a delete or eviction removes, redacted, as YAML. */
  live?: string;
  /** For a delete: what goes with it (propagation policy, owners, how many objects match). */
  deletes?: string[];
  /** For an exec (`airlock exec`): where it runs, the command line and stdin (both redacted). */
  exec?: ExecPreview;
  window?: WindowActivity;
}

const JSON_TYPES = /^application\/([a-z.-]+\+)?json$/;
const YAML_TYPES = new Set(['application/yaml', 'application/apply-patch+yaml', 'application/x-yaml', 'text/yaml']);

/** The body's documents as the API server decodes them, or why they cannot be read. */
export function parseDocuments(body: Buffer, mediaType: string): { documents: unknown[] } | { error: string } {
  if (body.length === 0) return { documents: [] };
  const text = body.toString('utf8');
  try {
    if (JSON_TYPES.test(mediaType) || mediaType === '') return { documents: [JSON.parse(text)] };
    if (YAML_TYPES.has(mediaType)) {
      const documents = parseAllDocuments(text, { uniqueKeys: true, merge: false });
      if (!Array.isArray(documents)) return { documents: [] };
      const values: unknown[] = [];
      for (const document of documents) {
        if (document.errors.length > 0) return { error: `the body is not valid YAML (${document.errors[0]!.message.split('\n')[0]})` };
        values.push(document.toJS({ maxAliasCount: 0 }));
      }
      return { documents: values.filter((value) => value !== null && value !== undefined) };
    }
  } catch (error) {
    return { error: `the body could not be read as ${mediaType || 'JSON'} (${errorText(error, { name: false }).split('\n')[0]})` };
  }
  return { error: `a body sent as ${mediaType} cannot be read and redacted by Airlock, so it cannot be shown` };
}

/** A redacted copy: Secret data/stringData (and kubectl's copy of them) never shown. */
export function redactDocument(document: unknown, context: RedactionContext): unknown {
  return redactJson(document as Json, context);
}

/** Fields that change on every write and say nothing about the change. */
export function stripNoise(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const { status: _status, ...object } = value as Record<string, unknown>;
  const metadata = object.metadata;
  if (typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata)) {
    const { managedFields: _m, resourceVersion: _r, generation: _g, uid: _u, creationTimestamp: _c, selfLink: _s, ...rest } = metadata as Record<string, unknown>;
    object.metadata = rest;
  }
  return object;
}

export function toYaml(value: unknown): string {
  return stringify(value, { lineWidth: 0, aliasDuplicateObjects: false });
}

function add(flags: string[], line: string): void {
  if (!flags.includes(line)) flags.push(line);
}

/** The summary of one document: kind, target, images and the fields a reviewer must not miss. */
export function summarizeDocument(document: unknown, fullObject: boolean): ObjectSummary {
  const object = (typeof document === 'object' && document !== null && !Array.isArray(document) ? document : {}) as Record<string, unknown>;
  const metadata = (typeof object.metadata === 'object' && object.metadata !== null ? object.metadata : {}) as Record<string, unknown>;
  const name = typeof metadata.name === 'string' ? metadata.name : '';
  const namespace = typeof metadata.namespace === 'string' ? metadata.namespace : '';
  const kind = typeof object.kind === 'string' ? object.kind : Array.isArray(document) ? 'JSON patch' : fullObject ? '(no kind)' : 'patch';
  const images: string[] = [];
  const flags: string[] = [];
  const visit = (value: unknown, path: string): void => {
    if (Array.isArray(value)) return value.forEach((item, index) => visit(item, `${path}[${index}]`));
    if (typeof value !== 'object' || value === null) return;
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      const at = path ? `${path}.${key}` : key;
      if (key === 'image' && typeof child === 'string' && !images.includes(child)) images.push(child);
      if (key === 'privileged' && child === true) add(flags, `privileged: true (${at})`);
      if ((key === 'hostPID' || key === 'hostNetwork' || key === 'hostIPC') && child === true) add(flags, `${key}: true (${at})`);
      if (key === 'hostPath' && typeof child === 'object' && child !== null) add(flags, `hostPath volume: ${String((child as Record<string, unknown>).path ?? '?')} (${at})`);
      if (key === 'capabilities' && typeof child === 'object' && child !== null && Array.isArray((child as Record<string, unknown>).add)) {
        add(flags, `added capabilities: ${((child as Record<string, unknown>).add as unknown[]).map(String).join(', ')} (${at})`);
      }
      if (key === 'runAsUser' && child === 0) add(flags, `runAsUser: 0, runs as root (${at})`);
      if (key === 'runAsNonRoot' && child === false) add(flags, `runAsNonRoot: false (${at})`);
      if (key === 'allowPrivilegeEscalation' && child === true) add(flags, `allowPrivilegeEscalation: true (${at})`);
      if ((key === 'serviceAccountName' || key === 'serviceAccount') && typeof child === 'string') add(flags, `service account: ${child} (${at})`);
      if (key === 'automountServiceAccountToken') add(flags, `automountServiceAccountToken: ${JSON.stringify(child)} (${at})`);
      if (key === 'roleRef' && typeof child === 'object' && child !== null) {
        const ref = child as Record<string, unknown>;
        add(flags, `RBAC roleRef: ${String(ref.kind ?? '?')} ${String(ref.name ?? '?')} (${at})`);
      }
      if (key === 'subjects' && Array.isArray(child)) {
        for (const subject of child as Record<string, unknown>[]) {
          const ns = subject?.namespace ? `${String(subject.namespace)}/` : '';
          add(flags, `RBAC subject: ${String(subject?.kind ?? '?')} ${ns}${String(subject?.name ?? '?')} (${at})`);
        }
      }
      if (key === 'rules' && object.kind !== undefined && /Role$/.test(String(object.kind)) && Array.isArray(child)) add(flags, `RBAC rules: ${child.length} (${at})`);
      if (key === 'replicas' && typeof child === 'number') add(flags, `replicas: ${child} (${at})`);
      visit(child, at);
    }
  };
  visit(document, '');
  const { secrets } = bodyReferences(document, fullObject);
  for (const reference of secrets) add(flags, `Secret reference: ${reference.name || '(unnamed)'} (${reference.where})`);
  return { kind, target: namespace && name ? `${namespace}/${name}` : name, images, flags };
}

/** A line diff (longest common subsequence): ' ' kept, '-' live only, '+' after the change only. */
export function diffLines(before: string, after: string, maxLines = 3000): string {
  const a = before === '' ? [] : before.replace(/\n$/, '').split('\n');
  const b = after.replace(/\n$/, '').split('\n');
  if (a.length > maxLines || b.length > maxLines) return `${a.map((line) => `- ${line}`).join('\n')}\n${b.map((line) => `+ ${line}`).join('\n')}`;
  const lengths: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) lengths[i]![j] = a[i] === b[j] ? lengths[i + 1]![j + 1]! + 1 : Math.max(lengths[i + 1]![j]!, lengths[i]![j + 1]!);
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push(`  ${a[i++]}`);
      j++;
    } else if (j < b.length && (i >= a.length || lengths[i]![j + 1]! >= lengths[i + 1]![j]!)) out.push(`+ ${b[j++]}`);
    else out.push(`- ${a[i++]}`);
  }
  return out.join('\n');
}

/** Whether the approver can see what the request does (else: no Approve). */
export function previewShowsChange(preview: ChangePreview | undefined): boolean {
  return preview !== undefined && preview.problems.length === 0;
}

/** The few lines of a preview an email carries (the page shows the rest). */
export function previewLines(preview: ChangePreview): string[] {
  const lines: string[] = [];
  if (preview.problems.length) lines.push(`CANNOT BE SHOWN (no Approve): ${preview.problems.join('; ')}`);
  for (const object of preview.objects.slice(0, 10)) {
    lines.push(`Object:   ${object.kind}${object.target ? ` ${object.target}` : ''}${object.images.length ? ` images ${object.images.join(', ')}` : ''}`);
    for (const flag of object.flags.slice(0, 20)) lines.push(`  ! ${flag}`);
  }
  if (preview.exec) {
    lines.push(`Command:  ${preview.exec.command}`);
    lines.push(
      `In:       pod ${preview.exec.pod}${preview.exec.container ? `, container ${preview.exec.container}` : ''}${preview.exec.stdin !== undefined ? `, with ${Buffer.byteLength(preview.exec.stdin)} bytes of stdin (see the page)` : ''}`,
    );
  }
  for (const line of preview.deletes ?? []) lines.push(`Deletes:  ${line}`);
  if (preview.diff !== undefined) lines.push(`Dry run:  ${preview.diff.split('\n').filter((line) => /^[+-] /.test(line)).length} changed line(s); see the page`);
  return lines;
}
