// kubectl's exec-credential plugin: a short-lived token for one connection (agent).
import { agentOf } from '../profile.ts';
import { execCredential, nameWindow, readCachedToken, writeCachedToken, type TokenCacheKey } from '../token-cache.ts';
import { agentClient, type CommandContext, endpointOf, loginCommand, profileDirOf, resolveProfile } from './context.ts';

export function registerToken({ program, io, globals }: CommandContext): void {
  program
    .command('token')
    .description('an ExecCredential for kubectl (client.authentication.k8s.io/v1), as --agent-id at --endpoint when given (kubeconfigs give both)')
    .requiredOption('--connection <name>')
    .option('--plan <id>', 'a token of `airlock plan` / `airlock apply`, bound to this plan (with --mode)')
    .option('--mode <mode>', 'plan | apply')
    .action(async (options: { connection: string; plan?: string; mode?: string }) => {
      const global = globals();
      if (global.agentId && !resolveProfile(global)) {
        const endpoint = endpointOf(global);
        throw new Error(
          `this kubeconfig was issued for agent ${global.agentId} at ${endpoint}, which is not logged in here (logged out, or another profile directory); nothing was sent. Run: ${loginCommand(global, global.agentId, endpoint)}`,
        );
      }
      const { client, profile } = agentClient(global);
      // A token still valid for this agent, connection and window is handed out again (token-cache.ts):
      // the gateway checks the window and the agent on every request, whatever token is presented.
      const window = profile.windows?.[options.connection];
      const dir = profileDirOf(global);
      const key: TokenCacheKey = { endpoint: profile.endpoint, agent: agentOf(profile), connection: options.connection, ...(options.plan ? { plan: options.plan, mode: options.mode } : { window }) };
      const cached = readCachedToken(dir, key);
      if (cached) {
        nameWindow(dir, key);
        io.out(execCredential(cached));
        return;
      }
      const { body } = await client.call<{ token: string; expiresAt: string; window: string }>('POST', 'v1/tokens', {
        connection: options.connection,
        // A plan's token is for the plan's own window: the gateway picks it.
        ...(options.plan ? { plan: options.plan, mode: options.mode } : window ? { window } : {}),
      });
      const token = { token: body.token, expiresAt: body.expiresAt };
      writeCachedToken(dir, key, token);
      io.out(execCredential(token));
    });
}
