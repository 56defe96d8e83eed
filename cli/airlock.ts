#!/usr/bin/env node
// `airlock`: agent and admin commands, and kubectl's exec-credential plugin.
// Exit codes: 0 ok, 1 refused/denied/failed, 2 usage error, 3 pending (a human has not decided yet).
// Each command group is a file in cli/commands/; context.ts holds what they share.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { errorText } from '../lambdas/core/errors.ts';
import { ApiError } from './client.ts';
import { registerAccess } from './commands/access.ts';
import { registerAgents } from './commands/agents.ts';
import { registerApprovals } from './commands/approvals.ts';
import { registerAudit, registerPolicy } from './commands/audit.ts';
import { registerConnections } from './commands/connections.ts';
import { registerExec } from './commands/exec.ts';
import { commandContext, DEFAULT_ENDPOINT, EXIT, ExitCode, UsageError, type GlobalOptions, type Io } from './commands/context.ts';
import { registerKubeconfig } from './commands/kubeconfig.ts';
import { registerMcp } from './commands/mcp.ts';
import { registerLogin, registerLogout } from './commands/login.ts';
import { registerPlan } from './commands/plan.ts';
import { registerRevoke } from './commands/revoke.ts';
import { registerToken } from './commands/token.ts';
import { registerVerify } from './commands/verify.ts';

export function buildProgram(io: Io): Command {
  const program = new Command('airlock')
    .description('Airlock: the single access boundary for AI agents on production Kubernetes')
    .option('--endpoint <url>', `Airlock endpoint (default: profile, AIRLOCK_ENDPOINT or ${DEFAULT_ENDPOINT})`)
    .option('--json', 'machine-readable output')
    .option('--endpoint-ca <file>', "CA certificate that signs the endpoint's certificate (default: profile, then AIRLOCK_HOME/ca.crt)")
    .option('--home <dir>', 'local stack home (default: AIRLOCK_HOME or ./.airlock)')
    .option('--admin-key-file <file>', 'admin key (default: AIRLOCK_HOME/admin.key)')
    .option('--profile-dir <dir>', 'agent profile directory (default: AIRLOCK_PROFILE_DIR or ~/.config/airlock)')
    .option('--agent-id <id>', 'agent commands run as this logged-in agent (default: the last login); `iam` for an --iam login')
    .option('--iam', 'admin calls: sign with your AWS credentials (SigV4); the default for execute-api endpoints without an admin key')
    .option('--region <region>', 'AWS region for SigV4 (default: from the execute-api endpoint, or AWS_REGION)')
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.out(text.trimEnd()), writeErr: (text) => io.err(text.trimEnd()) })
    .showHelpAfterError();

  const cli = commandContext(program, io, fileURLToPath(import.meta.url));
  // `airlock --help` lists the commands in this order: admin first, then agent.
  for (const register of [
    registerAgents,
    registerConnections,
    registerRevoke,
    registerAudit,
    registerPolicy,
    registerLogin,
    registerAccess,
    registerApprovals,
    registerKubeconfig,
    registerPlan,
    registerExec,
    registerLogout,
    registerToken,
    registerMcp,
    registerVerify,
  ]) {
    register(cli);
  }
  return program;
}

export async function runCli(argv: string[], io: Io = { out: (text) => process.stdout.write(`${text}\n`), err: (text) => process.stderr.write(`${text}\n`) }): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof ExitCode) return error.code;
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0) return EXIT.ok;
      return EXIT.usage;
    }
    if (error instanceof UsageError) {
      io.err(`airlock: ${error.message}`);
      return EXIT.usage;
    }
    if (error instanceof ApiError) {
      if (program.opts<GlobalOptions>().json) io.out(JSON.stringify({ error: { status: error.status, code: error.code, message: error.message } }));
      io.err(`airlock: ${error.message} (${error.code}, HTTP ${error.status})`);
      return EXIT.refused;
    }
    io.err(`airlock: ${errorText(error, { name: false })}`);
    return EXIT.refused;
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exit(await runCli(process.argv.slice(2)));
}
