// Forward: with the connection's own credential (never the agent's), over TLS
// verified against the connection's CA, only the selected headers plus an
// Audit-ID (one id across both logs). A cluster that cannot be reached is a
// 502, recorded on the allowed record (refusals.ts).
import { errorText } from '../../core/errors.ts';
import { AirlockError } from '../../core/status.ts';
import type { Forwarded, ResolvedOptions, Recorded } from './context.ts';

export async function forward(recorded: Recorded, options: ResolvedOptions): Promise<Forwarded> {
  const { request, kube, agent, connection, grant, record } = recorded;
  try {
    const credential = await options.upstreamAuth.credentialFor({ agentId: agent.id, agentName: agent.name, grantId: grant.id }, connection);
    const upstream = await options.forwarder.forward({
      server: connection.server,
      caPem: connection.caPem,
      method: request.method,
      pathAndQuery: record.query ? `${kube.path}?${record.query}` : kube.path,
      // Exactly what the write-ahead record holds, plus Kubernetes' own audit id and the credential.
      headers: { ...recorded.forwardedHeaders, 'audit-id': record.id, authorization: credential.authorization },
      body: request.body,
    });
    return { ...recorded, upstream };
  } catch (error) {
    throw new AirlockError(502, 'upstream_unavailable', `the cluster behind "${connection.name}" could not be reached: ${errorText(error, { name: false })}`);
  }
}
