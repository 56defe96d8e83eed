// Audit: recorded requests and state changes, and moving kept transcripts to S3 (admin).
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { ApiError } from '../client.ts';
import { PAGE_HEADERS } from '../../lambdas/runtime/html.ts';
import type { ChainReport } from '../../lambdas/core/audit-chain.ts';
import type { PolicyReview } from '../../lambdas/core/policy-review.ts';
import { adminClient, type CommandContext, EXIT, ExitCode, UsageError, table } from './context.ts';

export function registerAudit({ program, io, globals, print }: CommandContext): void {
  const audit = program.command('audit').description('who did what (admin)');
  audit
    .command('list')
    .description('recorded requests, newest first')
    .option('--agent <name>')
    .option('--connection <name>')
    .option('--since <duration>', 'e.g. 1h, 30m, or an ISO time')
    .option('--limit <n>', 'at most n items', '100')
    .option('--events', 'state changes (windows, approvals, tokens) instead of requests')
    .option('--cursor <cursor>', 'continue from a previous page (see "cursor" in --json output)')
    .option('--all', 'follow every page')
    .action(async (options: { agent?: string; connection?: string; since?: string; limit: string; events?: boolean; cursor?: string; all?: boolean }) => {
      const query = new URLSearchParams();
      for (const key of ['agent', 'connection', 'since', 'limit', 'cursor'] as const) if (options[key]) query.set(key, options[key]);
      if (options.events) query.set('type', 'events');
      const client = adminClient(globals());
      const body: { items: Record<string, unknown>[]; cursor?: string } = { items: [] };
      do {
        const page = (await client.call<{ items: Record<string, unknown>[]; cursor?: string }>('GET', `v1/audit?${query}`)).body;
        body.items.push(...page.items);
        body.cursor = page.cursor;
        if (page.cursor) query.set('cursor', page.cursor);
      } while (options.all && body.cursor);
      const columns = options.events
        ? ['time', 'type', 'agent', 'connection', 'subject', 'actor']
        : ['time', 'id', 'agent', 'connection', 'verb', 'resource', 'namespace', 'name', 'decision', 'status'];
      print(table(body.items, columns), body);
    });
  audit
    .command('repair')
    .description('move transcripts kept in records while S3 was unavailable into S3')
    .action(async () => {
      const { body } = await adminClient(globals()).call<{ moved: number; failed: string[]; remaining: boolean }>('POST', 'v1/audit/repair');
      print(`${body.moved} transcript(s) moved to S3${body.failed.length ? `; ${body.failed.length} still failing` : ''}${body.remaining ? '; more remain, run again' : ''}`, body);
      if (body.failed.length) throw new ExitCode(EXIT.refused);
    });
  audit
    .command('export')
    .description('records as Kubernetes audit events (audit.k8s.io/v1) or OCSF API Activity (6003), one JSON object a line')
    .requiredOption('--since <when>', 'a duration back from now (7d, 1h) or an ISO time')
    .option('--until <when>', 'a duration back from now or an ISO time (default: now)')
    .option('--format <format>', 'k8s-audit or ocsf', 'k8s-audit')
    .option('--level <level>', 'k8s-audit: Metadata, Request or RequestResponse (bodies from the redacted transcripts)', 'Metadata')
    .option('--out <file>', 'write to a file instead of stdout')
    .action(async (options: { since: string; until?: string; format: string; level: string; out?: string }) => {
      if (options.format !== 'k8s-audit' && options.format !== 'ocsf') throw new UsageError('--format: k8s-audit or ocsf');
      const query = new URLSearchParams({ since: options.since, format: options.format, level: options.level });
      if (options.until) query.set('until', options.until);
      const client = adminClient(globals());
      const lines: string[] = [];
      for (let offset: number | undefined = 0; offset !== undefined;) {
        query.set('offset', String(offset));
        const page = (await client.call<{ items: unknown[]; next?: number }>('GET', `v1/audit/export?${query}`)).body;
        lines.push(...page.items.map((item) => JSON.stringify(item)));
        offset = page.next;
      }
      const text = lines.length ? `${lines.join('\n')}\n` : '';
      if (options.out) {
        writeFileSync(options.out, text);
        io.err(`${lines.length} event(s) written to ${options.out}`);
      } else io.out(text.trimEnd());
    });
  audit
    .command('verify')
    .description("recompute the records' hash chains and transcript digests; exit 1 on any gap, edit or missing transcript")
    .option('--since <when>', 'a duration back from now (30d) or an ISO time; whole UTC days are checked', '1d')
    .action(async (options: { since: string }) => {
      const { body } = await adminClient(globals()).call<ChainReport & { ok: boolean; since: string }>('GET', `v1/audit/verify?${new URLSearchParams({ since: options.since })}`);
      const summary = `${body.records} record(s) in ${body.partitions} chain(s) since ${body.since}, ${body.transcripts} transcript(s) checked${body.unfinished.length ? `; ${body.unfinished.length} still in flight (not yet chained)` : ''}`;
      const findings = body.problems.map((problem) => `${problem.kind.padEnd(19)} ${problem.detail}${problem.partition ? ` [${problem.partition}]` : ''}`);
      print(body.ok ? `ok: ${summary}` : `FAILED: ${body.problems.length} problem(s); ${summary}\n${findings.join('\n')}`, body);
      if (!body.ok) throw new ExitCode(EXIT.refused);
    });
  audit
    .command('ui')
    .description('serve the /audit pages on 127.0.0.1, signing each request as the admin (admin key, or SigV4 with --iam): for a browser on AWS')
    .option('--port <port>', 'local port (0: any free one)', '8790')
    .action(async (options: { port: string }) => {
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError('--port: 0..65535');
      const client = adminClient(globals());
      // Like `kubectl proxy`: only the /audit pages, only GET, only on loopback.
      const server = createServer((req, res) => {
        const path = req.url ?? '/';
        if (req.method !== 'GET' || !/^\/audit(\/|\?|$)/.test(path)) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /audit pages are served here\n');
          return;
        }
        client.call<string>('GET', path.slice(1)).then(
          ({ body }) => res.writeHead(200, PAGE_HEADERS).end(typeof body === 'string' ? body : JSON.stringify(body)),
          (error: unknown) => res.writeHead(error instanceof ApiError ? error.status : 502, { 'content-type': 'text/plain' }).end(`${error instanceof Error ? error.message : String(error)}\n`),
        );
      });
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      const address = server.address();
      io.out(`audit pages at http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}/audit (Ctrl-C to stop)`);
      await new Promise<void>((resolve) => {
        for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => server.close(() => resolve()));
      });
    });
  audit
    .command('show <id>')
    .description('one request: its record and its transcript from S3')
    .action(async (id: string) => {
      const { body } = await adminClient(globals()).call<unknown>('GET', `v1/audit/${encodeURIComponent(id)}`);
      io.out(JSON.stringify(body, null, 2));
    });
}

