// A kubeconfig bound to the logged-in agent and endpoint, whose user runs `airlock token`.
import { resolve } from 'node:path';
import { kubeconfigFor } from '../kubeconfig.ts';
import { agentOf } from '../profile.ts';
import { agentClient, caFileOf, type CommandContext, readText } from './context.ts';

export function registerKubeconfig({ program, io, entry, globals }: CommandContext): void {
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
          args: [
            entry,
            ...bound,
            ...(dir ? ['--profile-dir', resolve(dir)] : []),
            ...(global.endpointCa ? ['--endpoint-ca', resolve(global.endpointCa)] : []),
            'token',
            '--connection',
            options.connection,
          ],
        }),
      );
    });
}
