// A kubeconfig bound to the logged-in agent and endpoint, whose user runs `airlock token`.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { kubeconfigFor } from '../kubeconfig.ts';
import { agentOf } from '../profile.ts';
import { agentClient, caFileOf, type CommandContext, type GlobalOptions, profileDirOf, readText } from './context.ts';

/** The airlock-token entry beside the CLI's (airlock-token.ts from source, .mjs in the package): it answers from the token cache without loading the CLI. */
function tokenEntryOf(entry: string): string {
  const plugin = entry.replace(/airlock\.(ts|mjs)$/, 'airlock-token.$1');
  return plugin !== entry && existsSync(plugin) ? plugin : entry;
}

/** The kubeconfig of the logged-in agent for a connection; `tokenArgs` bind its tokens further (a plan). */
export function agentKubeconfig(global: GlobalOptions, entry: string, connection: string, tokenArgs: string[] = []): string {
  const { profile } = agentClient(global);
  const caFile = caFileOf(global);
  // The token command names its agent and endpoint: a later login of another agent, or at
  // another endpoint, never changes who this kubeconfig acts as.
  const bound = ['--endpoint', profile.endpoint, '--agent-id', agentOf(profile)];
  const dir = global.profileDir ?? process.env.AIRLOCK_PROFILE_DIR;
  return kubeconfigFor({
    endpoint: profile.endpoint,
    connection,
    caPem: caFile ? readText(caFile, 'CA file') : undefined,
    command: process.execPath,
    args: [
      tokenEntryOf(entry),
      ...bound,
      ...(dir ? ['--profile-dir', resolve(dir)] : []),
      ...(global.endpointCa ? ['--endpoint-ca', resolve(global.endpointCa)] : []),
      'token',
      '--connection',
      connection,
      ...tokenArgs,
    ],
    // kubectl runs the plugin for every command: compiled code is kept in the agent's own profile directory.
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
