// The Airlock token: signature, type, issuer, expiry, audience = this connection
// (core/tokens.ts). From here the record names the agent and its window.
import { AirlockError } from '../../core/status.ts';
import type { TokenClaims } from '../../core/tokens.ts';
import type { Authenticated, ResolvedOptions, Received } from './context.ts';

export async function authenticate(received: Received, options: ResolvedOptions): Promise<Authenticated> {
  const claims = await verifiedClaims(received, options);
  return { ...received, claims, record: { ...received.record, connection: claims.connection, agentId: claims.agentId, agent: claims.agentName, grantId: claims.grantId } };
}

async function verifiedClaims({ request }: Received, options: ResolvedOptions): Promise<TokenClaims> {
  const authorization = request.headers.authorization ?? [];
  if (authorization.length > 1) throw new AirlockError(400, 'duplicate_authorization', 'more than one Authorization header');
  const match = /^Bearer ([^\s]+)$/.exec(authorization[0] ?? '');
  const token = match?.[1] ?? '';
  try {
    return await options.tokens.verify(token, request.connection);
  } catch (error) {
    // A token for another connection when this one does not exist: say so plainly.
    if (error instanceof AirlockError && error.code === 'wrong_connection' && request.connection !== undefined && !(await options.state.getConnection(request.connection))) {
      throw new AirlockError(404, 'connection_not_found', `no connection named "${request.connection}"`);
    }
    throw error;
  }
}
