// The agent profiles: endpoint, pinned CA, agent id and key, one file per
// (endpoint, agent), so several agents can be logged in side by side on one
// host and a kubeconfig bound to one of them never runs as another.
// `current.json` names the profile used when a command names no agent.
// Every file here is mode 0600 in a 0700 directory.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { errorText } from '../lambdas/core/errors.ts';

export interface Profile {
  endpoint: string;
  caFile?: string;
  agentId?: string;
  secret?: string;
  /** The agent signs in with its IAM principal (SigV4 on /v1/iam/...), AWS only. */
  iam?: { region: string };
  /** The newest window per connection, so token requests name it. */
  windows?: Record<string, string>;
}

/** The agent a profile is for: its id, or `iam` for an agent that signs in with the process's IAM principal. */
export const IAM_AGENT = 'iam';

export function agentOf(profile: Profile): string {
  return profile.iam ? IAM_AGENT : (profile.agentId ?? '');
}

export function profileDir(): string {
  return resolve(process.env.AIRLOCK_PROFILE_DIR ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'airlock'));
}

/** One spelling per endpoint (lower-case host, no default port, no trailing slash), so a profile is found however the URL was typed. */
export function normalizeEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  } catch {
    return endpoint.replace(/\/+$/, '');
  }
}

export function sameEndpoint(a: string, b: string): boolean {
  return normalizeEndpoint(a) === normalizeEndpoint(b);
}

function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Write then rename: a concurrent reader (another CI job on the host) never sees half a file. */
function writePrivate(path: string, content: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, content, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

function readJson<T>(file: string): T | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (error) {
    throw new Error(`cannot read agent profile ${file} (${errorText(error, { name: false })}): remove it and log in again`, { cause: error });
  }
}

const storeDir = (dir: string) => join(dir, 'profiles');
const currentFile = (dir: string) => join(dir, 'current.json');
/** Before profiles were per agent: one profile.json per directory. Moved into the store on first use. */
const legacyFile = (dir: string) => join(dir, 'profile.json');

/** The file of one (endpoint, agent): readable names, a hash so no two endpoints or agents share one. */
export function profileFile(dir: string, endpoint: string, agent: string): string {
  const normalized = normalizeEndpoint(endpoint);
  const safe = (text: string) => text.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 64);
  const hash = createHash('sha256').update(`${normalized}\n${agent}`).digest('hex').slice(0, 16);
  return join(storeDir(dir), `${safe(agent)}@${safe(normalized.replace(/^https?:\/\//, ''))}-${hash}.json`);
}

function migrateLegacy(dir: string): void {
  const legacy = readJson<Profile>(legacyFile(dir));
  if (!legacy) return;
  if (!existsSync(currentFile(dir))) {
    ensureDir(storeDir(dir));
    writePrivate(profileFile(dir, legacy.endpoint, agentOf(legacy)), `${JSON.stringify(legacy, null, 2)}\n`);
    writePrivate(currentFile(dir), `${JSON.stringify({ endpoint: legacy.endpoint, agent: agentOf(legacy) })}\n`);
  }
  rmSync(legacyFile(dir), { force: true });
}

/** The profile of `agent` at `endpoint`, if that agent is logged in there. */
export function findProfile(endpoint: string, agent: string, dir = profileDir()): Profile | undefined {
  migrateLegacy(dir);
  const profile = readJson<Profile>(profileFile(dir, endpoint, agent));
  return profile && sameEndpoint(profile.endpoint, endpoint) && agentOf(profile) === agent ? profile : undefined;
}

/** Every profile in `dir`. */
export function listProfiles(dir = profileDir()): Profile[] {
  migrateLegacy(dir);
  if (!existsSync(storeDir(dir))) return [];
  return readdirSync(storeDir(dir))
    .filter((name) => name.endsWith('.json'))
    .map((name) => readJson<Profile>(join(storeDir(dir), name))!)
    .filter(Boolean);
}

/** The current profile: the last login, unless it has been logged out since. */
export function readProfile(dir = profileDir()): Profile | undefined {
  migrateLegacy(dir);
  const current = readJson<{ endpoint: string; agent: string }>(currentFile(dir));
  return current ? findProfile(current.endpoint, current.agent, dir) : undefined;
}

/** Stores the profile of its (endpoint, agent); `makeCurrent` (login) also makes it the default. Returns the file. */
export function writeProfile(profile: Profile, dir = profileDir(), options: { makeCurrent?: boolean } = {}): string {
  migrateLegacy(dir);
  ensureDir(dir);
  ensureDir(storeDir(dir));
  const file = profileFile(dir, profile.endpoint, agentOf(profile));
  writePrivate(file, `${JSON.stringify(profile, null, 2)}\n`);
  if (options.makeCurrent) writePrivate(currentFile(dir), `${JSON.stringify({ endpoint: profile.endpoint, agent: agentOf(profile) })}\n`);
  return file;
}

/** Removes the login of `agent` at `endpoint` (and the default, if it was that one). False if there was none. */
export function removeProfile(endpoint: string, agent: string, dir = profileDir()): boolean {
  migrateLegacy(dir);
  const file = profileFile(dir, endpoint, agent);
  if (!existsSync(file)) return false;
  rmSync(file);
  const current = readJson<{ endpoint: string; agent: string }>(currentFile(dir));
  if (current && sameEndpoint(current.endpoint, endpoint) && current.agent === agent) rmSync(currentFile(dir));
  return true;
}
