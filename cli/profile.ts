// The agent's profile: endpoint, pinned CA, agent id and key.
// Every file here is mode 0600 in a 0700 directory.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

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

export function profileDir(): string {
  return resolve(process.env.AIRLOCK_PROFILE_DIR ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'airlock'));
}

function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

function writePrivate(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function readProfile(dir = profileDir()): Profile | undefined {
  const file = join(dir, 'profile.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as Profile;
}

export function writeProfile(profile: Profile, dir = profileDir()): string {
  ensureDir(dir);
  const file = join(dir, 'profile.json');
  writePrivate(file, `${JSON.stringify(profile, null, 2)}\n`);
  return file;
}
