import { describe, expect, it } from 'vitest';
import { SignJWT, importJWK } from 'jose';
import { generateSigningKey, TokenService, TOKEN_MAX_TTL_SECONDS } from '../../lambdas/core/tokens.ts';
import { AirlockError } from '../../lambdas/core/status.ts';

const ISSUER = 'https://airlock.test';
const base = { agentId: 'agt_a', agentName: 'bot', connection: 'prod', grantId: 'gr_1' };

async function service(now = () => Date.now()) {
  return new TokenService({ current: await generateSigningKey() }, { issuer: ISSUER, now });
}

async function refusal(promise: Promise<unknown>): Promise<AirlockError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AirlockError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('Airlock tokens', () => {
  it('binds agent, connection and window, and lasts at most 15 minutes', async () => {
    const tokens = await service();
    const issued = await tokens.issue({ ...base, windowExpiresAt: Date.now() + 3_600_000 });
    expect(issued.expiresAt - Date.now()).toBeLessThanOrEqual(TOKEN_MAX_TTL_SECONDS * 1000);
    const claims = await tokens.verify(issued.token, 'prod');
    expect(claims).toMatchObject({ agentId: 'agt_a', agentName: 'bot', connection: 'prod', grantId: 'gr_1', tokenId: issued.tokenId });
  });

  it('never outlives the window', async () => {
    const tokens = await service();
    const windowEnd = Date.now() + 120_000;
    const issued = await tokens.issue({ ...base, windowExpiresAt: windowEnd });
    expect(issued.expiresAt).toBeLessThanOrEqual(windowEnd);
  });

  it('is not issued for a window that is ending now', async () => {
    const tokens = await service();
    expect((await refusal(tokens.issue({ ...base, windowExpiresAt: Date.now() + 500 }))).code).toBe('window_ending');
  });

  it('gets a unique id every time', async () => {
    const tokens = await service();
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) ids.add((await tokens.issue({ ...base, windowExpiresAt: Date.now() + 3_600_000 })).tokenId);
    expect(ids.size).toBe(20);
  });

  it('a token verified once (remembered by its hash) is still refused for another connection, after expiry, and before nbf', async () => {
    let clock = Date.now();
    const tokens = await service(() => clock);
    const issued = await tokens.issue({ ...base, windowExpiresAt: clock + 3_600_000 });
    expect((await tokens.verify(issued.token, 'prod')).grantId).toBe('gr_1');
    expect((await tokens.verify(issued.token, undefined)).connection).toBe('prod');
    expect((await refusal(tokens.verify(issued.token, 'staging'))).code).toBe('wrong_connection');
    clock = issued.expiresAt + 5_000;
    expect((await refusal(tokens.verify(issued.token, 'prod'))).code).toBe('token_expired');
    clock = Date.now() - 60_000;
    expect((await refusal(tokens.verify(issued.token, 'prod'))).code).toBe('invalid_token');
    clock = Date.now();
    expect((await tokens.verify(issued.token, 'prod')).grantId).toBe('gr_1');
    // The same claims under another signature: not the remembered token.
    const [header, payload, signature] = issued.token.split('.');
    const flipped = `${header}.${payload}.${signature!.startsWith('A') ? 'B' : 'A'}${signature!.slice(1)}`;
    expect((await refusal(tokens.verify(flipped, 'prod'))).code).toBe('invalid_token');
  });

  it('refuses another audience, expiry, a foreign key, alg none, HS256 key confusion, junk', async () => {
    let clock = Date.now();
    const tokens = await service(() => clock);
    const issued = await tokens.issue({ ...base, windowExpiresAt: clock + 3_600_000 });
    expect((await refusal(tokens.verify(issued.token, 'staging'))).code).toBe('wrong_connection');

    clock += 16 * 60_000;
    expect((await refusal(tokens.verify(issued.token, 'prod'))).code).toBe('token_expired');
    clock = Date.now();

    const other = await service();
    const foreign = await other.issue({ ...base, windowExpiresAt: clock + 3_600_000 });
    expect((await refusal(tokens.verify(foreign.token, 'prod'))).status).toBe(401);

    const [header, payload] = issued.token.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'airlock+jwt' })).toString('base64url')}.${payload}.`;
    expect((await refusal(tokens.verify(none, 'prod'))).code).toBe('malformed_token');

    // HS256 signed with the public key bytes: the classic key-confusion forgery.
    const publicJwk = JSON.parse(Buffer.from(header!, 'base64url').toString()) as { kid: string };
    const hsKey = await importJWK({ kty: 'oct', k: Buffer.from('public-key-material').toString('base64url') }, 'HS256');
    const confused = await new SignJWT({ win: 'gr_1', agn: 'bot' })
      .setProtectedHeader({ alg: 'HS256', typ: 'airlock+jwt', kid: publicJwk.kid })
      .setIssuer(ISSUER)
      .setSubject('agt_a')
      .setAudience('prod')
      .setJti('x')
      .setIssuedAt()
      .setNotBefore('0s')
      .setExpirationTime('5m')
      .sign(hsKey);
    expect((await refusal(tokens.verify(confused, 'prod'))).message).toContain('"HS256" is not accepted');

    for (const junk of ['', 'a.b', 'a.b.c.d', '....', 'x'.repeat(5000), issued.token.slice(0, -10)]) {
      expect((await refusal(tokens.verify(junk, 'prod'))).status).toBe(401);
    }
  });

  it('refuses a token that is not yet valid, or from another issuer', async () => {
    const key = await generateSigningKey();
    const future = new TokenService({ current: key }, { issuer: ISSUER, now: () => Date.now() + 10 * 60_000 });
    const early = await future.issue({ ...base, windowExpiresAt: Date.now() + 3_600_000 });
    const verifier = new TokenService({ current: key }, { issuer: ISSUER });
    expect((await refusal(verifier.verify(early.token, 'prod'))).status).toBe(401);
    const elsewhere = new TokenService({ current: key }, { issuer: 'https://other.test' });
    const foreign = await elsewhere.issue({ ...base, windowExpiresAt: Date.now() + 3_600_000 });
    expect((await refusal(verifier.verify(foreign.token, 'prod'))).message).toContain('"iss"');
  });

  it('accepts tokens from a previous key during rotation', async () => {
    const old = await generateSigningKey();
    const before = new TokenService({ current: old }, { issuer: ISSUER });
    const issued = await before.issue({ ...base, windowExpiresAt: Date.now() + 3_600_000 });
    const after = new TokenService({ current: await generateSigningKey(), previous: [old] }, { issuer: ISSUER });
    expect((await after.verify(issued.token, 'prod')).agentId).toBe('agt_a');
  });
});
