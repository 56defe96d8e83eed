// Records in the formats security teams load: Kubernetes audit.k8s.io/v1 Events
// (auditID = Airlock's request id, which the gateway also sends upstream as
// Audit-ID, so an event joins the API server's own audit log) and OCSF API
// Activity (class 6003). Request and response bodies come from the transcript,
// already redacted (core/redaction.ts), and only at the level asked for.
import type { RequestRecord } from './model.ts';

export type K8sAuditLevel = 'Metadata' | 'Request' | 'RequestResponse';
export const K8S_AUDIT_LEVELS: readonly K8sAuditLevel[] = ['Metadata', 'Request', 'RequestResponse'];

/** The part of a transcript an export reads. */
export interface TranscriptBodies {
  request?: { body?: unknown };
  response?: { body?: unknown };
}

/** RFC 3339 with microseconds (metav1.MicroTime's form). */
function microTime(time: number): string {
  return new Date(time).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function endOf(record: RequestRecord): number {
  return record.time + (record.durationMs ?? 0);
}

function requestUri(record: RequestRecord): string {
  return record.query ? `${record.path}?${record.query}` : record.path;
}

/** A body as an embedded object (runtime.Unknown): JSON objects only; text, YAML or protobuf bodies are left to the transcript. */
function embedded(body: unknown): Record<string, unknown> | undefined {
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) return body as Record<string, unknown>;
  if (typeof body !== 'string') return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const STATUS_REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  501: 'NotImplemented',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export function toK8sAuditEvent(record: RequestRecord, level: K8sAuditLevel = 'Metadata', transcript?: TranscriptBodies): Record<string, unknown> {
  const status = record.status ?? 0;
  const refused = record.decision !== 'allowed';
  const objectRef = record.resource
    ? Object.fromEntries(
        Object.entries({ resource: record.resource, namespace: record.namespace, name: record.name, apiGroup: record.apiGroup, subresource: record.subresource }).filter(([, value]) => value !== ''),
      )
    : undefined;
  const requestObject = level !== 'Metadata' ? embedded(transcript?.request?.body) : undefined;
  const responseObject = level === 'RequestResponse' ? embedded(transcript?.response?.body) : undefined;
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level,
    auditID: record.id,
    stage: record.phase === 'started' ? 'ResponseStarted' : 'ResponseComplete',
    requestURI: requestUri(record),
    verb: record.resource ? record.verb : record.method.toLowerCase(),
    user: {
      username: record.agent,
      uid: record.agentId,
      groups: ['airlock:agents'],
      extra: { 'airlock.dev/connection': [record.connection], ...(record.grantId ? { 'airlock.dev/window': [record.grantId] } : {}) },
    },
    ...(record.sourceIp ? { sourceIPs: [record.sourceIp] } : {}),
    ...(record.userAgent ? { userAgent: record.userAgent } : {}),
    ...(objectRef ? { objectRef } : {}),
    ...(record.status !== undefined
      ? { responseStatus: { metadata: {}, code: status, ...(status >= 400 ? { status: 'Failure', reason: STATUS_REASONS[status] ?? 'Unknown', message: record.reason } : {}) } }
      : {}),
    ...(requestObject ? { requestObject } : {}),
    ...(responseObject ? { responseObject } : {}),
    requestReceivedTimestamp: microTime(record.time),
    stageTimestamp: microTime(endOf(record)),
    annotations: {
      'authorization.k8s.io/decision': refused ? 'forbid' : 'allow',
      'authorization.k8s.io/reason': record.reason,
      'airlock.dev/decision': record.decision,
      'airlock.dev/connection': record.connection,
      ...(record.approvalId ? { 'airlock.dev/approval': record.approvalId } : {}),
      ...(record.planId ? { 'airlock.dev/plan': record.planId } : {}),
      ...(record.transcriptKey ? { 'airlock.dev/transcript': record.transcriptKey } : {}),
      ...(record.chain ? { 'airlock.dev/chain-hash': record.chain.hash } : {}),
    },
  };
}

