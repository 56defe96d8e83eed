// Approvals: wait for a human decision on a held request or window (agent).
import { setTimeout as sleep } from 'node:timers/promises';
import { agentClient, type CommandContext, EXIT, ExitCode, UsageError } from './context.ts';

export function registerApprovals({ program, io, globals, print }: CommandContext): void {
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
}
