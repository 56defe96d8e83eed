#!/usr/bin/env node
// `airlock`: agent and admin commands, and kubectl's exec-credential plugin.
// Exit codes: 0 ok, 1 refused/denied/failed, 2 usage error, 3 pending (a human has not decided yet).
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { AirlockClient, ApiError } from './client.ts';
import { runVerify, SERVICE_ACCOUNT_TOKEN_PATH } from './verify.ts';
import { awsIamSimulator } from './iam-simulator.ts';
import { regionOf, sigv4Signer } from './sigv4.ts';
import { agentOf, findProfile, IAM_AGENT, listProfiles, readProfile, removeProfile, sameEndpoint, writeProfile, profileDir, type Profile } from './profile.ts';
import { kubeconfigFor } from './kubeconfig.ts';

export const EXIT = { ok: 0, refused: 1, usage: 2, pending: 3 } as const;
const DEFAULT_ENDPOINT = `https://127.0.0.1:${process.env.AIRLOCK_PORT ?? 8787}`;

class UsageError extends Error {}
class ExitCode extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.code = code;
  }
}

interface GlobalOptions {
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

interface Io {
  out(text: string): void;
  err(text: string): void;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new UsageError(`cannot read ${what} ${path}`);
  }
}

function airlockHome(options: GlobalOptions): string {
  return resolve(options.home ?? process.env.AIRLOCK_HOME ?? './.airlock');
}

function profileDirOf(options: GlobalOptions): string {
  return options.profileDir ? resolve(options.profileDir) : profileDir();
}

function explicitEndpoint(options: GlobalOptions): string | undefined {
  return options.endpoint ?? process.env.AIRLOCK_ENDPOINT;
}

/**
 * The agent profile a command runs as: `--agent-id` at the endpoint, else the current
 * (last login) one. Credentials only ever go to the endpoint they were stored for.
 */
function resolveProfile(options: GlobalOptions): Profile | undefined {
  const dir = profileDirOf(options);
  const endpoint = explicitEndpoint(options);
  const current = readProfile(dir);
  if (options.agentId) return findProfile(endpoint ?? current?.endpoint ?? DEFAULT_ENDPOINT, options.agentId, dir);
  if (!endpoint || !current || sameEndpoint(current.endpoint, endpoint)) return current;
  const atEndpoint = listProfiles(dir).filter((profile) => sameEndpoint(profile.endpoint, endpoint));
  return atEndpoint.length === 1 ? atEndpoint[0] : undefined;
}

function endpointOf(options: GlobalOptions): string {
  return explicitEndpoint(options) ?? resolveProfile(options)?.endpoint ?? readProfile(profileDirOf(options))?.endpoint ?? DEFAULT_ENDPOINT;
}

function caFileOf(options: GlobalOptions): string | undefined {
  if (options.endpointCa) return resolve(options.endpointCa);
  const profile = resolveProfile(options);
  if (profile?.caFile && (!options.endpoint || sameEndpoint(profile.endpoint, options.endpoint))) return profile.caFile;
  const local = resolve(airlockHome(options), 'ca.crt');
  return existsSync(local) ? local : undefined;
}

function baseClient(options: GlobalOptions): AirlockClient {
  const caFile = caFileOf(options);
  return new AirlockClient({ endpoint: endpointOf(options), caPem: caFile ? readText(caFile, 'CA file') : undefined });
}

function regionFor(options: GlobalOptions): string {
  const region = options.region ?? regionOf(endpointOf(options)) ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (!region) throw new UsageError('SigV4 needs a region: --region or AWS_REGION');
  return region;
}

function adminClient(options: GlobalOptions): AirlockClient {
  const keyFile = options.adminKeyFile ?? process.env.AIRLOCK_ADMIN_KEY_FILE ?? resolve(airlockHome(options), 'admin.key');
  const useIam = options.iam || (!existsSync(keyFile) && regionOf(endpointOf(options)) !== undefined);
  if (useIam) return baseClient(options).withSigner(sigv4Signer(regionFor(options)));
  if (!existsSync(keyFile)) throw new UsageError(`no admin key at ${keyFile} (local stack: AIRLOCK_HOME/admin.key; or --admin-key-file; on AWS: --iam)`);
  return baseClient(options).withAuthorization(`Bearer ${readText(keyFile, 'admin key').trim()}`);
}

