// Airlock tokens: what an agent presents on /k8s. EdDSA (Ed25519) JWS via
// `jose`, ≤ 15 minutes, never past the window's end, bound to
// {agent, connection, window}. The cluster never sees them and never accepts
// them: the gateway swaps them for the connection's own credential.
import { createHash } from 'node:crypto';
import { SignJWT, errors, exportJWK, generateKeyPair, importJWK, jwtVerify, decodeProtectedHeader, type JWK, type JWTPayload, type CryptoKey, type KeyObject } from 'jose';
import { AirlockError } from './status.ts';
import { newId } from './ids.ts';

export const TOKEN_MAX_TTL_SECONDS = 900;
/** Tokens are small; anything bigger is refused before any parsing. */
export const TOKEN_MAX_LENGTH = 4096;
const TOKEN_TYPE = 'airlock+jwt';
/** An MCP token names the agent only (the connection is chosen per tool call); its own type keeps it off /k8s. */
const MCP_TOKEN_TYPE = 'airlock-mcp+jwt';
const ALGORITHM = 'EdDSA';
const CLOCK_TOLERANCE_SECONDS = 5;

export interface SigningKeyJwk {
  kid: string;
  /** Private JWK (OKP/Ed25519). */
  jwk: JWK;
}

/** The current signing key plus older ones still accepted for verification (rotation). */
export interface SigningKeySet {
  current: SigningKeyJwk;
  previous?: SigningKeyJwk[];
}