/** `airlock policy review`: the policy against what the records say it did. */
export function registerPolicy({ program, globals, print }: CommandContext): void {
  const policy = program.command('policy').description("review a connection's policy against its use (admin)");
  policy
    .command('review')
    .description('per rule: what it decided and when; rules never used; what was refused most; approvals; a narrower policy (a suggestion, never applied)')
    .requiredOption('--connection <name>')
    .option('--agent <name>', "only this agent's requests")
    .option('--since <when>', 'a duration back from now (30d) or an ISO time', '30d')
    .option('--until <when>', 'a duration back from now or an ISO time (default: now)')
    .action(async (options: { connection: string; agent?: string; since: string; until?: string }) => {
      const query = new URLSearchParams({ connection: options.connection, since: options.since });
      if (options.agent) query.set('agent', options.agent);
      if (options.until) query.set('until', options.until);
      const { body } = await adminClient(globals()).call<
        Omit<PolicyReview, 'since' | 'until' | 'rules' | 'refused'> & {
          since: string;
          until: string;
          rules: (PolicyReview['rules'][number] & { lastMatched: string | null })[];
          refused: (PolicyReview['refused'][number] & { last: string })[];
        }
      >('GET', `v1/policy-review?${query}`);
      const rules = body.rules.map((rule) => ({ ...rule, lastMatched: rule.lastMatched ?? 'never', escalation: rule.reachesEscalation.join(', ') }));
      const { approvals, suggested } = body;
      const human = [
        `Policy review of ${body.connection}${body.agent ? ` for ${body.agent}` : ''}, ${body.since} to ${body.until}: ${body.requests} request(s) decided by the policy${body.reevaluated ? ` (${body.reevaluated} under an older version, re-checked against the current one)` : ''}`,
        '',
        table(rules, ['rule', 'effect', 'allowed', 'held', 'denied', 'lastMatched', 'escalation', 'text']),
        '',
        `Never used: ${body.unusedRules.length ? body.unusedRules.map((rule) => `rule ${rule}`).join(', ') : 'none'}`,
        '',
        'Refused most often:',
        table(
          body.refused.map((refused) => ({ ...refused })),
          ['count', 'decision', 'request', 'last', 'reason'],
        ),
        '',
        `Escalation and credential-minting requests: ${body.escalations.length ? body.escalations.map((seen) => `${seen.request} (${seen.allowed} allowed, ${seen.held} held, ${seen.denied} denied)`).join('; ') : 'none'}`,
        ...body.warnings.map((warning) => `warning: ${warning}`),
        `Approvals: ${approvals.asked} asked, ${approvals.granted} granted, ${approvals.denied} denied, ${approvals.expired} expired, ${approvals.cancelled} cancelled, ${approvals.pending} pending`,
        '',
        suggested.diff
          ? `Suggested narrower policy (${suggested.version}; checked: ${suggested.check.allowedStillAllowed} allowed request(s) still allowed, ${suggested.check.refusedStillRefused} refused still refused). Not applied: review it, then \`airlock connections update\`.\n${suggested.changes.map((change) => `- ${change}`).join('\n')}\n\n${suggested.diff}`
          : 'The policy is already the least that allows what was allowed.',
      ].join('\n');
      print(human, body);
    });
}