/** Agent routes under /v1/iam for agents that sign with their IAM principal. */
const iamAgentPath = (path: string) => path.replace(/^v1\/(tokens|access-requests|approvals)/, 'v1/iam/$1');

/** How to log `agentId` in at `endpoint` again, with the profile directory when it is not the default. */
function loginCommand(options: GlobalOptions, agentId: string, endpoint: string): string {
  const dir = options.profileDir ? ` --profile-dir ${resolve(options.profileDir)}` : '';
  return agentId === IAM_AGENT ? `airlock login --iam --endpoint ${endpoint}${dir}` : `airlock login --agent-id ${agentId} --endpoint ${endpoint}${dir} --secret-file FILE`;
}

function agentClient(options: GlobalOptions): { client: AirlockClient; profile: Profile } {
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

function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((row) => columns.map((column) => String(row[column] ?? '')));
  const widths = columns.map((column, index) => Math.max(column.length, ...cells.map((cell) => cell[index]!.length)));
  const line = (values: string[]) => values.map((value, index) => value.padEnd(widths[index]!)).join('  ').trimEnd();
  return [line(columns.map((column) => column.toUpperCase())), ...cells.map(line)].join('\n');
}

async function sleep(ms: number): Promise<void> {
  await new Promise((done) => setTimeout(done, ms));
}

interface Grant {
  id: string;
  connection: string;
  status: string;
  expiresAt?: string;
  approvalId?: string;
  reason?: string;
}

