// One command in a container, through Airlock (agent):
//   airlock exec --connection C [-n NS] [-c CONTAINER] [-i] [--timeout 60s] POD -- CMD [ARGS...]
// Airlock opens the exec stream to the API server itself (POST /v1/exec), so
// it works where an upgraded connection (`kubectl exec`) cannot pass. Output
// is written as it comes; the exit code is the command's. Refused: 1; held
// for approval: 3 (`airlock approvals wait ID`, then the same command again).
import { createInterface } from 'node:readline';
import { parseDuration } from '../../lambdas/core/durations.ts';
import { agentClient, type CommandContext, EXIT, ExitCode, UsageError } from './context.ts';

interface ExecLine {
  stream?: 'stdout' | 'stderr';
  data?: string;
  exit?: { code: number };
  error?: { message?: string; code?: number; details?: { causes?: { reason?: string }[] } };
}

async function processStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export function registerExec({ program, io, globals }: CommandContext): void {
  program
    .command('exec')
    .description("run a command in a container (no TTY) through Airlock; exit code = the command's (1: refused or ended by Airlock, 3: held for approval)")
    .requiredOption('--connection <name>')
    .option('-n, --namespace <ns>', 'the pod’s namespace', 'default')
    .option('-c, --container <name>', 'the container (default: the pod’s default container)')
    .option('-i, --stdin', 'send this process’s standard input (read to its end first) to the command')
    .option('--timeout <duration>', 'end the command after this long (e.g. 30s, 5m; at most 15m)', '60s')
    .argument('<pod>')
    .argument('<command...>', 'the command and its arguments, after --')
    .action(async (pod: string, command: string[], options: { connection: string; namespace: string; container?: string; stdin?: boolean; timeout: string }) => {
      const global = globals();
      const timeoutSeconds = parseDuration(options.timeout);
      if (timeoutSeconds === undefined || timeoutSeconds < 1 || timeoutSeconds > 900) throw new UsageError('--timeout: a duration from 1s to 15m, e.g. 30s');
      const { client, profile } = agentClient(global);
      const window = profile.windows?.[options.connection];
      const { body: token } = await client.call<{ token: string }>('POST', 'v1/tokens', { connection: options.connection, ...(window ? { window } : {}) });
      const stdin = options.stdin ? await (io.input ?? processStdin)() : undefined;
      const response = await client.withAuthorization(`Bearer ${token.token}`).stream('POST', 'v1/exec', {
        connection: options.connection,
        namespace: options.namespace,
        pod,
        ...(options.container ? { container: options.container } : {}),
        command,
        ...(stdin !== undefined ? { stdin } : {}),
        timeoutSeconds,
      });
      const requestId = response.headers['x-airlock-request-id'];
      if (response.statusCode !== 200) {
        const chunks: Buffer[] = [];
        for await (const chunk of response as AsyncIterable<Buffer>) chunks.push(chunk);
        const text = Buffer.concat(chunks).toString('utf8');
        let status: { message?: string; reason?: string; details?: { name?: string; causes?: { reason?: string }[] } } = {};
        try {
          status = JSON.parse(text) as typeof status;
        } catch {
          status = { message: text.slice(0, 500) };
        }
        // Airlock's refusals name their cause; the API server's own (no such pod) its reason.
        const reason = status.details?.causes?.[0]?.reason ?? status.reason ?? `http_${response.statusCode}`;
        if (global.json)
          io.out(
            JSON.stringify({ error: { status: response.statusCode, code: reason, message: status.message, approvalId: reason === 'approval_required' ? status.details?.name : undefined, requestId } }),
          );
        // Airlock's own messages already begin with "airlock: ".
        io.err(`airlock: ${(status.message ?? `HTTP ${response.statusCode}`).replace(/^airlock: /, '')} (${reason}, HTTP ${response.statusCode})`);
        throw new ExitCode(reason === 'approval_required' ? EXIT.pending : EXIT.refused);
      }
      const collected = { stdout: '', stderr: '' };
      let end: ExecLine | undefined;
      for await (const line of createInterface({ input: response, crlfDelay: Infinity })) {
        if (!line) continue;
        const event = JSON.parse(line) as ExecLine;
        if (event.stream && typeof event.data === 'string') {
          if (global.json) collected[event.stream] += event.data;
          else if (io.write) io.write(event.stream, event.data);
          else (event.stream === 'stdout' ? process.stdout : process.stderr).write(event.data);
        } else if (event.exit || event.error) end = event;
      }
      if (global.json) io.out(JSON.stringify({ ...collected, ...(end?.exit ? { exitCode: end.exit.code } : { error: end?.error ?? { message: 'the answer ended without an exit' } }), requestId }));
      if (end?.exit) {
        if (end.exit.code !== 0) throw new ExitCode(end.exit.code);
        return;
      }
      if (!global.json)
        io.err(`airlock: ${(end?.error?.message ?? 'the exec stream ended without the command’s exit code').replace(/^airlock: /, '')} (${end?.error?.details?.causes?.[0]?.reason ?? 'no_exit'})`);
      throw new ExitCode(EXIT.refused);
    });
}
