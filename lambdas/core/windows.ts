// Just-in-time windows. The grant in the state store is the only truth: it is
// read on every request and checked against the clock here, so nothing — a
// stuck workflow, a cached token — can extend access past expiresAt or past a
// revocation.
import type { Agent, Connection, Grant } from './model.ts';
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
