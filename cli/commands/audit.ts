// Audit: recorded requests and state changes, and moving kept transcripts to S3 (admin).
import { adminClient, type CommandContext, EXIT, ExitCode, table } from './context.ts';

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
    .command('show <id>')
    .description('one request: its record and its transcript from S3')
    .action(async (id: string) => {
      const { body } = await adminClient(globals()).call<unknown>('GET', `v1/audit/${encodeURIComponent(id)}`);
      io.out(JSON.stringify(body, null, 2));
    });
}
