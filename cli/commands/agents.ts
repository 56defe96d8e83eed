// Agents: register, list, disable and enable the agents that may ask for access (admin).
import { adminClient, type CommandContext, table } from './context.ts';

export function registerAgents({ program, globals, print }: CommandContext): void {
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
        [
          `agent:  ${body.name}`,
          `id:     ${body.id}`,
          body.secret
            ? `secret: ${body.secret}\n\nThe secret is shown once. Save it to a file (mode 0600) for: airlock login --agent-id ${body.id} --secret-file FILE`
            : `principal: ${body.principalArn}`,
        ].join('\n'),
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
}
