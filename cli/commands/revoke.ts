// The kill switch: end every window of an agent or on a connection (admin).
import { adminClient, type CommandContext, UsageError } from './context.ts';

export function registerRevoke({ program, globals, print }: CommandContext): void {
  program
    .command('revoke')
    .description('kill switch: end every window of an agent or on a connection, effective on the next request')
    .option('--agent <name>')
    .option('--connection <name>')
    .action(async (options: { agent?: string; connection?: string }) => {
      if (!!options.agent === !!options.connection) throw new UsageError('give exactly one of --agent or --connection');
      const { body } = await adminClient(globals()).call<{ windowsRevoked: number; approvalsCancelled: number }>('POST', 'v1/revocations', options);
      print(
        `revoked ${options.agent ? `agent ${options.agent}` : `connection ${options.connection}`}: ${body.windowsRevoked} window(s) ended, ${body.approvalsCancelled} held request approval(s) cancelled`,
        body,
      );
    });
}
