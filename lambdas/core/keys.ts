// Every gateway secret comes from one random master secret (a local file, or
// Secrets Manager on AWS) through HKDF-SHA256: an Ed25519 seed for token
// signing and an HMAC key for approval links. One secret to store and rotate;
// the previous version keeps verifying tokens during rotation.
import { createHash, createPrivateKey, hkdfSync } from 'node:crypto';
import type { JWK } from 'jose';
import type { SigningKeyJwk, SigningKeySet } from './tokens.ts';

export interface GatewaySecrets {
  signingKeys: SigningKeySet;
  /** HMAC key for approval links and forms. */
  linkKey: Buffer;
}

/** The fixed DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows it (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const MIN_MASTER_LENGTH = 32;

function derive(master: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(master, 'utf8'), Buffer.alloc(0), `airlock/${purpose}`, 32));
}

export function signingKeyFrom(master: string): SigningKeyJwk {
  const seed = derive(master, 'token-signing/ed25519');
  const key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const jwk = key.export({ format: 'jwk' }) as JWK;
  const kid = createHash('sha256').update(jwk.x!).digest('base64url').slice(0, 12);
  return { kid, jwk: { ...jwk, kid, alg: 'EdDSA', use: 'sig' } };
}

export function deriveGatewaySecrets(current: string, previous?: string): GatewaySecrets {
  if (current.length < MIN_MASTER_LENGTH) throw new Error(`the gateway master secret must be at least ${MIN_MASTER_LENGTH} characters`);
  const signingKeys: SigningKeySet = { current: signingKeyFrom(current) };
  if (previous && previous !== current && previous.length >= MIN_MASTER_LENGTH) signingKeys.previous = [signingKeyFrom(previous)];
  return { signingKeys, linkKey: derive(current, 'approval-links/hmac-sha256') };
}
