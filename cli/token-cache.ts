// kubectl runs `airlock token` for every command it runs, and an agent runs
// kubectl many times a minute: the token it was last given is kept on disk and
// handed out again until shortly before it expires. Safe because a token only
// names who and which window: the gateway checks the window (open, unexpired,
// unrevoked) and the agent (enabled) on every request, so a revoked window or a
// disabled agent is refused on the next request whatever token is presented.
//
// Files, in a 0700 `tokens/` directory beside the agent profiles, each 0600 and
// written whole (temporary file, then rename), all named after the agent
// (`<agent>-<binding>`, so logout and login remove the agent's):
//   <agent>-<binding>.window               the window the profile names for the connection
//                                          (one line; empty for none and for plan tokens)
//   <agent>-<binding>.window-<window>.token  line 1: hand out until (epoch seconds, the
//                                          expiry less TOKEN_REUSE_MARGIN_MS); line 2: the
//                                          ExecCredential kubectl reads
// where <binding> is (connection, plan, mode). kubeconfigs run cli/airlock-token.sh, which
// reads the `.window` file, then that window's `.token` file, and prints the credential with
// no Node start-up (kubectl runs the plugin twice per command). A new window rewrites the
// `.window` file: the fast path then looks for the new window's token, never an older one.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { normalizeEndpoint } from './profile.ts';

/** A token is handed out again only while it has more than this left. */
export const TOKEN_REUSE_MARGIN_MS = 60_000;

export interface TokenBinding {
  endpoint: string;
  agent: string;
  connection: string;
  plan?: string;
  mode?: string;
}

export interface TokenCacheKey extends TokenBinding {
  /** The window the profile names for the connection (a new window: a new token). */
  window?: string;
}

export interface CachedToken {
  token: string;
  /** ISO time, as the gateway gave it (the ExecCredential's expirationTimestamp). */
  expiresAt: string;
}

/** Window ids the fast path takes into a file name (the gateway's ids are of this form); others are not cached. */
const SAFE_WINDOW = /^[A-Za-z0-9_-]{0,128}$/;

export const tokenCacheDir = (profileDir: string) => join(profileDir, 'tokens');
const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);
const agentPrefix = (key: Pick<TokenBinding, 'endpoint' | 'agent'>) => hash(`${normalizeEndpoint(key.endpoint)}\n${key.agent}`);

/** The name, in the tokens directory, every file of this binding starts with (kubeconfigs name it for the fast path). */
export function tokenCacheName(binding: TokenBinding): string {
  return `${agentPrefix(binding)}-${hash(JSON.stringify([binding.connection, binding.plan ?? '', binding.mode ?? '']))}`;
}

const windowOf = (key: TokenCacheKey) => (key.plan ? '' : (key.window ?? ''));
const windowFile = (profileDir: string, binding: TokenBinding) => join(tokenCacheDir(profileDir), `${tokenCacheName(binding)}.window`);
const tokenFile = (profileDir: string, key: TokenCacheKey) => join(tokenCacheDir(profileDir), `${tokenCacheName(key)}.window-${windowOf(key)}.token`);

/** Writes a 0600 file whole (temporary file, then rename or link): a concurrent kubectl never reads half of one. */
function writePrivate(profileDir: string, file: string, content: string, options: { onlyIfNone?: boolean } = {}): void {
  const dir = tokenCacheDir(profileDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, content, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  if (!options.onlyIfNone) return renameSync(temporary, file);
  try {
    linkSync(temporary, file); // fails if the file exists: never overwrites what `access request` wrote meanwhile
  } finally {
    rmSync(temporary, { force: true });
  }
}

/** The cached token for `key`, if it has more than TOKEN_REUSE_MARGIN_MS left at `now`. */
export function readCachedToken(profileDir: string, key: TokenCacheKey, now = Date.now()): CachedToken | undefined {
  if (!SAFE_WINDOW.test(windowOf(key))) return undefined;
  let token: unknown;
  let expiresAt: unknown;
  try {
    const [, credential] = readFileSync(tokenFile(profileDir, key), 'utf8').split('\n');
    ({ token, expirationTimestamp: expiresAt } = (JSON.parse(credential ?? '') as { status?: { token?: unknown; expirationTimestamp?: unknown } }).status ?? {});
  } catch {
    return undefined; // none, or unreadable: ask the gateway
  }
  if (typeof token !== 'string' || typeof expiresAt !== 'string') return undefined;
  const expires = Date.parse(expiresAt);
  if (!Number.isFinite(expires) || expires - TOKEN_REUSE_MARGIN_MS <= now) return undefined;
  return { token, expiresAt };
}

/**
 * Keeps `token` for `key`, and names `key`'s window as the binding's current one for the fast
 * path if nothing names one yet (first use, or after login); a window change is `switchWindow`'s.
 */
export function writeCachedToken(profileDir: string, key: TokenCacheKey, token: CachedToken): void {
  const window = windowOf(key);
  const expires = Date.parse(token.expiresAt);
  if (!SAFE_WINDOW.test(window) || !Number.isFinite(expires)) return;
  const handOutUntil = Math.floor((expires - TOKEN_REUSE_MARGIN_MS) / 1000);
  writePrivate(profileDir, tokenFile(profileDir, key), `${handOutUntil}\n${execCredential(token)}\n`);
  nameWindow(profileDir, key);
}

/** Names `key`'s window for the fast path unless a window is named already (see writeCachedToken). */
export function nameWindow(profileDir: string, key: TokenCacheKey): void {
  if (existsSync(windowFile(profileDir, key))) return;
  try {
    writePrivate(profileDir, windowFile(profileDir, key), `${windowOf(key)}\n`, { onlyIfNone: true });
  } catch {
    // named already, or cannot be written: the fast path then falls through to Node
  }
}

/**
 * A new window for the connection (`access request`): `saveProfile` stores it in the profile.
 * The fast path stops handing out the binding's tokens before, and looks for the new window's
 * after; the earlier windows' tokens are removed.
 */
export function switchWindow(profileDir: string, binding: TokenBinding, window: string, saveProfile: () => void): void {
  rmSync(windowFile(profileDir, binding), { force: true });
  saveProfile();
  removeFiles(profileDir, (name) => name.startsWith(`${tokenCacheName(binding)}.window-`) && name.endsWith('.token') && name !== basename(tokenFile(profileDir, { ...binding, window })));
  if (SAFE_WINDOW.test(window)) writePrivate(profileDir, windowFile(profileDir, binding), `${window}\n`);
}

function removeFiles(profileDir: string, which: (name: string) => boolean): void {
  let names: string[];
  try {
    names = readdirSync(tokenCacheDir(profileDir));
  } catch {
    return;
  }
  for (const name of names) if (which(name)) rmSync(join(tokenCacheDir(profileDir), name), { force: true });
}

/** Removes every cached token of `agent` at `endpoint`, and the windows named for it (login, logout). */
export function removeCachedTokens(profileDir: string, key: Pick<TokenBinding, 'endpoint' | 'agent'>): void {
  removeFiles(profileDir, (name) => name.startsWith(`${agentPrefix(key)}-`));
}

/** The ExecCredential kubectl reads (client.authentication.k8s.io/v1). */
export function execCredential(token: CachedToken): string {
  return JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: token.token, expirationTimestamp: token.expiresAt } });
}