export function buildProgram(io: Io): Command {
  const program = new Command('airlock')
    .description('Airlock: the single access boundary for AI agents on production Kubernetes')
    .option('--endpoint <url>', `Airlock endpoint (default: profile, AIRLOCK_ENDPOINT or ${DEFAULT_ENDPOINT})`)
    .option('--json', 'machine-readable output')
    .option('--endpoint-ca <file>', "CA certificate that signs the endpoint's certificate (default: profile, then AIRLOCK_HOME/ca.crt)")
    .option('--home <dir>', 'local stack home (default: AIRLOCK_HOME or ./.airlock)')
    .option('--admin-key-file <file>', 'admin key (default: AIRLOCK_HOME/admin.key)')
    .option('--profile-dir <dir>', 'agent profile directory (default: AIRLOCK_PROFILE_DIR or ~/.config/airlock)')
    .option('--agent-id <id>', 'agent commands run as this logged-in agent (default: the last login); `iam` for an --iam login')
    .option('--iam', 'admin calls: sign with your AWS credentials (SigV4); the default for execute-api endpoints without an admin key')
    .option('--region <region>', 'AWS region for SigV4 (default: from the execute-api endpoint, or AWS_REGION)')
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.out(text.trimEnd()), writeErr: (text) => io.err(text.trimEnd()) })
    .showHelpAfterError();

  const globals = () => program.opts<GlobalOptions>();
  const print = (human: string, json: unknown) => io.out(globals().json ? JSON.stringify(json, null, 2) : human);

  // ---------------------------------------------------------------- admin
  const agents = program.command('agents').description('manage agents (admin)');
  agents
    .command('create <name>')
    .description('register an agent; prints its id and key (shown once)')
    .option('--principal-arn <arn>', 'on AWS: the IAM principal this agent signs in as (no key is issued)')
    .action(async (name: string, options: { principalArn?: string }) => {
      const { body } = await adminClient(globals()).call<{ id: string; name: string; secret?: string; principalArn?: string }>('POST', 'v1/agents', {
        name,
        ...(options.principalArn ? { principalArn: options.principalArn } : {}),
      });
      print(
        [`agent:  ${body.name}`, `id:     ${body.id}`, body.secret ? `secret: ${body.secret}\n\nThe secret is shown once. Save it to a file (mode 0600) for: airlock login --agent-id ${body.id} --secret-file FILE` : `principal: ${body.principalArn}`].join('\n'),
        body,
      );
    });
  agents
    .command('list')
    .description('list agents')
    .action(async () => {
      const { body } = await adminClient(globals()).call<{ items: Record<string, unknown>[] }>('GET', 'v1/agents');
      print(table(body.items, ['name', 'id', 'status', 'createdAt']), body);
    });
  agents
    .command('disable <name>')
    .description('disable an agent and revoke all its windows at once')
    .action(async (name: string) => {
      const { body } = await adminClient(globals()).call<{ name: string; windowsRevoked: number; approvalsCancelled: number }>('POST', `v1/agents/${encodeURIComponent(name)}/disable`);
      print(`agent ${body.name} disabled; ${body.windowsRevoked} window(s) revoked, ${body.approvalsCancelled} held request approval(s) cancelled`, body);
    });

  agents
    .command('enable <name>')
    .description('let a disabled agent ask for new windows (its old windows and approvals stay ended)')
    .action(async (name: string) => {
      const { body } = await adminClient(globals()).call<{ name: string }>('POST', `v1/agents/${encodeURIComponent(name)}/enable`);
      print(`agent ${body.name} enabled`, body);
    });

  const connections = program.command('connections').description('manage connections to clusters (admin)');
  const connectionOptions = (command: Command) =>
    command
      .requiredOption('--server <url>', 'the cluster API server (https)')
      .option('--ca-file <file>', "CA certificate for the server's TLS certificate")
      .option('--ca-data <base64>', 'the same, base64-encoded PEM')
      .option('--token-file <file>', 'a bearer token for the cluster (non-EKS)')
      .option('--eks-cluster <name>', 'EKS cluster name (per-agent EKS tokens)')
      .option('--region <region>', 'EKS cluster region')
      .option('--role-arn <arn>', 'IAM role Airlock assumes for this cluster')
      .requiredOption('--policy <file>', 'policy file (YAML or JSON)');
  const connectionBody = (options: Record<string, string | undefined>) => {
    const caPem = options.caFile ? readText(options.caFile, 'CA file') : options.caData ? Buffer.from(options.caData, 'base64').toString('utf8') : undefined;
    if (!caPem) throw new UsageError('give --ca-file or --ca-data (the server certificate is always verified)');
    const eks = options.eksCluster || options.region || options.roleArn;
    if (!!options.tokenFile === !!eks) throw new UsageError('give --token-file, or --eks-cluster with --region and --role-arn');
    if (eks && !(options.eksCluster && options.region && options.roleArn)) throw new UsageError('--eks-cluster needs --region and --role-arn');
    return {
      server: options.server,
      caPem,
      ...(options.tokenFile ? { token: readText(options.tokenFile, 'token file').trim() } : {}),
      ...(eks ? { eks: { clusterName: options.eksCluster, region: options.region, roleArn: options.roleArn } } : {}),
      policy: readText(options.policy!, 'policy file'),
    };
  };
  type SavedConnection = { name: string; policyVersion: string; warnings?: string[] };
  // Broad rules that would reach credentials or RBAC: saved, but the admin is told what they do not cover.
  const warnAboutPolicy = (body: SavedConnection) => {
    for (const warning of body.warnings ?? []) io.err(`warning: ${warning}`);
  };
  connectionOptions(connections.command('create <name>').description('add a connection with its policy')).action(async (name: string, options: Record<string, string>) => {
    const { body } = await adminClient(globals()).call<SavedConnection>('POST', 'v1/connections', { name, ...connectionBody(options) });
    warnAboutPolicy(body);
    print(`connection ${body.name} created (policy ${body.policyVersion.slice(0, 19)})`, body);
  });
  connectionOptions(connections.command('update <name>').description('replace a connection (server, CA, credential, policy)')).action(async (name: string, options: Record<string, string>) => {
    const { body } = await adminClient(globals()).call<SavedConnection>('PUT', `v1/connections/${encodeURIComponent(name)}`, connectionBody(options));
    warnAboutPolicy(body);
    print(`connection ${body.name} updated (policy ${body.policyVersion.slice(0, 19)})`, body);
  });
  connections
    .command('list')
    .description('list connections')
    .action(async () => {
      const { body } = await adminClient(globals()).call<{ items: (Record<string, unknown> & { credential: { type: string } })[] }>('GET', 'v1/connections');
      print(table(body.items.map((item) => ({ ...item, credential: item.credential.type })), ['name', 'server', 'credential', 'policyVersion']), body);
    });
  connections
    .command('show <name>')
    .description('show a connection and its policy (never its credential)')
    .action(async (name: string) => {
      const { body } = await adminClient(globals()).call<Record<string, unknown>>('GET', `v1/connections/${encodeURIComponent(name)}`);
      const { caPem: _ca, ...shown } = body;
      print(JSON.stringify(shown, null, 2), body);
    });

  program
    .command('revoke')
    .description('kill switch: end every window of an agent or on a connection, effective on the next request')
    .option('--agent <name>')
    .option('--connection <name>')
    .action(async (options: { agent?: string; connection?: string }) => {
      if (!!options.agent === !!options.connection) throw new UsageError('give exactly one of --agent or --connection');
      const { body } = await adminClient(globals()).call<{ windowsRevoked: number; approvalsCancelled: number }>('POST', 'v1/revocations', options);
      print(`revoked ${options.agent ? `agent ${options.agent}` : `connection ${options.connection}`}: ${body.windowsRevoked} window(s) ended, ${body.approvalsCancelled} held request approval(s) cancelled`, body);
    });

  const audit = program.command('audit').description('who did what (admin)');
  audit
    .command('list')
    .description('recorded requests, newest first')
    .option('--agent <name>')
    .option('--connection <name>')
    .option('--since <duration>', 'e.g. 1h, 30m, or an ISO time')
    .option('--limit <n>', 'at most n items', '100')
    .option('--events', 'state changes (windows, approvals, tokens) instead of requests')
    .option('--cursor <cursor>', 'continue from a previous page (see "cursor" in --json output)')
    .option('--all', 'follow every page')
    .action(async (options: { agent?: string; connection?: string; since?: string; limit: string; events?: boolean; cursor?: string; all?: boolean }) => {
      const query = new URLSearchParams();
      for (const key of ['agent', 'connection', 'since', 'limit', 'cursor'] as const) if (options[key]) query.set(key, options[key]);
      if (options.events) query.set('type', 'events');
      const client = adminClient(globals());
      const body: { items: Record<string, unknown>[]; cursor?: string } = { items: [] };
      do {
        const page = (await client.call<{ items: Record<string, unknown>[]; cursor?: string }>('GET', `v1/audit?${query}`)).body;
        body.items.push(...page.items);
        body.cursor = page.cursor;
        if (page.cursor) query.set('cursor', page.cursor);
      } while (options.all && body.cursor);
      const columns = options.events ? ['time', 'type', 'agent', 'connection', 'subject', 'actor'] : ['time', 'id', 'agent', 'connection', 'verb', 'resource', 'namespace', 'name', 'decision', 'status'];
      print(table(body.items, columns), body);
    });
  audit
    .command('repair')
    .description('move transcripts kept in records while S3 was unavailable into S3')
    .action(async () => {
      const { body } = await adminClient(globals()).call<{ moved: number; failed: string[]; remaining: boolean }>('POST', 'v1/audit/repair');
      print(`${body.moved} transcript(s) moved to S3${body.failed.length ? `; ${body.failed.length} still failing` : ''}${body.remaining ? '; more remain, run again' : ''}`, body);
      if (body.failed.length) throw new ExitCode(EXIT.refused);
    });
  audit
    .command('show <id>')
    .description('one request: its record and its transcript from S3')
    .action(async (id: string) => {
      const { body } = await adminClient(globals()).call<unknown>('GET', `v1/audit/${encodeURIComponent(id)}`);
      io.out(JSON.stringify(body, null, 2));
    });

  // ---------------------------------------------------------------- agent
  program
    .command('login')
    .description('store the profile of one agent at one endpoint (mode 0600) and make it the default; other agents stay logged in side by side')
    .option('--agent-id <id>', 'the agent (a global option: also selects the agent for other commands)')
    .option('--secret-file <file>', 'file holding the agent key')
    .option('--iam', 'sign in with the AWS credentials of this process (the agent was registered with --principal-arn)')
    .action(async (local: { secretFile?: string }) => {
      const global = globals();
      // --agent-id and --iam are global options too, so commander hands them to the program.
      const options = { agentId: global.agentId, iam: global.iam, secretFile: local.secretFile };
      const caFile = caFileOf(global);
      const endpoint = endpointOf(global);
      let profile: Profile;
      if (options.iam) {
        if ((options.agentId && options.agentId !== IAM_AGENT) || options.secretFile) throw new UsageError('--iam takes no --agent-id or --secret-file');
        profile = { endpoint, iam: { region: regionFor(global) }, ...(caFile ? { caFile } : {}) };
        await baseClient(global).withSigner(sigv4Signer(profile.iam!.region), iamAgentPath).call('GET', 'v1/access-requests');
      } else {
        if (!options.agentId || !options.secretFile) throw new UsageError('give --agent-id and --secret-file (or --iam on AWS)');
        const secret = readText(options.secretFile, 'secret file').trim();
        profile = { endpoint, agentId: options.agentId, secret, ...(caFile ? { caFile } : {}) };
        // Prove the key works before storing it.
        const basic = Buffer.from(`${options.agentId}:${secret}`).toString('base64');
        await baseClient(global).withAuthorization(`Basic ${basic}`).call('GET', 'v1/access-requests');
      }
      const file = writeProfile(profile, profileDirOf(global), { makeCurrent: true });
      const who = profile.iam ? 'your IAM principal' : profile.agentId;
      print(`logged in as ${who} at ${profile.endpoint} (profile ${file})`, { agentId: profile.agentId ?? null, iam: !!profile.iam, endpoint: profile.endpoint, profile: file });
    });

  const access = program.command('access').description('just-in-time access windows');
  access
    .command('request')
    .description('ask for a window on a connection')
    .requiredOption('--connection <name>')
    .requiredOption('--duration <duration>', 'e.g. 30m (at most the policy maxWindow)')
    .requiredOption('--reason <text>', 'why; shown to approvers and recorded')
    .option('--ticket <id>', 'change or incident ticket')
    .option('--wait', 'wait until the window is active, denied or expired')
    .option('--timeout <seconds>', 'with --wait: give up after this long (exit 3)', '900')
    .action(async (options: { connection: string; duration: string; reason: string; ticket?: string; wait?: boolean; timeout: string }) => {
      const global = globals();
      const { client, profile } = agentClient(global);
      const { body } = await client.call<Grant>('POST', 'v1/access-requests', {
        connection: options.connection,
        duration: options.duration,
        reason: options.reason,
        ...(options.ticket ? { ticket: options.ticket } : {}),
      });
      writeProfile({ ...profile, windows: { ...profile.windows, [options.connection]: body.id } }, profileDirOf(global));
      let grant = body;
      if (options.wait && grant.status === 'pending') {
        if (!global.json) io.err(`window ${grant.id} pending approval${grant.approvalId ? ` (approval ${grant.approvalId}; approvers have been emailed)` : ''}; waiting...`);
        const deadline = Date.now() + Number(options.timeout) * 1000;
        while (grant.status === 'pending' && Date.now() < deadline) {
          await sleep(1000);
          grant = (await client.call<Grant>('GET', `v1/access-requests/${grant.id}`)).body;
        }
        if (!global.json) io.err(`window ${grant.id}: ${grant.status}`);
      }
      print(`window ${grant.id} on ${grant.connection}: ${grant.status}${grant.expiresAt ? ` until ${grant.expiresAt}` : ''}${grant.approvalId && grant.status === 'pending' ? ` (approval ${grant.approvalId})` : ''}`, {
        id: grant.id,
        status: grant.status,
        ...(grant.expiresAt ? { expiresAt: grant.expiresAt } : {}),
        ...(grant.approvalId ? { approvalId: grant.approvalId } : {}),
      });
      if (grant.status === 'pending') throw new ExitCode(EXIT.pending);
      if (grant.status !== 'active') throw new ExitCode(EXIT.refused);
    });
  access
    .command('status [id]')
    .description('one window, or all of yours')
    .action(async (id: string | undefined) => {
      const { client } = agentClient(globals());
      if (id) {
        const { body } = await client.call<Grant>('GET', `v1/access-requests/${encodeURIComponent(id)}`);
        print(table([body as unknown as Record<string, unknown>], ['id', 'connection', 'status', 'expiresAt', 'reason']), body);
        if (body.status === 'pending') throw new ExitCode(EXIT.pending);
        return;
      }
      const { body } = await client.call<{ items: Record<string, unknown>[] }>('GET', 'v1/access-requests');
      print(table(body.items, ['id', 'connection', 'status', 'expiresAt', 'reason']), body);
    });

  const approvals = program.command('approvals').description('one-time approvals of held requests and windows');
  approvals
    .command('wait <id>')
    .description('wait for a human decision: exit 0 approved, 1 denied/expired, 3 still pending at --timeout')
    .option('--timeout <seconds>', 'give up waiting after this long', '900')
    .action(async (id: string, options: { timeout: string }) => {
      const global = globals();
      const { client } = agentClient(global);
      const timeout = Number(options.timeout);
      if (!Number.isFinite(timeout) || timeout < 0) throw new UsageError('--timeout: seconds');
      const deadline = Date.now() + timeout * 1000;
      let last = '';
      let approval: { id: string; status: string; approvals: number; minApprovals: number; summary: string; expiresAt: string; cancelReason?: string };
      for (;;) {
        approval = (await client.call<typeof approval>('GET', `v1/approvals/${encodeURIComponent(id)}`)).body;
        const progress = `${approval.status} (${approval.approvals}/${approval.minApprovals} approvals, expires ${approval.expiresAt})`;
        if (progress !== last && !global.json) io.err(`approval ${approval.id}: ${progress}`);
        last = progress;
        if (approval.status !== 'pending' || Date.now() >= deadline) break;
        await sleep(1000);
      }
      print(
        approval.status === 'approved'
          ? `approved: retry the same request now (once): ${approval.summary}`
          : approval.status === 'pending'
            ? `still pending after ${timeout} s`
            : `${approval.status}: ${approval.summary}${approval.cancelReason ? ` (${approval.cancelReason})` : ''}`,
        approval,
      );
      if (approval.status === 'pending') throw new ExitCode(EXIT.pending);
      if (approval.status !== 'approved') throw new ExitCode(EXIT.refused);
    });

  access
    .command('end <id>')
    .description('close one of your windows now (the next request is refused)')
    .action(async (id: string) => {
      const { client } = agentClient(globals());
      const { body } = await client.call<Grant>('POST', `v1/access-requests/${encodeURIComponent(id)}/end`);
      print(`window ${body.id} on ${body.connection}: ${body.status}`, body);
    });

  program
    .command('kubeconfig')
    .description('print a kubeconfig that reaches the connection through Airlock (CA pinned), bound to the logged-in agent and endpoint')
    .requiredOption('--connection <name>')
    .action(async (options: { connection: string }) => {
      const global = globals();
      const { profile } = agentClient(global);
      const caFile = caFileOf(global);
      // The token command names its agent and endpoint: a later login of another agent, or at
      // another endpoint, never changes who this kubeconfig acts as.
      const bound = ['--endpoint', profile.endpoint, '--agent-id', agentOf(profile)];
      const dir = global.profileDir ?? process.env.AIRLOCK_PROFILE_DIR;
      io.out(
        kubeconfigFor({
          endpoint: profile.endpoint,
          connection: options.connection,
          caPem: caFile ? readText(caFile, 'CA file') : undefined,
          command: process.execPath,
          args: [fileURLToPath(import.meta.url), ...bound, ...(dir ? ['--profile-dir', resolve(dir)] : []), ...(global.endpointCa ? ['--endpoint-ca', resolve(global.endpointCa)] : []), 'token', '--connection', options.connection],
        }),
      );
    });

  program
    .command('logout')
    .description('remove the stored profile of the default agent, or of --agent-id at --endpoint; kubeconfigs bound to it stop working')
    .action(async () => {
      const global = globals();
      const profile = resolveProfile(global);
      if (!profile) throw new UsageError(global.agentId ? `agent ${global.agentId} is not logged in at ${endpointOf(global)}` : 'not logged in as an agent');
      removeProfile(profile.endpoint, agentOf(profile), profileDirOf(global));
      print(`logged out ${agentOf(profile)} at ${profile.endpoint}`, { agentId: agentOf(profile), endpoint: profile.endpoint });
    });

  program
    .command('token')
    .description('an ExecCredential for kubectl (client.authentication.k8s.io/v1), as --agent-id at --endpoint when given (kubeconfigs give both)')
    .requiredOption('--connection <name>')
    .action(async (options: { connection: string }) => {
      const global = globals();
      if (global.agentId && !resolveProfile(global)) {
        const endpoint = endpointOf(global);
        throw new Error(`this kubeconfig was issued for agent ${global.agentId} at ${endpoint}, which is not logged in here (logged out, or another profile directory); nothing was sent. Run: ${loginCommand(global, global.agentId, endpoint)}`);
      }
      const { client, profile } = agentClient(global);
      // No token cache on disk: kubectl keeps the credential in memory until
      // expirationTimestamp, and asking each time means a revoked window or a
      // disabled agent gets no token at all.
      const window = profile.windows?.[options.connection];
      const { body } = await client.call<{ token: string; expiresAt: string; window: string }>('POST', 'v1/tokens', {
        connection: options.connection,
        ...(window ? { window } : {}),
      });
      io.out(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: body.token, expirationTimestamp: body.expiresAt } }));
    });

  program
    .command('verify')
    .description('walk the boundary proof and the side-door checks; one pass/fail line per control; exit 0 only if all pass')
    .requiredOption('--connection <name>')
    .option('--approve-with-link', 'local stack: approve through the emailed link in AIRLOCK_HOME/outbox')
    .option('--timeout <seconds>', 'how long to wait for a human approval', '900')
    .option('--upstream-token-file <file>', "the connection's cluster credential, to prove it appears in no response or record")
    .option('--service-account-token <file>', "where a pod's service-account token would be (tried against the cluster if present)", SERVICE_ACCOUNT_TOKEN_PATH)
    .action(async (options: { connection: string; approveWithLink?: boolean; timeout: string; upstreamTokenFile?: string; serviceAccountToken: string }) => {
      const global = globals();
      const { client, profile } = agentClient(global);
      let admin: AirlockClient | undefined;
      try {
        admin = adminClient(global);
      } catch {
        admin = undefined;
      }
      const base = baseClient(global);
      const checks = await runVerify({
        connection: options.connection,
        agent: client,
        anonymous: base,
        wrongKey: base.withAuthorization(`Basic ${Buffer.from(`${profile.agentId}:alk_${'x'.repeat(43)}`).toString('base64')}`),
        agentId: profile.agentId!,
        admin,
        outboxDir: resolve(airlockHome(global), 'outbox'),
        approveWithLink: !!options.approveWithLink,
        timeoutSeconds: Number(options.timeout),
        upstreamToken: options.upstreamTokenFile ? readText(options.upstreamTokenFile, 'token file').trim() : undefined,
        serviceAccountTokenPath: resolve(options.serviceAccountToken),
        iam: () => awsIamSimulator(),
        progress: (line) => {
          if (!global.json) io.err(line);
        },
      });
      const pass = checks.every((check) => check.pass);
      if (global.json) io.out(JSON.stringify({ pass, checks }, null, 2));
      else io.out(`${table(checks.map((check) => ({ control: check.control, result: check.pass ? 'PASS' : 'FAIL', evidence: check.evidence })), ['control', 'result', 'evidence'])}\n\n${pass ? 'PASS' : 'FAIL'}: ${checks.filter((c) => c.pass).length}/${checks.length} controls hold on ${options.connection}${checks.some((check) => check.warnings) ? ' (with warnings: credentials found that could not be tried)' : ''}`);
      if (!pass) throw new ExitCode(EXIT.refused);
    });

  return program;
}

export async function runCli(argv: string[], io: Io = { out: (text) => process.stdout.write(`${text}\n`), err: (text) => process.stderr.write(`${text}\n`) }): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof ExitCode) return error.code;
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0) return EXIT.ok;
      return EXIT.usage;
    }
    if (error instanceof UsageError) {
      io.err(`airlock: ${error.message}`);
      return EXIT.usage;
    }
    if (error instanceof ApiError) {
      if (program.opts<GlobalOptions>().json) io.out(JSON.stringify({ error: { status: error.status, code: error.code, message: error.message } }));
      io.err(`airlock: ${error.message} (${error.code}, HTTP ${error.status})`);
      return EXIT.refused;
    }
    io.err(`airlock: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT.refused;
  }
}


if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runCli(process.argv.slice(2)).then((code) => process.exit(code));
}
