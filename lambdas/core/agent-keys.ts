// Agent keys: 256 random bits shown once, stored only as an scrypt hash.
// scrypt is deliberately slow (≈50 ms) so a leaked table is not a key list.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const PREFIX = 'alk_';
const PARAMS = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const KEY_LENGTH = 32;

export function newAgentKey(): string {
  return `${PREFIX}${randomBytes(32).toString('base64url')}`;
}

function scryptAsync(secret: string, salt: Buffer, params: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, KEY_LENGTH, params, (error, derived) => (error ? reject(error) : resolve(derived)));
  });
}

export async function hashAgentKey(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const derived = await scryptAsync(secret, salt, PARAMS);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64url'), derived.toString('base64url')].join('$');
}

/** Constant-time check of a presented key against a stored hash. */
export async function verifyAgentKey(secret: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  if (!secret.startsWith(PREFIX) || secret.length > 128) {
    // Still spend the time, so timing does not tell a malformed key from a wrong one.
    await scryptAsync('x', Buffer.alloc(16), PARAMS);
    return false;
  }
  const expected = Buffer.from(hash, 'base64url');
  const derived = await scryptAsync(secret, Buffer.from(salt, 'base64url'), {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: PARAMS.maxmem,
  });
  return derived.length === expected.length && timingSafeEqual(derived, expected);
}
