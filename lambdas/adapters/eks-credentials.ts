// The upstream credential for an EKS connection: a per-agent EKS token,
// minted and cached inside Airlock and never returned to the agent.
//
//   sts:AssumeRole on the connection's role
//     RoleSessionName = SourceIdentity = sessionNameFor(agent name)
//     Tags            = airlock:agent = <agent name>, airlock:window = <grant id>
//     DurationSeconds = 900 (the minimum), no transitive tags
//   -> createEksToken (presigned GetCallerIdentity, x-k8s-aws-id = cluster)
//
// So CloudTrail (AssumeRole, SourceIdentity, session tags) and the cluster
// (the assumed-role ARN ends in the session name; EKS access entries can map
// `{{SessionName}}` into the Kubernetes user name) both name the agent.
//
// The role's trust policy must allow the gateway's principal sts:AssumeRole,
// sts:TagSession and sts:SetSourceIdentity (plus the sts:ExternalId condition
// when `externalId` is set).
//
// Cache: one credential per (agent, connection, role, cluster, region, grant),
// used until one minute before the earlier of the token's 15-minute validity
// and the assumed credentials' expiry. The grant (window) is part of the key
// so that the airlock:window tag CloudTrail records is always the window the
// request was admitted under. Concurrent requests for the same key share one
// STS call; failures are not cached. Nothing here logs, and the returned
// credential redacts itself when serialised or inspected.
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { AssumeRoleCommand, STSClient, type AssumeRoleCommandInput, type AssumeRoleCommandOutput } from '@aws-sdk/client-sts';
import { ROLE_ARN_PATTERN } from '../core/arns.ts';
import { DependencyUnavailableError, errorText } from '../core/errors.ts';
import type { AgentSession, EksConnectionTarget, EksCredentialSource, UpstreamCredential } from '../core/ports.ts';
import { REDACTED } from '../core/redaction.ts';
import { assertClusterName, assertRegion, createEksToken, partitionOf } from './eks-token.ts';

/** What the provider needs of an STS client; a real STSClient fits. */
export interface StsClientLike {
  send(command: AssumeRoleCommand): Promise<AssumeRoleCommandOutput>;
}

export interface EksCredentialProviderOptions {
  /** STS client for a region; default: one `new STSClient({ region })` per region, created on first use. */
  sts?: (region: string) => StsClientLike;
  /** Clock (epoch ms); default Date.now. Also the tokens' signing time. */
  now?: () => number;
  /** sts:ExternalId sent with every AssumeRole, when the roles' trust policies require one. */
  externalId?: string;
}

/** STS's minimum session length; the token is good for 15 minutes anyway. */
export const ASSUME_ROLE_DURATION_SECONDS = 900;
/** A cached credential is replaced this long before it would stop working. */
export const REFRESH_MARGIN_MS = 60_000;
export const AGENT_TAG_KEY = 'airlock:agent';
export const WINDOW_TAG_KEY = 'airlock:window';

// ---------------------------------------------------------------- names

const SESSION_PREFIX = 'airlock-';
const SESSION_NAME_MAX = 64;
const HASH_CHARS = 12; // 48 bits of SHA-256, hex
/** RoleSessionName / SourceIdentity characters, less '=' (kept for the hash marker). */
const sessionPlain = /^[A-Za-z0-9_+,.@-]+$/;
const sessionUnsafe = /[^A-Za-z0-9_+,.@-]/gu;

function shortHash(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex').slice(0, HASH_CHARS);
}

/**
 * The RoleSessionName (and SourceIdentity) for an agent: `airlock-<agent name>`.
 *
 * The prefix marks the session as an Airlock agent wherever it shows up
 * (CloudTrail, the assumed-role ARN, the Kubernetes user name), so an agent
 * can never pass for a human whose SourceIdentity is their plain user name.
 * STS allows 2-64 characters of [A-Za-z0-9_+=,.@-]. A name that fits as it is
 * (and contains no '=') is used unchanged. Any other name is sanitised
 * (disallowed characters become '-'), cut to fit, and ends in '=' plus 12 hex
 * digits of SHA-256 of the full original name. Plain results never contain
 * '=' and hashed ones contain exactly one, so a plain name can never collide
 * with a hashed one; two hashed names collide only if their readable part and
 * a 48-bit hash both do. Deterministic: the same name always gives the same
 * session name.
 */
