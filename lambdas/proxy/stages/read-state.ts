// The state, read now (not from the token): agent enabled, connection there,
// window active, unexpired and unrevoked. A store that cannot be read refuses
// (503). The window's end also bounds the query: the API server's own deadline
// (timeoutSeconds / timeout) is capped to it (core/windows.ts); a log read the
// client left unbounded gets Airlock's default bounds (core/log-bounds.ts).
import { AirlockError } from '../../core/status.ts';
import { assertWindowOpen, windowBoundQuery } from '../../core/windows.ts';
import { boundLogRead } from '../../core/log-bounds.ts';
import { errorText } from '../../core/errors.ts';
import type { Admitted, Begun, ResolvedOptions } from './context.ts';

export async function readState(begun: Begun, options: ResolvedOptions): Promise<Admitted> {
  const { claims, kube, record } = begun;
  // claims.connection: the one the path names (checked against the token), or at the root the token's own.
  const context = await options.state.getProxyContext(claims.agentId, claims.connection, claims.grantId).catch((error: unknown) => {
    options.log.error('state store unavailable; refusing', { requestId: record.id, error: errorText(error) });
    throw new AirlockError(503, 'state_unavailable', 'the window and policy cannot be checked right now, so nothing was forwarded; retry shortly');
  });
  assertWindowOpen(context, { agentId: claims.agentId, connection: claims.connection }, options.now());
  const { agent, connection, grant } = context;
  // assertWindowOpen refuses a window without an end.
  const windowEndsAt = grant.expiresAt ?? 0;
  const windowBound = windowBoundQuery(kube, windowEndsAt, options.now());
  const logBound = boundLogRead(kube, windowBound.query, options.logReadLimits);
  const bound = { ...windowBound, query: logBound.query, ...(logBound.added ? { logBound: logBound.added } : {}) };
  return { ...begun, agent, connection, grant, windowEndsAt, bound, record: { ...record, agent: agent.name, policyVersion: connection.policyVersion } };
}
