// Agent profiles: log one agent in at one endpoint, or out again.
import { agentOf, IAM_AGENT, type Profile, removeProfile, writeProfile } from '../profile.ts';
import { sigv4Signer } from '../sigv4.ts';
import { removeCachedTokens } from '../token-cache.ts';
import { baseClient, caFileOf, type CommandContext, endpointOf, iamAgentPath, profileDirOf, readText, regionFor, resolveProfile, UsageError } from './context.ts';

export function registerLogin({ program, globals, print }: CommandContext): void {
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
      // Tokens of an earlier login of this agent are not handed out again.
      removeCachedTokens(profileDirOf(global), { endpoint: profile.endpoint, agent: agentOf(profile) });
      const who = profile.iam ? 'your IAM principal' : profile.agentId;
      print(`logged in as ${who} at ${profile.endpoint} (profile ${file})`, { agentId: profile.agentId ?? null, iam: !!profile.iam, endpoint: profile.endpoint, profile: file });
    });
}

export function registerLogout({ program, globals, print }: CommandContext): void {
  program
    .command('logout')
    .description('remove the stored profile of the default agent, or of --agent-id at --endpoint; kubeconfigs bound to it stop working')
    .action(async () => {
      const global = globals();
      const profile = resolveProfile(global);
      if (!profile) throw new UsageError(global.agentId ? `agent ${global.agentId} is not logged in at ${endpointOf(global)}` : 'not logged in as an agent');
      removeProfile(profile.endpoint, agentOf(profile), profileDirOf(global));
      removeCachedTokens(profileDirOf(global), { endpoint: profile.endpoint, agent: agentOf(profile) });
      print(`logged out ${agentOf(profile)} at ${profile.endpoint}`, { agentId: agentOf(profile), endpoint: profile.endpoint });
    });
}
