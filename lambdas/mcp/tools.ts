// The MCP tools: each a zod input schema, the Kubernetes verbs it may send (which
// decide whether tools/list shows it, and its readOnly/destructive annotations),
// and what it does. A Kubernetes tool only builds requests: `ctx.kube` sends each
// through the gateway's stages (lambdas/mcp/endpoint.ts), which decide.
import * as z from 'zod';
import { parse as parseYaml } from 'yaml';
import type { Agent, Approval, Grant } from '../core/model.ts';
import type { LifecycleDeps } from '../core/lifecycle.ts';
import { redactJson, redactText } from '../core/redaction.ts';
import { fields, kubePath, resourceForKind, ToolInputError, BUILTIN_RESOURCES } from './kube-calls.ts';

export interface KubeCall {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** `exec`: the body is a POST /v1/exec request and the gateway's exec path runs it (Airlock opens the stream). */
  via?: 'exec';
  path: string;
  query?: Record<string, string>;
  body?: string;
  contentType?: string;
}

export interface KubeAnswer {
  status: number;
  body: Buffer;
  /** The answer was longer than Airlock reads for a tool: cut here. */
  cut: boolean;
  requestId: string;
}

export interface ToolOutput {
  text: string;
  structured?: Record<string, unknown>;
}

/** What a tool may use: the gateway (per connection) and the agent's own windows and approvals. */
export interface ToolContext {
  agent: Agent;
  deps: LifecycleDeps;
  /** One Kubernetes request through the gateway; a refusal (≥ 400) is thrown as KubeRefusal. */
  kube(connection: string, call: KubeCall): Promise<KubeAnswer>;
  /** The arguments a retry must repeat exactly (a held call's approval binds the request's bytes). */
  retryWith(args: Record<string, unknown>): void;
  requestWindow(input: { connection: string; duration: string; reason: string; ticket?: string | undefined }): Promise<Grant>;
  endWindow(id: string): Promise<Grant>;
  grants(): Promise<Grant[]>;
  approval(id: string): Promise<Approval>;
  grantView(grant: Grant): Record<string, unknown>;
  approvalView(approval: Approval): Record<string, unknown>;
}

export interface ToolDefinition {
  name: string;
  title: string;
  description: string;
  input: z.ZodObject;
  /** Kubernetes verbs the tool sends; [] for Airlock's own (windows, approvals). */
  verbs: readonly string[];
  /** Airlock-side tools: their effect, stated (they send nothing to a cluster). */
  access?: { readOnly: boolean; destructive: boolean };
  run(args: Record<string, unknown>, ctx: ToolContext): Promise<ToolOutput>;
}

function tool<S extends z.ZodObject>(definition: Omit<ToolDefinition, 'input' | 'run'> & { input: S; run(args: z.infer<S>, ctx: ToolContext): Promise<ToolOutput> }): ToolDefinition {
  return definition as unknown as ToolDefinition;
}

/** Most text a tool returns; more is cut, and the cut is stated. */
export const MAX_TOOL_TEXT = 64 * 1024;

export function bounded(text: string, limit = MAX_TOOL_TEXT): string {
  if (text.length <= limit) return text;
  return `${text.slice(0, limit)}\n[airlock: output cut at ${limit} of ${text.length} characters; narrow the request (limit, labelSelector, tailLines)]`;
}

type Json = Parameters<typeof redactJson>[0];

/** A Kubernetes JSON answer as the agent sees it: redacted (Secret values), managedFields dropped, bounded. */
export function renderKubeJson(answer: KubeAnswer, resource: string): { text: string; value: Json | undefined } {
  let value: Json;
  try {
    value = JSON.parse(answer.body.toString('utf8')) as Json;
  } catch {
    return {
      text: answer.cut
        ? `[airlock: the answer was longer than Airlock reads for a tool (${answer.body.length} bytes) and cannot be shown; narrow the request]`
        : '[airlock: the answer is not JSON and is not shown]',
      value: undefined,
    };
  }
  const redacted = stripManagedFields(redactJson(value, { secretsResource: resource === 'secrets' }));
  return { text: bounded(JSON.stringify(redacted, null, 1)), value: redacted };
}

function stripManagedFields(value: Json): Json {
  if (Array.isArray(value)) return value.map(stripManagedFields);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, Json> = {};
  for (const [key, child] of Object.entries(value)) {
    if (key === 'managedFields') continue;
    out[key] = stripManagedFields(child);
  }
  return out;
}

