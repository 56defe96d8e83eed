// Just-in-time windows. The grant in the state store is the only truth: it is
// read on every request and checked against the clock here, so nothing — a
// stuck workflow, a cached token — can extend access past expiresAt or past a
// revocation.
import type { Agent, Connection, Grant } from './model.ts';
import { invalidQuery, MAX_QUERY_LENGTH, type KubeRequest } from './kube-request.ts';
import type { Policy } from './policy.ts';
import { AirlockError } from './status.ts';
import { formatDuration, parseDuration } from './durations.ts';

/** Throws the refusal that tells the agent what to do next; returns when the window is open. */
export function assertWindowOpen(
  context: { agent: Agent | undefined; connection: Connection | undefined; grant: Grant | undefined },
  expected: { agentId: string; connection: string },
  now: number,
): asserts context is { agent: Agent; connection: Connection; grant: Grant } {
  const { agent, connection, grant } = context;
  if (!agent) throw new AirlockError(403, 'agent_unknown', 'this agent no longer exists');
  if (agent.status !== 'enabled') throw new AirlockError(403, 'agent_disabled', `agent "${agent.name}" is disabled; ask an Airlock admin`);
  if (!connection) throw new AirlockError(404, 'connection_not_found', `no connection named "${expected.connection}"`);
  const request = `airlock access request --connection ${expected.connection} --duration 30m --reason "..."`;
  if (!grant || grant.agentId !== expected.agentId || grant.connection !== expected.connection) {
    throw new AirlockError(403, 'no_window', `no access window for this agent on "${expected.connection}"; request one: ${request}`);
  }
  const startedAt = grant.activatedAt ?? grant.requestedAt;
  if (grant.status === 'revoked' || (agent.revokedBefore ?? 0) >= startedAt || (connection.revokedBefore ?? 0) >= startedAt) {
    throw new AirlockError(403, 'window_revoked', `access window ${grant.id} was revoked; request a new one if you still need access: ${request}`);
  }
  if (grant.status === 'pending') {
    throw new AirlockError(403, 'window_pending', `access window ${grant.id} is waiting for approval; run: airlock access status ${grant.id}`);
  }
  if (grant.status === 'denied') throw new AirlockError(403, 'window_denied', `access window ${grant.id} was denied`);
  if (grant.status === 'expired' || grant.expiresAt === undefined || grant.expiresAt <= now) {
    throw new AirlockError(403, 'window_expired', `access window ${grant.id} has ended; request a new one: ${request}`);
  }
  if (grant.status !== 'active') throw new AirlockError(403, 'no_window', `access window ${grant.id} is not active`);
}

/** Validates a requested duration against the connection's policy; returns seconds. */
export function windowDurationSeconds(requested: string, policy: Policy): number {
  const seconds = parseDuration(requested);
  if (seconds === undefined) {
    throw new AirlockError(400, 'invalid_duration', `"${requested}" is not a duration (examples: 15m, 1h, 1h30m)`);
  }
  if (seconds < 60) throw new AirlockError(400, 'invalid_duration', 'the shortest window is 1m');
  if (seconds > policy.maxWindowSeconds) {
    throw new AirlockError(400, 'window_too_long', `${requested} is longer than this connection allows (maxWindow ${formatDuration(policy.maxWindowSeconds)})`);
  }
  return seconds;
}

/** The API server's own deadline for a request that is not long-running (its --request-timeout default). */
const API_SERVER_REQUEST_TIMEOUT_SECONDS = 60;
/** Verbs whose query is the API server's own: a proxy request's query goes on to the pod or service, so it is left alone. */
const DEADLINE_VERBS = new Set(['get', 'list', 'create', 'update', 'patch', 'delete', 'deletecollection']);

/**
 * The query to forward so the API server itself ends the request by the window's
 * end: a watch gets timeoutSeconds capped to the whole seconds left (set when
 * absent or 0, which means the server's default of 30-60 min); any other request
 * gets `timeout` (the API server's request deadline) capped the same way when the
 * agent's, or the server's default, would run past the window. Logs and other
 * long-running requests take no deadline; the gateway ends those streams itself.
 * `capped` says the window, not the agent, set the deadline.
 */
export function windowBoundQuery(kube: KubeRequest, expiresAt: number, now: number): { query: string; capped: boolean } {
  // At least 1: timeoutSeconds=0 would mean "the server's default".
  const secondsLeft = Math.max(1, Math.floor((expiresAt - now) / 1000));
  const params = new URLSearchParams(kube.query);
  if (kube.verb === 'watch') {
    const requested = singleValue(params, 'timeoutSeconds');
    if (requested !== undefined && !/^[0-9]{1,12}$/.test(requested)) throw invalidQuery(`timeoutSeconds=${JSON.stringify(requested.slice(0, 40))} is not a whole number of seconds`);
    const seconds = requested === undefined ? 0 : Number(requested);
    if (seconds > 0 && seconds <= secondsLeft) return { query: kube.query, capped: false };
    params.set('timeoutSeconds', String(secondsLeft));
  } else if (kube.kind === 'resource' && DEADLINE_VERBS.has(kube.verb) && kube.subresource !== 'log') {
    const requested = singleValue(params, 'timeout');
    const seconds = requested === undefined ? API_SERVER_REQUEST_TIMEOUT_SECONDS : goDurationSeconds(requested);
    if (seconds === undefined) throw invalidQuery(`timeout=${JSON.stringify(requested!.slice(0, 40))} is not a duration (examples: 30s, 1m0s)`);
    if (seconds <= secondsLeft) return { query: kube.query, capped: false };
    params.set('timeout', `${secondsLeft}s`);
  } else {
    return { query: kube.query, capped: false };
  }
  const query = params.toString();
  if (query.length > MAX_QUERY_LENGTH) throw invalidQuery(`the encoded query is ${query.length} characters long with the window's deadline; the limit is ${MAX_QUERY_LENGTH}`);
  return { query, capped: true };
}

function singleValue(params: URLSearchParams, name: string): string | undefined {
  const values = params.getAll(name);
  if (values.length > 1) throw invalidQuery(`more than one ${name} parameter; send exactly one`);
  return values[0];
}

const GO_DURATION_UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, μs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** Go's time.ParseDuration, in seconds; undefined when Go would refuse it (or it is negative). */
function goDurationSeconds(text: string): number | undefined {
  if (text === '0') return 0;
  const match = /^\+?((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(text);
  if (!match) return undefined;
  let total = 0;
  for (const [, number, unit] of match[1]!.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) total += Number(number) * GO_DURATION_UNITS[unit!]!;
  return total;
}
