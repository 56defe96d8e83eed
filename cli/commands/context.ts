// What every command shares: the global options, how to reach the endpoint as the admin
// or as the logged-in agent, output (human or --json), and the errors that set the exit code.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { AirlockClient } from '../client.ts';
import { regionOf, sigv4Signer } from '../sigv4.ts';
import { findProfile, IAM_AGENT, listProfiles, readProfile, sameEndpoint, profileDir, type Profile } from '../profile.ts';

export const EXIT = { ok: 0, refused: 1, usage: 2, pending: 3 } as const;
export const DEFAULT_ENDPOINT = `https://127.0.0.1:${process.env.AIRLOCK_PORT ?? 8787}`;
export class UsageError extends Error {}
export class ExitCode extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.code = code;
  }
}

export interface GlobalOptions {
  endpoint?: string;
  json?: boolean;
  endpointCa?: string;
  home?: string;
  adminKeyFile?: string;
  profileDir?: string;
  agentId?: string;
  iam?: boolean;
  region?: string;
}

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Raw output as it comes, no newline added (`airlock exec`); default: this process's stdout/stderr. */
  write?(stream: 'stdout' | 'stderr', text: string): void;
  /** This process's standard input, read to its end (`airlock exec -i`); default: process.stdin. */
  input?(): Promise<string>;
}

export function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new UsageError(`cannot read ${what} ${path}`);
  }
}

export function airlockHome(options: GlobalOptions): string {
  return resolve(options.home ?? process.env.AIRLOCK_HOME ?? './.airlock');
}

export function profileDirOf(options: GlobalOptions): string {
  return options.profileDir ? resolve(options.profileDir) : profileDir();
}

function explicitEndpoint(options: GlobalOptions): string | undefined {
  return options.endpoint ?? process.env.AIRLOCK_ENDPOINT;
}

/**
 * The agent profile a command runs as: `--agent-id` at the endpoint, else the current
 * (last login) one. Credentials only ever go to the endpoint they were stored for.
 */
export function resolveProfile(options: GlobalOptions): Profile | undefined {
  const dir = profileDirOf(options);
  const endpoint = explicitEndpoint(options);
  const current = readProfile(dir);
  if (options.agentId) return findProfile(endpoint ?? current?.endpoint ?? DEFAULT_ENDPOINT, options.agentId, dir);
  if (!endpoint || !current || sameEndpoint(current.endpoint, endpoint)) return current;
  const atEndpoint = listProfiles(dir).filter((profile) => sameEndpoint(profile.endpoint, endpoint));
  return atEndpoint.length === 1 ? atEndpoint[0] : undefined;
}

export function endpointOf(options: GlobalOptions): string {
  return explicitEndpoint(options) ?? resolveProfile(options)?.endpoint ?? readProfile(profileDirOf(options))?.endpoint ?? DEFAULT_ENDPOINT;
}

export function caFileOf(options: GlobalOptions): string | undefined {
  if (options.endpointCa) return resolve(options.endpointCa);
  const profile = resolveProfile(options);
  if (profile?.caFile && (!options.endpoint || sameEndpoint(profile.endpoint, options.endpoint))) return profile.caFile;
  const local = resolve(airlockHome(options), 'ca.crt');
  return existsSync(local) ? local : undefined;
}

export function baseClient(options: GlobalOptions): AirlockClient {
  const caFile = caFileOf(options);
  return new AirlockClient({ endpoint: endpointOf(options), caPem: caFile ? readText(caFile, 'CA file') : undefined });
}

export function regionFor(options: GlobalOptions): string {
  const region = options.region ?? regionOf(endpointOf(options)) ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (!region) throw new UsageError('SigV4 needs a region: --region or AWS_REGION');
  return region;
}

export function adminClient(options: GlobalOptions): AirlockClient {
  const keyFile = options.adminKeyFile ?? process.env.AIRLOCK_ADMIN_KEY_FILE ?? resolve(airlockHome(options), 'admin.key');
  const useIam = options.iam || (!existsSync(keyFile) && regionOf(endpointOf(options)) !== undefined);
  if (useIam) return baseClient(options).withSigner(sigv4Signer(regionFor(options)));
  if (!existsSync(keyFile)) throw new UsageError(`no admin key at ${keyFile} (local stack: AIRLOCK_HOME/admin.key; or --admin-key-file; on AWS: --iam)`);
  return baseClient(options).withAuthorization(`Bearer ${readText(keyFile, 'admin key').trim()}`);
}

/** Agent routes under /v1/iam for agents that sign with their IAM principal. */
export const iamAgentPath = (path: string) => path.replace(/^v1\/(tokens|access-requests|approvals|plans)/, 'v1/iam/$1');

/** How to log `agentId` in at `endpoint` again, with the profile directory when it is not the default. */
export function loginCommand(options: GlobalOptions, agentId: string, endpoint: string): string {
  const dir = options.profileDir ? ` --profile-dir ${resolve(options.profileDir)}` : '';
  return agentId === IAM_AGENT ? `airlock login --iam --endpoint ${endpoint}${dir}` : `airlock login --agent-id ${agentId} --endpoint ${endpoint}${dir} --secret-file FILE`;
}

export function agentClient(options: GlobalOptions): { client: AirlockClient; profile: Profile } {
  const profile = resolveProfile(options);
  if (!profile && options.agentId) {
    const endpoint = endpointOf(options);
    throw new UsageError(`agent ${options.agentId} is not logged in at ${endpoint} (profiles in ${profileDirOf(options)}): ${loginCommand(options, options.agentId, endpoint)}`);
  }
  if (profile?.iam) return { client: baseClient(options).withSigner(sigv4Signer(profile.iam.region), iamAgentPath), profile };
  if (!profile?.agentId || !profile.secret) throw new UsageError('not logged in as an agent: airlock login --agent-id ID --secret-file FILE (or --iam on AWS)');
  const basic = Buffer.from(`${profile.agentId}:${profile.secret}`).toString('base64');
  return { client: baseClient(options).withAuthorization(`Basic ${basic}`), profile };
}

export function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((row) => columns.map((column) => String(row[column] ?? '')));
  const widths = columns.map((column, index) => Math.max(column.length, ...cells.map((cell) => cell[index]!.length)));
  const line = (values: string[]) =>
    values
      .map((value, index) => value.padEnd(widths[index]!))
      .join('  ')
      .trimEnd();
  return [line(columns.map((column) => column.toUpperCase())), ...cells.map(line)].join('\n');
}

/** What a command registers itself with: the program, its output, and the parsed global options. */
export interface CommandContext {
  program: Command;
  io: Io;
  /** This CLI's entry file (cli/airlock.ts, or the bundle of it): what kubeconfigs run for `airlock token`. */
  entry: string;
  globals(): GlobalOptions;
  /** Human text, or `json` as JSON with --json. */
  print(human: string, json: unknown): void;
}

export function commandContext(program: Command, io: Io, entry: string): CommandContext {
  const globals = () => program.opts<GlobalOptions>();
  return { program, io, entry, globals, print: (human, json) => io.out(globals().json ? JSON.stringify(json, null, 2) : human) };
}