const address = { connection: fields.connection, resource: fields.resource, apiVersion: fields.apiVersion };

export const TOOLS: readonly ToolDefinition[] = [
  tool({
    name: 'request_access',
    title: 'Request an access window',
    description:
      "Ask for a just-in-time access window on a connection (cluster). Opens at once or waits for a human approver, as the connection's policy says. Nothing else works on a connection without an open window. Call tools/list again once it is active.",
    input: z.strictObject({
      connection: fields.connection,
      duration: z
        .string()
        .regex(/^\d+(s|m|h)$/, 'a duration such as 30m or 1h')
        .describe("How long, e.g. 30m; at most the policy's maxWindow."),
      reason: z.string().trim().min(3, 'say why (at least 3 characters)').max(500).describe('Why you need access (shown to approvers and kept in the record).'),
      ticket: z.string().trim().min(1).max(128).optional().describe('A ticket or incident id.'),
    }),
    verbs: [],
    access: { readOnly: false, destructive: false },
    async run(args, ctx) {
      const grant = await ctx.requestWindow(args);
      const view = ctx.grantView(grant);
      const text =
        grant.status === 'active'
          ? `window ${grant.id} on ${grant.connection} is active until ${String(view.expiresAt)}.`
          : `window ${grant.id} on ${grant.connection} is ${grant.status}${grant.approvalId ? `: it waits for approval ${grant.approvalId} (approvers are emailed). Check with access_status {"id":"${grant.id}"}` : ''}.`;
      return { text, structured: view };
    },
  }),
  tool({
    name: 'access_status',
    title: 'Access window status',
    description: 'Your access windows (newest first), or one of them by id.',
    input: z.strictObject({ id: z.string().max(64).optional().describe('A window id (gr_...); omit for all of yours.') }),
    verbs: [],
    access: { readOnly: true, destructive: false },
    async run(args, ctx) {
      const grants = await ctx.grants();
      if (args.id !== undefined) {
        const grant = grants.find((candidate) => candidate.id === args.id);
        if (!grant) throw new ToolInputError('id', `no window ${args.id} of yours`);
        const view = ctx.grantView(grant);
        return { text: JSON.stringify(view), structured: view };
      }
      const items = grants.slice(0, 20).map((grant) => ctx.grantView(grant));
      return { text: JSON.stringify(items, null, 1), structured: { items } };
    },
  }),
  tool({
    name: 'end_access',
    title: 'End an access window',
    description: 'Close one of your access windows now (held approvals asked in it are cancelled).',
    input: z.strictObject({ id: z.string().max(64).describe('The window id (gr_...).') }),
    verbs: [],
    access: { readOnly: false, destructive: true },
    async run(args, ctx) {
      const grant = await ctx.endWindow(args.id);
      const view = ctx.grantView(grant);
      return { text: `window ${grant.id} is ${String(view.status)}.`, structured: view };
    },
  }),
  tool({
    name: 'approval_status',
    title: 'Approval status',
    description: "The status of an approval Airlock asked for (a held tool call or a window). Only an approver's decision on Airlock's approval page decides it.",
    input: z.strictObject({ id: z.string().max(64).describe('The approval id (apr_...).') }),
    verbs: [],
    access: { readOnly: true, destructive: false },
    async run(args, ctx) {
      const view = ctx.approvalView(await ctx.approval(args.id));
      return { text: JSON.stringify(view), structured: view };
    },
  }),
  tool({
    name: 'get',
    title: 'Get an object',
    description: 'Read one Kubernetes object (Secret values are redacted).',
    input: z.strictObject({ ...address, namespace: fields.namespace.optional(), name: fields.name }),
    verbs: ['get'],
    async run(args, ctx) {
      const answer = await ctx.kube(args.connection, { method: 'GET', path: kubePath(args) });
      const { text, value } = renderKubeJson(answer, args.resource);
      return { text, ...(isRecord(value) ? { structured: value } : {}) };
    },
  }),
  tool({
    name: 'list',
    title: 'List objects',
    description: 'List Kubernetes objects of one resource, in a namespace or all, with label/field selectors and a limit (continue with the returned token).',
    input: z.strictObject({
      ...address,
      namespace: fields.namespace.optional().describe('Namespace; omit for all namespaces (or cluster-scoped resources).'),
      labelSelector: z.string().max(1024).optional(),
      fieldSelector: z.string().max(1024).optional(),
      limit: z.number().int().min(1).max(500).default(100).describe('At most this many objects (1-500, default 100).'),
      continue: z.string().max(4096).optional().describe('The continue token of a previous list.'),
    }),
    verbs: ['list'],
    async run(args, ctx) {
      const query: Record<string, string> = { limit: String(args.limit) };
      if (args.labelSelector) query.labelSelector = args.labelSelector;
      if (args.fieldSelector) query.fieldSelector = args.fieldSelector;
      if (args.continue) query.continue = args.continue;
      const answer = await ctx.kube(args.connection, { method: 'GET', path: kubePath(args), query });
      const { text, value } = renderKubeJson(answer, args.resource);
      if (!isRecord(value) || !Array.isArray(value.items)) return { text };
      const metadata = isRecord(value.metadata) ? value.metadata : {};
      const summary = { count: value.items.length, ...(typeof metadata.continue === 'string' && metadata.continue ? { continue: metadata.continue } : {}) };
      return { text: bounded(`${JSON.stringify(summary)}\n${text}`), structured: { ...summary, items: value.items } };
    },
  }),
  tool({
    name: 'events',
    title: 'Events',
    description: 'Recent events in a namespace, optionally about one object.',
    input: z.strictObject({
      connection: fields.connection,
      namespace: fields.namespace,
      name: fields.name.optional().describe('Only events about the object of this name.'),
      kind: z
        .string()
        .max(63)
        .regex(/^[A-Za-z][A-Za-z0-9]*$/, 'a kind such as Pod')
        .optional()
        .describe('Only events about objects of this kind (Pod, Deployment, ...).'),
      limit: z.number().int().min(1).max(500).default(100),
    }),
    verbs: ['list'],
    async run(args, ctx) {
      const selectors = [...(args.name ? [`involvedObject.name=${args.name}`] : []), ...(args.kind ? [`involvedObject.kind=${args.kind}`] : [])];
      const query: Record<string, string> = { limit: String(args.limit), ...(selectors.length ? { fieldSelector: selectors.join(',') } : {}) };
      const answer = await ctx.kube(args.connection, { method: 'GET', path: kubePath({ resource: 'events', namespace: args.namespace }), query });
      const { text, value } = renderKubeJson(answer, 'events');
      if (!isRecord(value) || !Array.isArray(value.items)) return { text };
      const lines = value.items.filter(isRecord).map((event) => {
        const object = isRecord(event.involvedObject) ? `${String(event.involvedObject.kind)}/${String(event.involvedObject.name)}` : '?';
        return `${String(event.lastTimestamp ?? event.eventTime ?? '')} ${String(event.type)} ${String(event.reason)} ${object}: ${String(event.message ?? '')}`;
      });
      return { text: bounded(lines.length ? lines.join('\n') : 'no events'), structured: { count: lines.length } };
    },
  }),
  tool({
    name: 'logs',
    title: 'Pod logs',
    description: "A container's logs, bounded by lines, bytes and time (never followed).",
    input: z.strictObject({
      connection: fields.connection,
      namespace: fields.namespace,
      pod: fields.name.describe('Pod name.'),
      container: fields.name.optional().describe('Container; needed when the pod has several.'),
      tailLines: z.number().int().min(1).max(5000).default(200).describe('Last N lines (1-5000, default 200).'),
      limitBytes: z
        .number()
        .int()
        .min(1)
        .max(256 * 1024)
        .default(64 * 1024)
        .describe('At most this many bytes (default 64 KiB, max 256 KiB).'),
      sinceSeconds: z
        .number()
        .int()
        .min(1)
        .max(7 * 86_400)
        .optional()
        .describe('Only lines newer than this many seconds.'),
      previous: z.boolean().optional().describe('The previous (crashed) container instance.'),
    }),
    verbs: ['get'],
    async run(args, ctx) {
      const query: Record<string, string> = { tailLines: String(args.tailLines), limitBytes: String(args.limitBytes) };
      if (args.container) query.container = args.container;
      if (args.sinceSeconds) query.sinceSeconds = String(args.sinceSeconds);
      if (args.previous) query.previous = 'true';
      const answer = await ctx.kube(args.connection, { method: 'GET', path: kubePath({ resource: 'pods', namespace: args.namespace, name: args.pod, subresource: 'log' }), query });
      const text = answer.body.toString('utf8');
      const cut = answer.cut || answer.body.length >= args.limitBytes;
      return { text: bounded(text + (cut ? `\n[airlock: logs cut at ${answer.body.length} bytes (limitBytes ${args.limitBytes})]` : '')) };
    },
  }),
  tool({
    name: 'api_resources',
    title: 'API resources',
    description: 'The API groups the cluster serves, and the resources of one group/version (default: the core group, v1).',
    input: z.strictObject({ connection: fields.connection, apiVersion: fields.apiVersion.describe('group/version to list resources of, e.g. apps/v1; default v1.') }),
    verbs: ['get'],
    async run(args, ctx) {
      const version = args.apiVersion ?? 'v1';
      const groups = renderKubeJson(await ctx.kube(args.connection, { method: 'GET', path: '/apis' }), '').value;
      const resources = renderKubeJson(await ctx.kube(args.connection, { method: 'GET', path: version.includes('/') ? `/apis/${version}` : `/api/${version}` }), '').value;
      const groupVersions =
        isRecord(groups) && Array.isArray(groups.groups)
          ? groups.groups.filter(isRecord).map((group) => (isRecord(group.preferredVersion) ? String(group.preferredVersion.groupVersion) : String(group.name)))
          : [];
      const list =
        isRecord(resources) && Array.isArray(resources.resources)
          ? resources.resources
              .filter(isRecord)
              .map((resource) => `${String(resource.name)}${resource.namespaced ? '' : ' (cluster)'} ${String(resource.kind)} [${Array.isArray(resource.verbs) ? resource.verbs.join(',') : ''}]`)
          : [];
      return { text: bounded(`groups: v1, ${groupVersions.join(', ')}\nresources of ${version}:\n${list.join('\n')}`), structured: { groups: ['v1', ...groupVersions], resources: list } };
    },
  }),
  tool({
    name: 'apply',
    title: 'Apply a manifest (server-side apply)',
    description: 'Create or update one object by server-side apply (field manager "airlock-mcp"). The manifest is an object or one YAML/JSON document.',
    input: z.strictObject({
      connection: fields.connection,
      manifest: z
        .union([
          z
            .string()
            .min(1)
            .max(512 * 1024),
          z.record(z.string(), z.unknown()),
        ])
        .describe('One Kubernetes object (YAML/JSON text or an object).'),
      resource: fields.resource.optional().describe('Plural resource, for kinds outside the built-in table.'),
      namespace: fields.namespace.optional().describe('Namespace, if the manifest has none.'),
      force: z.boolean().optional().describe('Take over fields other managers own.'),
    }),
    verbs: ['patch', 'create'],
    async run(args, ctx) {
      const manifest = manifestObject(args.manifest);
      const apiVersion = stringField(manifest, 'apiVersion');
      const kind = stringField(manifest, 'kind');
      const metadata = isRecord(manifest.metadata) ? manifest.metadata : undefined;
      const name = metadata && typeof metadata.name === 'string' ? metadata.name : undefined;
      if (!name) throw new ToolInputError('manifest.metadata.name', 'the object needs a name');
      const namespace = typeof metadata?.namespace === 'string' ? metadata.namespace : args.namespace;
      if (args.namespace && metadata?.namespace !== undefined && metadata.namespace !== args.namespace) throw new ToolInputError('namespace', "differs from the manifest's metadata.namespace");
      const resource = resourceForKind(apiVersion, kind, args.resource);
      const body = JSON.stringify(namespace && metadata?.namespace === undefined ? { ...manifest, metadata: { ...metadata, namespace } } : manifest);
      const query: Record<string, string> = { fieldManager: 'airlock-mcp', ...(args.force ? { force: 'true' } : {}) };
      const answer = await ctx.kube(args.connection, { method: 'PATCH', path: kubePath({ resource, apiVersion, namespace, name }), query, body, contentType: 'application/apply-patch+yaml' });
      return { text: `applied ${kind} ${namespace ? `${namespace}/` : ''}${name}\n${renderKubeJson(answer, resource).text}` };
    },
  }),
  tool({
    name: 'patch',
    title: 'Patch an object',
    description: 'Patch one object: strategic merge (default), JSON merge or JSON patch.',
    input: z.strictObject({
      ...address,
      namespace: fields.namespace.optional(),
      name: fields.name,
      type: z.enum(['strategic', 'merge', 'json']).default('strategic'),
      patch: z.union([z.record(z.string(), z.unknown()), z.array(z.record(z.string(), z.unknown()))]).describe('The patch: an object (strategic/merge) or a list of operations (json).'),
    }),
    verbs: ['patch'],
    async run(args, ctx) {
      if ((args.type === 'json') !== Array.isArray(args.patch)) throw new ToolInputError('patch', args.type === 'json' ? 'a JSON patch is a list of operations' : `a ${args.type} patch is an object`);
      const contentType = { strategic: 'application/strategic-merge-patch+json', merge: 'application/merge-patch+json', json: 'application/json-patch+json' }[args.type];
      const answer = await ctx.kube(args.connection, { method: 'PATCH', path: kubePath(args), body: JSON.stringify(args.patch), contentType });
      return { text: `patched ${args.resource} ${args.namespace ? `${args.namespace}/` : ''}${args.name}\n${renderKubeJson(answer, args.resource).text}` };
    },
  }),
  tool({
    name: 'delete',
    title: 'Delete an object',
    description: 'Delete one object.',
    input: z.strictObject({
      ...address,
      namespace: fields.namespace.optional(),
      name: fields.name,
      propagationPolicy: z.enum(['Foreground', 'Background', 'Orphan']).optional(),
    }),
    verbs: ['delete'],
    async run(args, ctx) {
      const query: Record<string, string> = args.propagationPolicy ? { propagationPolicy: args.propagationPolicy } : {};
      await ctx.kube(args.connection, { method: 'DELETE', path: kubePath(args), query });
      return { text: `deleted ${args.resource} ${args.namespace ? `${args.namespace}/` : ''}${args.name}` };
    },
  }),
  tool({
    name: 'scale',
    title: 'Scale a workload',
    description: 'Set the replicas of a deployment, statefulset or replicaset (its scale subresource).',
    input: z.strictObject({
      connection: fields.connection,
      resource: z.enum(['deployments', 'statefulsets', 'replicasets']),
      namespace: fields.namespace,
      name: fields.name,
      replicas: z.number().int().min(0).max(1000),
    }),
    verbs: ['patch'],
    async run(args, ctx) {
      const body = JSON.stringify({ spec: { replicas: args.replicas } });
      await ctx.kube(args.connection, { method: 'PATCH', path: kubePath({ ...args, subresource: 'scale' }), body, contentType: 'application/merge-patch+json' });
      return { text: `scaled ${args.resource} ${args.namespace}/${args.name} to ${args.replicas}` };
    },
  }),
  tool({
    name: 'rollout_restart',
    title: 'Restart a rollout',
    description: 'Restart the pods of a deployment, statefulset or daemonset (as `kubectl rollout restart`).',
    input: z.strictObject({
      connection: fields.connection,
      resource: z.enum(['deployments', 'statefulsets', 'daemonsets']),
      namespace: fields.namespace,
      name: fields.name,
      restartedAt: z.iso.datetime().optional().describe('The restart stamp; omit for now. A held call is retried with the stamp it was held with.'),
    }),
    verbs: ['patch'],
    async run(args, ctx) {
      const restartedAt = args.restartedAt ?? new Date(ctx.deps.now()).toISOString().replace(/\.\d+Z$/, 'Z');
      ctx.retryWith({ ...args, restartedAt });
      const body = JSON.stringify({ spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': restartedAt } } } } });
      await ctx.kube(args.connection, { method: 'PATCH', path: kubePath(args), body, contentType: 'application/strategic-merge-patch+json' });
      return { text: `restarted ${args.resource} ${args.namespace}/${args.name} (restartedAt ${restartedAt})` };
    },
  }),
  tool({
    name: 'exec',
    title: 'Run a command in a container',
    description:
      'Run one command in a container, without a TTY (as `airlock exec`): its stdout, stderr and exit code, bounded and redacted. The policy may allow only listed commands and hold the rest for a human.',
    input: z.strictObject({
      connection: fields.connection,
      namespace: fields.namespace,
      pod: fields.name.describe('Pod name.'),
      container: fields.name.optional().describe('Container; needed when the pod has several.'),
      command: z.array(z.string().max(4096)).min(1).max(100).describe('The command and its arguments as words, e.g. ["ls", "-l", "/tmp"] (no shell unless you run one).'),
      stdin: z
        .string()
        .max(16 * 1024)
        .optional()
        .describe('Text sent to the command on stdin (at most 16 KiB).'),
      timeoutSeconds: z.number().int().min(1).max(300).default(60).describe('Ends the command after this many seconds (1-300, default 60).'),
    }),
    verbs: ['exec'],
    async run(args, ctx) {
      const body = JSON.stringify({
        namespace: args.namespace,
        pod: args.pod,
        command: args.command,
        ...(args.container ? { container: args.container } : {}),
        ...(args.stdin !== undefined ? { stdin: args.stdin } : {}),
        timeoutSeconds: args.timeoutSeconds,
      });
      const answer = await ctx.kube(args.connection, { via: 'exec', method: 'POST', path: '/v1/exec', body, contentType: 'application/json' });
      const { stdout, stderr, exit, error } = execOutcome(answer.body.toString('utf8'));
      const ended = exit !== undefined ? `exit code ${exit}` : `ended by Airlock: ${error ?? 'no exit code (the output was cut)'}`;
      // Output is free text: credential-shaped values are redacted, as in the transcript.
      const text = `${ended}\n--- stdout ---\n${redactText(stdout)}\n--- stderr ---\n${redactText(stderr)}${answer.cut ? '\n[airlock: output cut: longer than Airlock reads for a tool]' : ''}`;
      return { text: bounded(text), structured: { ...(exit !== undefined ? { exitCode: exit } : {}), ...(error ? { error } : {}) } };
    },
  }),
  tool({
    name: 'can_i',
    title: 'Can I?',
    description: 'Ask whether you may do something on a connection: Airlock answers for you (its policy, then the cluster).',
    input: z.strictObject({
      connection: fields.connection,
      verb: z.enum(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection']),
      resource: fields.resource,
      group: z
        .string()
        .max(253)
        .regex(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$/, 'an API group such as apps ("" for core)')
        .optional(),
      subresource: z
        .string()
        .max(63)
        .regex(/^[a-z]+$/, 'a subresource such as log')
        .optional(),
      namespace: fields.namespace.optional(),
      name: fields.name.optional(),
    }),
    verbs: [],
    access: { readOnly: true, destructive: false },
    async run(args, ctx) {
      const group = args.group ?? BUILTIN_RESOURCES[args.resource]?.group ?? '';
      const review = {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: {
          resourceAttributes: {
            verb: args.verb,
            resource: args.resource,
            group,
            ...(args.subresource ? { subresource: args.subresource } : {}),
            ...(args.namespace ? { namespace: args.namespace } : {}),
            ...(args.name ? { name: args.name } : {}),
          },
        },
      };
      const answer = await ctx.kube(args.connection, { method: 'POST', path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', body: JSON.stringify(review), contentType: 'application/json' });
      const { value } = renderKubeJson(answer, '');
      const status = isRecord(value) && isRecord(value.status) ? value.status : {};
      const allowed = status.allowed === true;
      return {
        text: `${allowed ? 'yes' : 'no'}${typeof status.reason === 'string' && status.reason ? ` - ${status.reason}` : ''}`,
        structured: { allowed, ...(typeof status.reason === 'string' ? { reason: status.reason } : {}) },
      };
    },
  }),
];

export function isRecord(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function manifestObject(manifest: string | Record<string, unknown>): Record<string, unknown> {
  if (typeof manifest !== 'string') return manifest;
  let parsed: unknown;
  try {
    parsed = parseYaml(manifest);
  } catch (error) {
    throw new ToolInputError('manifest', `not one YAML/JSON document (${error instanceof Error ? error.message.split('\n')[0] : 'parse error'})`);
  }
  if (!isRecord(parsed)) throw new ToolInputError('manifest', 'not a Kubernetes object');
  return parsed;
}

function stringField(manifest: Record<string, unknown>, field: string): string {
  const value = manifest[field];
  if (typeof value !== 'string' || value === '') throw new ToolInputError(`manifest.${field}`, 'required');
  return value;
}

/** The NDJSON lines of POST /v1/exec (CONTRACT.md): output by stream, then one exit or error line. */
function execOutcome(ndjson: string): { stdout: string; stderr: string; exit?: number; error?: string } {
  let stdout = '';
  let stderr = '';
  let exit: number | undefined;
  let error: string | undefined;
  for (const line of ndjson.split('\n')) {
    if (!line.trim()) continue;
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      continue; // a line cut at the read limit
    }
    if (!isRecord(event)) continue;
    if (event.stream === 'stdout' && typeof event.data === 'string') stdout += event.data;
    else if (event.stream === 'stderr' && typeof event.data === 'string') stderr += event.data;
    else if (isRecord(event.exit) && typeof event.exit.code === 'number') exit = event.exit.code;
    else if (isRecord(event.error)) error = typeof event.error.message === 'string' ? event.error.message : 'the command did not finish';
  }
  return { stdout, stderr, ...(exit !== undefined ? { exit } : {}), ...(error !== undefined ? { error } : {}) };
}
