// A kubeconfig bound to the logged-in agent and endpoint, whose user runs `airlock token`.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { kubeconfigFor } from '../kubeconfig.ts';
import { agentOf } from '../profile.ts';
import { tokenCacheName } from '../token-cache.ts';
import { agentClient, caFileOf, type CommandContext, type GlobalOptions, profileDirOf, readText } from './context.ts';

/** The airlock-token entry beside the CLI's (airlock-token.ts from source, .mjs in the package): it answers from the token cache without loading the CLI. */
function tokenEntryOf(entry: string): string {
  const plugin = entry.replace(/airlock\.(ts|mjs)$/, 'airlock-token.$1');
  return plugin !== entry && existsSync(plugin) ? plugin : entry;
}

/** The sh fast path beside the CLI's entry (cli/airlock-token.sh), where there is a /bin/sh (not on Windows). */
function tokenScriptOf(entry: string): string | undefined {
  const script = join(dirname(entry), 'airlock-token.sh');
  return process.platform !== 'win32' && existsSync('/bin/sh') && existsSync(script) ? script : undefined;
}

/** What binds a kubeconfig's tokens further than its connection: a plan, in mode plan or apply. */
export interface PlanBinding {
  plan: string;
  mode: 'plan' | 'apply';
}

/** The kubeconfig of the logged-in agent for a connection, its tokens bound to `plan` if given. */
export function agentKubeconfig(global: GlobalOptions, entry: string, connection: string, plan?: PlanBinding): string {
  const { profile } = agentClient(global);
  const caFile = caFileOf(global);
  // The token command names its agent and endpoint: a later login of another agent, or at
  // another endpoint, never changes who this kubeconfig acts as.
  const bound = ['--endpoint', profile.endpoint, '--agent-id', agentOf(profile)];
  const dir = global.profileDir ?? process.env.AIRLOCK_PROFILE_DIR;
  const node = [
    tokenEntryOf(entry),
    ...bound,
    ...(dir ? ['--profile-dir', resolve(dir)] : []),
    ...(global.endpointCa ? ['--endpoint-ca', resolve(global.endpointCa)] : []),
    'token',
    '--connection',
    connection,
    ...(plan ? ['--plan', plan.plan, '--mode', plan.mode] : []),
  ];
  // kubectl runs the plugin twice per command: where there is a /bin/sh, a cached token is
  // printed by airlock-token.sh without starting Node (the profile directory as the Node entry
  // finds it: this one if named, else the default where kubectl runs); anything else runs Node.
  const script = tokenScriptOf(entry);
  const cacheName = tokenCacheName({ endpoint: profile.endpoint, agent: agentOf(profile), connection, ...plan });
  return kubeconfigFor({
    endpoint: profile.endpoint,
    connection,
    caPem: caFile ? readText(caFile, 'CA file') : undefined,
    ...(script ? { command: '/bin/sh', args: [script, dir ? resolve(dir) : '', cacheName, process.execPath, ...node] } : { command: process.execPath, args: node }),
    // Compiled code is kept in the agent's own profile directory.
    env: { NODE_COMPILE_CACHE: join(profileDirOf(global), 'compile-cache') },
  });
}

export function registerKubeconfig({ program, io, entry, globals }: CommandContext): void {
  program
    .command('kubeconfig')
    .description('print a kubeconfig that reaches the connection through Airlock (CA pinned), bound to the logged-in agent and endpoint')
    .requiredOption('--connection <name>')
    .action((options: { connection: string }) => {
      io.out(agentKubeconfig(globals(), entry, options.connection));
    });
}
