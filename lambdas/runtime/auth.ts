// Who is calling the control plane. Agents: an agent key over HTTP Basic
// (id:key), or on AWS their IAM principal as verified by API Gateway. Admins:
// a bearer admin key locally, IAM on AWS.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { verifyAgentKey } from '../core/agent-keys.ts';
import type { Agent } from '../core/model.ts';
import type { StateStore } from '../core/ports.ts';
import { AirlockError } from '../core/status.ts';
import { isId } from '../core/ids.ts';
import { header } from './http.ts';
import { IAM_PREFIX } from '../routes.ts';
import type { AdminAuthConfig } from './services.ts';

/** Successful key checks are remembered briefly: scrypt is slow on purpose, polling should not pay it every time. */
const verifiedKeys = new Map<string, number>();
const VERIFIED_KEY_TTL_MS = 5 * 60_000;

function rememberKey(cacheKey: string, now: number): void {
  if (verifiedKeys.size > 10_000) verifiedKeys.clear();
  verifiedKeys.set(cacheKey, now + VERIFIED_KEY_TTL_MS);
}

export async function authenticateAgent(event: APIGatewayProxyEvent, state: StateStore, now: number): Promise<Agent> {
  const authorization = header(event, 'authorization');
  let agent: Agent | undefined;
  // Only the /v1/iam routes are IAM-authorized; elsewhere a userArn cannot be present.
  const iamCaller = event.resource?.startsWith(`${IAM_PREFIX}/`) ? event.requestContext?.identity?.userArn : undefined;
  if (event.resource?.startsWith(`${IAM_PREFIX}/`) && !iamCaller) throw new AirlockError(401, 'missing_credentials', 'sign this request with AWS SigV4');
  if (iamCaller) {
    // Only set on routes where API Gateway's IAM authorization verified the SigV4 signature.
    agent = await state.getAgentByPrincipal(principalOf(iamCaller));
    if (!agent) throw new AirlockError(403, 'unknown_principal', 'this IAM principal is not registered as an Airlock agent');
  } else if (authorization?.startsWith('Basic ')) {
    const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
    const separator = decoded.indexOf(':');
    const id = decoded.slice(0, separator);
    const secret = decoded.slice(separator + 1);
    if (separator < 0 || !isId(id, 'agt')) throw new AirlockError(401, 'invalid_credentials', 'agent id or key is wrong');
    agent = await state.getAgent(id);
    if (!agent?.secretHash) {
      await verifyAgentKey(secret, 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAA'); // same cost either way
      throw new AirlockError(401, 'invalid_credentials', 'agent id or key is wrong');
    }
    const cacheKey = createHash('sha256').update(`${id}\n${agent.secretHash}\n${secret}`).digest('hex');
    if ((verifiedKeys.get(cacheKey) ?? 0) < now) {
      if (!(await verifyAgentKey(secret, agent.secretHash))) throw new AirlockError(401, 'invalid_credentials', 'agent id or key is wrong');
      rememberKey(cacheKey, now);
    }
  } else {
    throw new AirlockError(401, 'missing_credentials', 'sign in as an agent: airlock login --agent-id ID --secret-file FILE');
  }
  if (agent.status !== 'enabled') throw new AirlockError(403, 'agent_disabled', `agent "${agent.name}" is disabled`);
  return agent;
}

/** arn:aws:sts::123:assumed-role/Role/session -> arn:aws:iam::123:role/Role (sessions of a role are that role). */
export function principalOf(arn: string): string {
  const assumed = /^arn:(aws[\w-]*):sts::(\d{12}):assumed-role\/([^/]+)\/[^/]+$/.exec(arn);
  if (assumed) return `arn:${assumed[1]}:iam::${assumed[2]}:role/${assumed[3]}`;
  return arn;
}

export function authenticateAdmin(event: APIGatewayProxyEvent, config: AdminAuthConfig): string {
  if (config.mode === 'iam') {
    const arn = event.requestContext?.identity?.userArn;
    if (!arn) throw new AirlockError(401, 'missing_credentials', 'admin calls must be signed with AWS SigV4');
    return arn;
  }
  const authorization = header(event, 'authorization') ?? '';
  const match = /^Bearer (\S+)$/.exec(authorization);
  if (!match) throw new AirlockError(401, 'missing_credentials', 'admin calls need the admin key (AIRLOCK_HOME/admin.key)');
  const presented = createHash('sha256').update(match[1]!).digest();
  const expected = Buffer.from(config.keySha256, 'hex');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    throw new AirlockError(401, 'invalid_credentials', 'admin key is wrong');
  }
  return 'admin';
}