export function sessionNameFor(agentName: string): string {
  if (typeof agentName !== 'string' || agentName.length === 0) {
    throw new Error('sessionNameFor: the agent name is empty');
  }
  const plain = SESSION_PREFIX + agentName;
  if (sessionPlain.test(agentName) && plain.length <= SESSION_NAME_MAX) return plain;
  const room = SESSION_NAME_MAX - SESSION_PREFIX.length - 1 - HASH_CHARS;
  const readable = agentName.replace(sessionUnsafe, '-').slice(0, room);
  return `${SESSION_PREFIX}${readable}=${shortHash(agentName)}`;
}

const TAG_VALUE_MAX = 256;
const tagValueAllowed = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const tagValueUnsafe = /[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu;

/**
 * A session tag value for `value`: unchanged when STS accepts it (≤ 256
 * characters of [\p{L}\p{Z}\p{N}_.:/=+\-@]); otherwise disallowed characters
 * become '_', the text is cut to fit, and '=' plus 12 hex digits of SHA-256 of
 * the original is appended. Tags describe; the session name is the identity.
 */
export function tagValueFor(value: string): string {
  const chars = Array.from(value);
  if (chars.length <= TAG_VALUE_MAX && tagValueAllowed.test(value)) return value;
  const readable = Array.from(value.replace(tagValueUnsafe, '_'))
    .slice(0, TAG_VALUE_MAX - 1 - HASH_CHARS)
    .join('');
  return `${readable}=${shortHash(value)}`;
}

function assertTarget(target: EksConnectionTarget): void {
  if (!target.connectionName) throw new Error('EKS connection target without a connection name');
  assertClusterName(target.clusterName);
  assertRegion(target.region);
  const match = ROLE_ARN_PATTERN.exec(target.roleArn ?? '');
  if (!match) {
    throw new Error(`connection ${target.connectionName}: invalid role ARN ${JSON.stringify(target.roleArn)} ` + '(expected arn:aws:iam::<12-digit account>:role/<name>)');
  }
  if (match[1] !== partitionOf(target.region)) {
    throw new Error(`connection ${target.connectionName}: role ARN partition ${match[1]} does not match region ${target.region} ` + `(partition ${partitionOf(target.region)})`);
  }
}

function assertSession(session: AgentSession): void {
  for (const field of ['agentId', 'agentName', 'grantId'] as const) {
    if (typeof session[field] !== 'string' || session[field].length === 0) {
      throw new Error(`agent session without ${field}`);
    }
  }
}

// ---------------------------------------------------------------- credential

/** The credential's marker: the one redaction marker, in the lower case its unit test pins. */
const REDACTED_CREDENTIAL = REDACTED.toLowerCase();

/** A frozen credential whose token never appears in JSON or util.inspect output. */
function sealedCredential(authorization: string, expiresAt: number): UpstreamCredential {
  const credential: UpstreamCredential = { authorization, expiresAt };
  Object.defineProperty(credential, 'toJSON', {
    value: () => ({ authorization: REDACTED_CREDENTIAL, expiresAt }),
    enumerable: false,
  });
  Object.defineProperty(credential, inspect.custom, {
    value: () => `UpstreamCredential { authorization: '${REDACTED_CREDENTIAL}', expiresAt: ${new Date(expiresAt).toISOString()} }`,
    enumerable: false,
  });
  return Object.freeze(credential);
}

interface CacheEntry {
  promise: Promise<UpstreamCredential>;
  /** Set once the promise has resolved: when to stop using the credential. */
  usableUntil?: number;
}

export class EksCredentialProvider implements EksCredentialSource {
  readonly #stsFor: (region: string) => StsClientLike;
  readonly #now: () => number;
  readonly #externalId: string | undefined;
  readonly #clients = new Map<string, StsClientLike>();
  readonly #cache = new Map<string, CacheEntry>();

  constructor(options: EksCredentialProviderOptions = {}) {
    this.#stsFor = options.sts ?? ((region) => new STSClient({ region }));
    this.#now = options.now ?? Date.now;
    this.#externalId = options.externalId;
  }

  /** The upstream credential for this agent on this connection (cached, single-flight). */
  credentialFor(session: AgentSession, target: EksConnectionTarget): Promise<UpstreamCredential> {
    try {
      assertSession(session);
      assertTarget(target);
    } catch (error) {
      return Promise.reject(error);
    }
    const key = JSON.stringify([session.agentId, target.connectionName, target.roleArn, target.clusterName, target.region, session.grantId]);
    const now = this.#now();
    const cached = this.#cache.get(key);
    if (cached && (cached.usableUntil === undefined || now < cached.usableUntil)) return cached.promise;

    this.#prune(now);
    const entry: CacheEntry = { promise: this.#mint(session, target) };
    this.#cache.set(key, entry);
    entry.promise.then(
      (credential) => {
        entry.usableUntil = credential.expiresAt;
      },
      () => {
        if (this.#cache.get(key) === entry) this.#cache.delete(key);
      },
    );
    return entry.promise;
  }

  /** Drops cached credentials: one agent's (e.g. when it is disabled), or all. */
  invalidate(agentId?: string): void {
    for (const key of [...this.#cache.keys()]) {
      if (agentId === undefined || (JSON.parse(key) as string[])[0] === agentId) this.#cache.delete(key);
    }
  }

  #prune(now: number): void {
    for (const [key, entry] of this.#cache) {
      if (entry.usableUntil !== undefined && entry.usableUntil <= now) this.#cache.delete(key);
    }
  }

  #client(region: string): StsClientLike {
    let client = this.#clients.get(region);
    if (!client) {
      client = this.#stsFor(region);
      this.#clients.set(region, client);
    }
    return client;
  }

  async #mint(session: AgentSession, target: EksConnectionTarget): Promise<UpstreamCredential> {
    const sessionName = sessionNameFor(session.agentName);
    const input: AssumeRoleCommandInput = {
      RoleArn: target.roleArn,
      RoleSessionName: sessionName,
      SourceIdentity: sessionName,
      DurationSeconds: ASSUME_ROLE_DURATION_SECONDS,
      Tags: [
        { Key: AGENT_TAG_KEY, Value: tagValueFor(session.agentName) },
        { Key: WINDOW_TAG_KEY, Value: tagValueFor(session.grantId) },
      ],
      ...(this.#externalId ? { ExternalId: this.#externalId } : {}),
    };

    let output: AssumeRoleCommandOutput;
    try {
      output = await this.#client(target.region).send(new AssumeRoleCommand(input));
    } catch (error) {
      throw new DependencyUnavailableError('sts', `sts:AssumeRole on ${target.roleArn} for agent ${session.agentName} (connection ${target.connectionName}) ` + `failed: ${errorText(error)}`, {
        cause: error,
      });
    }
    const assumed = output?.Credentials;
    const expiration = assumed?.Expiration instanceof Date ? assumed.Expiration.getTime() : Number.NaN;
    if (!assumed?.AccessKeyId || !assumed.SecretAccessKey || !assumed.SessionToken || !Number.isFinite(expiration)) {
      throw new Error(`sts:AssumeRole on ${target.roleArn} returned no complete credentials`);
    }

    const { token, expiresAt } = await createEksToken({
      clusterName: target.clusterName,
      region: target.region,
      credentials: {
        accessKeyId: assumed.AccessKeyId,
        secretAccessKey: assumed.SecretAccessKey,
        sessionToken: assumed.SessionToken,
        expiration: assumed.Expiration,
      },
      now: new Date(this.#now()),
    });
    const usableUntil = Math.min(expiresAt.getTime(), expiration) - REFRESH_MARGIN_MS;
    return sealedCredential(`Bearer ${token}`, usableUntil);
  }
}