export async function generateSigningKey(): Promise<SigningKeyJwk> {
  const { privateKey } = await generateKeyPair(ALGORITHM, { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(privateKey);
  return { kid: newId('tok').slice(4, 16), jwk };
}

export interface TokenClaims {
  tokenId: string;
  agentId: string;
  agentName: string;
  connection: string;
  grantId: string;
  issuedAt: number;
  expiresAt: number;
  /** A token of `airlock plan` / `airlock apply`: every request it carries belongs to that plan. */
  plan?: PlanBinding;
}

/** plan: mutating requests are sent as dry runs and collected; apply: planned changes pass once each. */
export interface PlanBinding {
  planId: string;
  mode: 'plan' | 'apply';
}

/** An MCP access token: the agent, for the MCP endpoint (audience = its resource URL, RFC 8707). */
export interface McpTokenClaims {
  tokenId: string;
  agentId: string;
  agentName: string;
  issuedAt: number;
  expiresAt: number;
}

export interface IssueInput {
  agentId: string;
  agentName: string;
  connection: string;
  grantId: string;
  /** The window's end (epoch ms): the token never outlives it. */
  windowExpiresAt: number;
  plan?: PlanBinding;
}

type Key = CryptoKey | KeyObject;

function publicJwk(jwk: JWK): JWK {
  const { d: _d, ...rest } = jwk;
  return rest;
}

export class TokenService {
  private readonly issuer: string;
  private readonly now: () => number;
  private readonly keySet: SigningKeySet;
  private signingKey: Promise<Key> | undefined;
  private readonly verifyKeys = new Map<string, Promise<Key>>();
  /** Window tokens whose signature verified, by SHA-256 (see verify). */
  private readonly verified = new Map<string, VerifiedToken>();

  constructor(keySet: SigningKeySet, options: { issuer: string; now?: () => number }) {
    this.keySet = keySet;
    this.issuer = options.issuer;
    this.now = options.now ?? Date.now;
  }

  private keyForSigning(): Promise<Key> {
    this.signingKey ??= importJWK(this.keySet.current.jwk, ALGORITHM) as Promise<Key>;
    return this.signingKey;
  }

  private keyForVerifying(kid: string): Promise<Key> | undefined {
    const cached = this.verifyKeys.get(kid);
    if (cached) return cached;
    const entry = [this.keySet.current, ...(this.keySet.previous ?? [])].find((key) => key.kid === kid);
    if (!entry) return undefined;
    const key = importJWK(publicJwk(entry.jwk), ALGORITHM) as Promise<Key>;
    this.verifyKeys.set(kid, key);
    return key;
  }

  async issue(input: IssueInput): Promise<{ token: string; expiresAt: number; tokenId: string }> {
    const nowMs = this.now();
    const expiresAt = Math.min(nowMs + TOKEN_MAX_TTL_SECONDS * 1000, input.windowExpiresAt);
    if (expiresAt <= nowMs + 1000) {
      throw new AirlockError(403, 'window_ending', 'the access window ends now; request a new window');
    }
    return this.sign(
      { win: input.grantId, agn: input.agentName, ...(input.plan ? { pln: input.plan.planId, pmd: input.plan.mode } : {}) },
      TOKEN_TYPE,
      input.agentId,
      input.connection,
      nowMs,
      expiresAt,
    );
  }

  private async sign(claims: JWTPayload, type: string, subject: string, audience: string, nowMs: number, expiresAt: number): Promise<{ token: string; expiresAt: number; tokenId: string }> {
    const tokenId = newId('tok');
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: ALGORITHM, typ: type, kid: this.keySet.current.kid })
      .setIssuer(this.issuer)
      .setSubject(subject)
      .setAudience(audience)
      .setJti(tokenId)
      .setIssuedAt(Math.floor(nowMs / 1000))
      .setNotBefore(Math.floor(nowMs / 1000))
      .setExpirationTime(Math.floor(expiresAt / 1000))
      .sign(await this.keyForSigning());
    return { token, expiresAt: Math.floor(expiresAt / 1000) * 1000, tokenId };
  }

  /** The MCP endpoint's resource identifier (RFC 9728 / RFC 8707): the audience of MCP tokens. */
  get mcpResource(): string {
    return `${this.issuer.replace(/\/+$/, '')}/mcp`;
  }

  /** A token for the MCP endpoint: ≤ 15 minutes, bound to the agent and the MCP resource only. */
  async issueMcp(input: { agentId: string; agentName: string }): Promise<{ token: string; expiresAt: number; tokenId: string }> {
    const nowMs = this.now();
    return this.sign({ agn: input.agentName }, MCP_TOKEN_TYPE, input.agentId, this.mcpResource, nowMs, nowMs + TOKEN_MAX_TTL_SECONDS * 1000);
  }

  /** Verifies an MCP token: signature, type, issuer, audience (= the MCP resource) and time. Throws AirlockError(401). */
  async verifyMcp(token: string): Promise<McpTokenClaims> {
    const payload = await this.verifyJws(token, MCP_TOKEN_TYPE);
    const audience = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (audience.length !== 1 || audience[0] !== this.mcpResource) throw invalid('invalid_token', `token is not for ${this.mcpResource}`);
    if (typeof payload.agn !== 'string' || typeof payload.sub !== 'string') throw invalid('malformed_token', 'token is missing Airlock claims');
    return { tokenId: payload.jti!, agentId: payload.sub, agentName: payload.agn, issuedAt: payload.iat! * 1000, expiresAt: payload.exp! * 1000 };
  }

  /** Verifies signature, type, issuer, audience (= connection) and time. Throws AirlockError(401). */
  /** `connection` undefined: a request at the root, for whichever one connection the token names. */
  async verify(token: string, connection: string | undefined): Promise<TokenClaims> {
    // A token whose signature verified is remembered, by its hash, while its time claims hold:
    // what it says cannot change. Whether its window is open and its agent enabled is read on
    // every request (readState), so nothing that can be revoked is remembered here.
    const digest = token.length > 0 && token.length <= TOKEN_MAX_LENGTH ? createHash('sha256').update(token).digest('base64url') : undefined;
    let entry = digest ? this.verified.get(digest) : undefined;
    if (!entry || !withinTime(entry, this.now())) {
      if (digest) this.verified.delete(digest);
      entry = await this.verifyWindowToken(token);
      if (this.verified.size >= VERIFIED_MEMO_SIZE) this.verified.delete(this.verified.keys().next().value!);
      if (digest) this.verified.set(digest, entry);
    }
    if (connection !== undefined && entry.claims.connection !== connection) {
      throw invalid('wrong_connection', `token was issued for connection "${entry.claims.connection}", not "${connection}"; get a token for this connection`);
    }
    return entry.claims;
  }

  private async verifyWindowToken(token: string): Promise<VerifiedToken> {
    const payload = await this.verifyJws(token, TOKEN_TYPE);
    const audience = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    const named = audience.length === 1 && typeof audience[0] === 'string' ? audience[0] : undefined;
    if (named === undefined) throw invalid('wrong_connection', `token was issued for connection "${String(audience[0])}", not one connection; get a token for this connection`);
    if (typeof payload.win !== 'string' || typeof payload.agn !== 'string' || typeof payload.sub !== 'string') {
      throw invalid('malformed_token', 'token is missing Airlock claims');
    }
    // A plan claim is whole or absent: a token that half-names a plan is not read as an ordinary one.
    if ((payload.pln !== undefined || payload.pmd !== undefined) && (typeof payload.pln !== 'string' || (payload.pmd !== 'plan' && payload.pmd !== 'apply'))) {
      throw invalid('malformed_token', 'token has a malformed plan claim');
    }
    const claims: TokenClaims = {
      tokenId: payload.jti!,
      agentId: payload.sub,
      agentName: payload.agn,
      connection: named,
      grantId: payload.win,
      issuedAt: payload.iat! * 1000,
      expiresAt: payload.exp! * 1000,
      ...(typeof payload.pln === 'string' ? { plan: { planId: payload.pln, mode: payload.pmd as PlanBinding['mode'] } } : {}),
    };
    return { claims, notBefore: payload.nbf! };
  }

  /** Shape, header, signature, issuer and time of one token type; the caller checks audience and claims. */
  private async verifyJws(token: string, type: string): Promise<JWTPayload> {
    if (token.length === 0) throw invalid('missing_token', 'no token: send "Authorization: Bearer <airlock token>" (use `airlock kubeconfig`)');
    if (token.length > TOKEN_MAX_LENGTH) throw invalid('malformed_token', 'token is too large to be an Airlock token');
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
      throw invalid('malformed_token', 'token is not an Airlock token (expected a signed JWT from POST /v1/tokens)');
    }
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw invalid('malformed_token', 'token header cannot be decoded');
    }
    if (header.alg !== ALGORITHM) throw invalid('malformed_token', `token algorithm "${String(header.alg)}" is not accepted`);
    if (header.typ !== type)
      throw invalid(
        'malformed_token',
        type === MCP_TOKEN_TYPE ? 'token is not an Airlock MCP token (get one from the MCP token endpoint, POST /v1/mcp/token)' : 'token is not an Airlock token (wrong type)',
      );
    const key = typeof header.kid === 'string' ? this.keyForVerifying(header.kid) : undefined;
    if (!key) throw invalid('invalid_token', 'token was signed by a key this gateway does not know');
    try {
      const { payload } = await jwtVerify(token, await key, {
        algorithms: [ALGORITHM],
        typ: type,
        issuer: this.issuer,
        currentDate: new Date(this.now()),
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        maxTokenAge: TOKEN_MAX_TTL_SECONDS + CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['sub', 'aud', 'jti', 'exp', 'iat', 'nbf'],
      });
      return payload;
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw invalid('token_expired', 'token expired: get a new one (`airlock token`; kubectl does this for you)');
      if (error instanceof errors.JWTClaimValidationFailed) {
        throw invalid('invalid_token', `token claim "${error.claim}" is not valid (${error.reason})`);
      }
      if (error instanceof errors.JWSSignatureVerificationFailed) throw invalid('invalid_token', 'token signature does not verify');
      throw invalid('malformed_token', 'token cannot be verified');
    }
  }
}

/** How many verified tokens are remembered (the oldest goes first). */
const VERIFIED_MEMO_SIZE = 10_000;

interface VerifiedToken {
  claims: TokenClaims;
  /** nbf, in seconds. */
  notBefore: number;
}

/** jwtVerify's time checks (nbf, exp, iat and maxTokenAge, with the clock tolerance), for a remembered token. */
function withinTime({ claims, notBefore }: VerifiedToken, nowMs: number): boolean {
  const now = Math.floor(nowMs / 1000);
  const age = now - claims.issuedAt / 1000;
  return (
    notBefore <= now + CLOCK_TOLERANCE_SECONDS &&
    claims.expiresAt / 1000 > now - CLOCK_TOLERANCE_SECONDS &&
    age - CLOCK_TOLERANCE_SECONDS <= TOKEN_MAX_TTL_SECONDS + CLOCK_TOLERANCE_SECONDS &&
    age >= -CLOCK_TOLERANCE_SECONDS
  );
}

function invalid(code: string, message: string): AirlockError {
  return new AirlockError(401, code, message);
}
