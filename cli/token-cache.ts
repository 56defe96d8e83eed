// kubectl runs `airlock token` for every command it runs, and an agent runs
// kubectl many times a minute: the token it was last given is kept on disk and
// handed out again until shortly before it expires. Safe because a token only
// names who and which window: the gateway checks the window (open, unexpired,
// unrevoked) and the agent (enabled) on every request, so a revoked window or a
// disabled agent is refused on the next request whatever token is presented.
// One 0600 file per (endpoint, agent, connection, window, plan), in a 0700
// directory beside the agent profiles; logout removes the agent's.
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { normalizeEndpoint } from './profile.ts';

/** A token is handed out again only while it has more than this left. */
export const TOKEN_REUSE_MARGIN_MS = 60_000;

export interface TokenCacheKey {
  endpoint: string;
  agent: string;
  connection: string;
  /** The window the profile names for the connection (a new window: a new token). */
  window?: string;
  plan?: string;
  mode?: string;
}

export interface CachedToken {
  token: string;
  /** ISO time, as the gateway gave it (the ExecCredential's expirationTimestamp). */
  expiresAt: string;
}

const cacheDir = (profileDir: string) => join(profileDir, 'tokens');
const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);
const agentPrefix = (key: Pick<TokenCacheKey, 'endpoint' | 'agent'>) => hash(`${normalizeEndpoint(key.endpoint)}\n${key.agent}`);

function cacheFile(profileDir: string, key: TokenCacheKey): string {
  const rest = hash(JSON.stringify([key.connection, key.window ?? '', key.plan ?? '', key.mode ?? '']));
  return join(cacheDir(profileDir), `${agentPrefix(key)}-${rest}.json`);
}

/** The cached token for `key`, if it has more than TOKEN_REUSE_MARGIN_MS left at `now`. */
export function readCachedToken(profileDir: string, key: TokenCacheKey, now = Date.now()): CachedToken | undefined {
  let cached: Partial<CachedToken>;
  try {
    cached = JSON.parse(readFileSync(cacheFile(profileDir, key), 'utf8')) as Partial<CachedToken>;
  } catch {
    return undefined; // none, or unreadable: ask the gateway
  }
  const expiresAt = Date.parse(cached.expiresAt ?? '');
  if (typeof cached.token !== 'string' || !Number.isFinite(expiresAt) || expiresAt - TOKEN_REUSE_MARGIN_MS <= now) return undefined;
  return { token: cached.token, expiresAt: cached.expiresAt! };
}

export function writeCachedToken(profileDir: string, key: TokenCacheKey, token: CachedToken): void {
  const dir = cacheDir(profileDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const file = cacheFile(profileDir, key);
  // Write then rename: a concurrent kubectl never reads half a file.
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(token), { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
}

/** Removes every cached token of `agent` at `endpoint` (logout). */
export function removeCachedTokens(profileDir: string, key: Pick<TokenCacheKey, 'endpoint' | 'agent'>): void {
  const prefix = `${agentPrefix(key)}-`;
  let names: string[];
  try {
    names = readdirSync(cacheDir(profileDir));
  } catch {
    return;
  }
  for (const name of names) if (name.startsWith(prefix)) rmSync(join(cacheDir(profileDir), name), { force: true });
}

/** The ExecCredential kubectl reads (client.authentication.k8s.io/v1). */
export function execCredential(token: CachedToken): string {
  return JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: token.token, expirationTimestamp: token.expiresAt } });
}