/** OCSF schema version the events follow. */
export const OCSF_VERSION = '1.3.0';
export const OCSF_API_ACTIVITY = { classUid: 6003, className: 'API Activity', categoryUid: 6, categoryName: 'Application Activity' } as const;

const OCSF_ACTIVITIES: Record<string, [number, string]> = {
  create: [1, 'Create'],
  get: [2, 'Read'],
  list: [2, 'Read'],
  watch: [2, 'Read'],
  update: [3, 'Update'],
  patch: [3, 'Update'],
  delete: [4, 'Delete'],
  deletecollection: [4, 'Delete'],
};

export interface OcsfContext {
  /** 'AWS' on AWS; 'Local' for the local stack. */
  cloudProvider: string;
  region: string;
  accountId?: string;
}

export function toOcsfApiActivity(record: RequestRecord, context: OcsfContext): Record<string, unknown> {
  const [activityId, activityName] = OCSF_ACTIVITIES[record.verb] ?? [99, 'Other'];
  const status = record.status ?? 0;
  const success = record.decision === 'allowed' && status > 0 && status < 400;
  const refused = record.decision === 'denied' || record.decision === 'held';
  return {
    class_uid: OCSF_API_ACTIVITY.classUid,
    class_name: OCSF_API_ACTIVITY.className,
    category_uid: OCSF_API_ACTIVITY.categoryUid,
    category_name: OCSF_API_ACTIVITY.categoryName,
    activity_id: activityId,
    activity_name: activityName,
    type_uid: OCSF_API_ACTIVITY.classUid * 100 + activityId,
    type_name: `${OCSF_API_ACTIVITY.className}: ${activityName}`,
    severity_id: refused ? 3 : 1,
    severity: refused ? 'Medium' : 'Informational',
    time: record.time,
    start_time: record.time,
    end_time: endOf(record),
    ...(record.durationMs !== undefined ? { duration: record.durationMs } : {}),
    status_id: success ? 1 : 2,
    status: success ? 'Success' : 'Failure',
    ...(record.status !== undefined ? { status_code: String(record.status) } : {}),
    status_detail: record.reason,
    message: `${record.agent} ${record.verb} ${record.resource || record.path}: ${record.decision}`,
    metadata: {
      version: OCSF_VERSION,
      uid: record.id,
      correlation_uid: record.id,
      log_name: 'requests',
      product: { name: 'Airlock', vendor_name: 'Airlock', feature: { name: 'proxy' } },
      logged_time: endOf(record),
    },
    actor: { user: { name: record.agent, uid: record.agentId, type: 'Other', type_id: 99 }, ...(record.grantId ? { session: { uid: record.grantId } } : {}) },
    api: {
      operation: record.verb,
      request: { uid: record.id },
      ...(record.status !== undefined ? { response: { code: status, ...(status >= 400 ? { error: String(status), error_message: record.reason } : {}) } } : {}),
      service: { name: 'kubernetes', uid: record.connection },
      ...(record.apiGroup ? { group: { name: record.apiGroup } } : {}),
    },
    http_request: { http_method: record.method, url: { path: record.path, ...(record.query ? { query_string: record.query } : {}) }, ...(record.userAgent ? { user_agent: record.userAgent } : {}) },
    src_endpoint: record.sourceIp ? { ip: record.sourceIp } : { name: 'unknown' },
    ...(record.resource
      ? {
          resources: [
            {
              type: record.subresource ? `${record.resource}/${record.subresource}` : record.resource,
              ...(record.name ? { name: record.name } : {}),
              ...(record.namespace ? { namespace: record.namespace } : {}),
              ...(record.apiGroup ? { group: { name: record.apiGroup } } : {}),
            },
          ],
        }
      : {}),
    cloud: { provider: context.cloudProvider, region: context.region, ...(context.accountId ? { account: { uid: context.accountId } } : {}) },
    unmapped: {
      airlock_decision: record.decision,
      airlock_connection: record.connection,
      ...(record.approvalId ? { airlock_approval: record.approvalId } : {}),
      ...(record.transcriptKey ? { airlock_transcript: record.transcriptKey } : {}),
    },
  };
}
