// An agent's read of container logs is bounded by default: a log can be
// gigabytes, and what comes back lands in the agent's context. When the client
// names no limitBytes / tailLines, Airlock adds its defaults to the query it
// forwards (the API server and kubelet then stop there, `logs -f` included),
// and says so in a Warning the client prints and in the record. A client that
// names its own bound keeps it: the policy decides whether pods/log is allowed
// at all, and the window's end still ends a follow.
import type { KubeRequest } from './kube-request.ts';

export interface LogReadLimits {
  /** Bytes of log returned when the client names no limitBytes. */
  limitBytes: number;
  /** Lines from the end returned when the client names no tailLines. */
  tailLines: number;
}

export const DEFAULT_LOG_READ_LIMITS: LogReadLimits = { limitBytes: 256 * 1024, tailLines: 1000 };

export interface LogReadBound {
  /** The query to forward, with the defaults added. */
  query: string;
  /** What Airlock added, as the client would have written it, e.g. "limitBytes=262144, tailLines=1000"; undefined when nothing was. */
  added: string | undefined;
}

/** True for a read of a pod's logs (GET pods/{name}/log). */
export function isLogRead(kube: KubeRequest): boolean {
  return kube.kind === 'resource' && kube.verb === 'get' && kube.resource === 'pods' && kube.subresource === 'log';
}

/** Adds the default bounds the client left out of a log read; any other request is returned as it is. */
export function boundLogRead(kube: KubeRequest, query: string, limits: LogReadLimits): LogReadBound {
  if (!isLogRead(kube)) return { query, added: undefined };
  const params = new URLSearchParams(query);
  const added: string[] = [];
  for (const [name, value] of [
    ['limitBytes', limits.limitBytes],
    ['tailLines', limits.tailLines],
  ] as const) {
    if (params.has(name)) continue;
    params.set(name, String(value));
    added.push(`${name}=${value}`);
  }
  if (!added.length) return { query, added: undefined };
  return { query: params.toString(), added: added.join(', ') };
}

/** The Warning Airlock adds to a bounded log read (RFC 7234 form, which kubectl prints as "Warning: ..."). */
export function logBoundWarning(added: string): string {
  return `299 - ${JSON.stringify(`airlock: this log read is bounded to ${added} (Airlock's defaults for agents); ask for more with --limit-bytes / --tail`)}`;
}

/** Checks configured limits: whole numbers of at least 1. */
export function checkLogReadLimits(limits: Partial<LogReadLimits>): LogReadLimits {
  const result = { ...DEFAULT_LOG_READ_LIMITS };
  for (const key of ['limitBytes', 'tailLines'] as const) {
    const value = limits[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`log read ${key} must be a whole number of at least 1 (got ${String(value)})`);
    result[key] = value;
  }
  return result;
}
