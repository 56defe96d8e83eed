// `airlock verify`: the boundary proof and side-door checks, one pass/fail line per control.
import { resolve } from 'node:path';
import type { AirlockClient } from '../client.ts';
import { adminClient, agentClient, airlockHome, baseClient, type CommandContext, EXIT, ExitCode, readText, table } from './context.ts';

/** Where a pod's service-account token is mounted (the default of --service-account-token). */
const SERVICE_ACCOUNT_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function registerVerify({ program, io, globals }: CommandContext): void {
  program
    .command('verify')
    .description('walk the boundary proof and the side-door checks; one pass/fail line per control; exit 0 only if all pass')
    .requiredOption('--connection <name>')
    .option('--approve-with-link', 'local stack: approve through the emailed link in AIRLOCK_HOME/outbox')
    .option('--timeout <seconds>', 'how long to wait for a human approval', '900')
    .option('--upstream-token-file <file>', "the connection's cluster credential, to prove it appears in no response or record")
    .option('--service-account-token <file>', "where a pod's service-account token would be (tried against the cluster if present)", SERVICE_ACCOUNT_TOKEN_PATH)
    .action(async (options: { connection: string; approveWithLink?: boolean; timeout: string; upstreamTokenFile?: string; serviceAccountToken: string }) => {
      const global = globals();
      const { client, profile } = agentClient(global);
      // Loaded here, not with the CLI: other commands (kubectl's `airlock token` above all) never need them.
      const [{ runVerify }, { awsIamSimulator }] = await Promise.all([import('../verify.ts'), import('../iam-simulator.ts')]);
      let admin: AirlockClient | undefined;
      try {
        admin = adminClient(global);
      } catch {
        admin = undefined;
      }
      const base = baseClient(global);
      const checks = await runVerify({
        connection: options.connection,
        agent: client,
        anonymous: base,
        wrongKey: base.withAuthorization(`Basic ${Buffer.from(`${profile.agentId}:alk_${'x'.repeat(43)}`).toString('base64')}`),
        agentId: profile.agentId!,
        admin,
        outboxDir: resolve(airlockHome(global), 'outbox'),
        approveWithLink: !!options.approveWithLink,
        timeoutSeconds: Number(options.timeout),
        upstreamToken: options.upstreamTokenFile ? readText(options.upstreamTokenFile, 'token file').trim() : undefined,
        serviceAccountTokenPath: resolve(options.serviceAccountToken),
        iam: () => awsIamSimulator(),
        progress: (line) => {
          if (!global.json) io.err(line);
        },
      });
      const pass = checks.every((check) => check.pass);
      if (global.json) io.out(JSON.stringify({ pass, checks }, null, 2));
      else
        io.out(
          `${table(
            checks.map((check) => ({ control: check.control, result: check.pass ? 'PASS' : 'FAIL', evidence: check.evidence })),
            ['control', 'result', 'evidence'],
          )}\n\n${pass ? 'PASS' : 'FAIL'}: ${checks.filter((c) => c.pass).length}/${checks.length} controls hold on ${options.connection}${checks.some((check) => check.warnings) ? ' (with warnings: credentials found that could not be tried)' : ''}`,
        );
      if (!pass) throw new ExitCode(EXIT.refused);
    });
}
