// Access windows: ask for one (and wait for it), see them, end one (agent).
import { setTimeout as sleep } from 'node:timers/promises';
import { agentOf, writeProfile } from '../profile.ts';
import { switchWindow } from '../token-cache.ts';
import { agentClient, type CommandContext, EXIT, ExitCode, profileDirOf, table } from './context.ts';

interface Grant {
  id: string;
  connection: string;
  status: string;
  expiresAt?: string;
  approvalId?: string;
  reason?: string;
}

export function registerAccess({ program, io, globals, print }: CommandContext): void {
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
      // Tokens of the connection's earlier window are not handed out again (token-cache.ts).
      const dir = profileDirOf(global);
      switchWindow(dir, { endpoint: profile.endpoint, agent: agentOf(profile), connection: options.connection }, body.id, () =>
        writeProfile({ ...profile, windows: { ...profile.windows, [options.connection]: body.id } }, dir),
      );
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
      print(
        `window ${grant.id} on ${grant.connection}: ${grant.status}${grant.expiresAt ? ` until ${grant.expiresAt}` : ''}${grant.approvalId && grant.status === 'pending' ? ` (approval ${grant.approvalId})` : ''}`,
        {
          id: grant.id,
          status: grant.status,
          ...(grant.expiresAt ? { expiresAt: grant.expiresAt } : {}),
          ...(grant.approvalId ? { approvalId: grant.approvalId } : {}),
        },
      );
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

  access
    .command('end <id>')
    .description('close one of your windows now (the next request is refused)')
    .action(async (id: string) => {
      const { client } = agentClient(globals());
      const { body } = await client.call<Grant>('POST', `v1/access-requests/${encodeURIComponent(id)}/end`);
      print(`window ${body.id} on ${body.connection}: ${body.status}`, body);
    });
}
