// kubectl's exec-credential plugin: a short-lived token for one connection (agent).
import { agentClient, type CommandContext, endpointOf, loginCommand, resolveProfile } from './context.ts';

export function registerToken({ program, io, globals }: CommandContext): void {
  program
    .command('token')
    .description('an ExecCredential for kubectl (client.authentication.k8s.io/v1), as --agent-id at --endpoint when given (kubeconfigs give both)')
    .requiredOption('--connection <name>')
    .action(async (options: { connection: string }) => {
      const global = globals();
      if (global.agentId && !resolveProfile(global)) {
        const endpoint = endpointOf(global);
        throw new Error(
          `this kubeconfig was issued for agent ${global.agentId} at ${endpoint}, which is not logged in here (logged out, or another profile directory); nothing was sent. Run: ${loginCommand(global, global.agentId, endpoint)}`,
        );
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
}
