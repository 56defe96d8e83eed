// Plan, approve once, apply (agent).
//   airlock plan --connection C --reason R -- kubectl apply -f dir/
//     runs the command with a kubeconfig whose tokens are bound to a new plan
//     in mode "plan": every change it makes is sent as a dry run and
//     collected; then one approval covers them all (exit 3: pending).
//   airlock apply PLAN_ID [--wait] -- kubectl apply -f dir/
//     after approval, runs the command again with tokens in mode "apply":
//     each planned change passes once; anything else is as without a plan.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { agentKubeconfig, type PlanBinding } from './kubeconfig.ts';
import { agentClient, type CommandContext, EXIT, ExitCode, type GlobalOptions, UsageError } from './context.ts';

interface PlanView {
  id: string;
  connection: string;
  status: string;
  changes: { summary: string; dryRunStatus: number; held: boolean; problems?: string[] }[];
  approvalId?: string;
  approvalStatus?: string;
  approvalExpiresAt?: string;
  expiresAt?: string;
  cancelReason?: string;
}

/** Runs the command with its own kubeconfig (removed after); resolves to its exit code. */
async function runWith(global: GlobalOptions, entry: string, connection: string, plan: PlanBinding, command: string[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-plan-'));
  try {
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, agentKubeconfig(global, entry, connection, plan), { mode: 0o600 });
    return await new Promise<number>((resolve, reject) => {
      const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...process.env, KUBECONFIG: kubeconfig } });
      child.on('error', reject);
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function registerPlan({ program, io, entry, globals, print }: CommandContext): void {
  program
    .command('plan')
    .description('run a command as a plan: its changes are dry runs, collected for one approval (exit 3: pending, 1: nothing planned or the command failed)')
    .requiredOption('--connection <name>')
    .requiredOption('--reason <text>', 'why, for the approver')
    .option('--ticket <id>')
    .argument('<command...>', 'the command, after --')
    .action(async (command: string[], options: { connection: string; reason: string; ticket?: string }) => {
      const global = globals();
      const { client } = agentClient(global);
      const opened = (
        await client.call<PlanView>('POST', 'v1/plans', {
          connection: options.connection,
          reason: options.reason,
          ...(options.ticket ? { ticket: options.ticket } : {}),
          command: command.join(' ').slice(0, 1000),
        })
      ).body;
      if (!global.json) io.err(`plan ${opened.id} open: running ${command.join(' ')} (changes are dry runs)`);
      const code = await runWith(global, entry, options.connection, { plan: opened.id, mode: 'plan' }, command);
      // The plan closes even after a failed command: an approver must never see a plan that could still grow.
      const closed = (await client.call<PlanView>('POST', `v1/plans/${encodeURIComponent(opened.id)}/close`)).body;
      const count = `${closed.changes.length} change${closed.changes.length === 1 ? '' : 's'}`;
      // The approver is offered no Approve for a plan with a held change Airlock cannot show: say so now, not after a wait.
      closed.changes.forEach((change, index) => {
        if (change.held && change.problems?.length && !global.json) {
          io.err(`change ${index + 1} (${change.summary}) cannot be shown to the approver, so the plan cannot be approved: ${change.problems.join('; ')}`);
        }
      });
      if (code !== 0) {
        print(`plan ${closed.id} (${count}): the command failed (exit ${code})${closed.approvalId ? `; approval ${closed.approvalId} was asked anyway` : ''}`, { ...closed, commandExit: code });
        throw new ExitCode(EXIT.refused);
      }
      if (!closed.approvalId) {
        print(`plan ${closed.id} (${count}): nothing to approve`, closed);
        return;
      }
      print(`plan ${closed.id} (${count}) pending approval ${closed.approvalId}`, closed);
      throw new ExitCode(EXIT.pending);
    });

  program
    .command('apply <plan>')
    .description("run the command again after the plan's approval: each planned change passes once; exit code = the command's")
    .option('--wait', 'wait for the approval first')
    .option('--timeout <seconds>', 'with --wait: give up after this long (exit 3)', '900')
    .argument('<command...>', 'the command, after --')
    .action(async (planId: string, command: string[], options: { wait?: boolean; timeout: string }) => {
      const global = globals();
      const { client } = agentClient(global);
      const timeout = Number(options.timeout);
      if (!Number.isFinite(timeout) || timeout < 0) throw new UsageError('--timeout: seconds');
      const deadline = Date.now() + timeout * 1000;
      let current = (await client.call<PlanView>('GET', `v1/plans/${encodeURIComponent(planId)}`)).body;
      while (options.wait && current.status === 'closed' && current.approvalStatus === 'pending' && Date.now() < deadline) {
        await sleep(1000);
        current = (await client.call<PlanView>('GET', `v1/plans/${encodeURIComponent(planId)}`)).body;
      }
      if (current.status === 'closed' && current.approvalStatus === 'pending') {
        print(`plan ${current.id}: approval ${current.approvalId} still pending`, current);
        throw new ExitCode(EXIT.pending);
      }
      // The gateway decides (approved, unexpired, not yet applied, window open); its refusal says why.
      const applying = (await client.call<PlanView>('POST', `v1/plans/${encodeURIComponent(planId)}/apply`)).body;
      if (!global.json) io.err(`plan ${applying.id}: applying ${applying.changes.length} change(s) until ${applying.expiresAt ?? '?'}`);
      const code = await runWith(global, entry, applying.connection, { plan: applying.id, mode: 'apply' }, command);
      if (code !== 0) throw new ExitCode(code);
    });
}
