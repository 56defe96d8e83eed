// The auditor's side (admin only): policy review, export, chain verification,
// and the /audit pages (a searchable record list, one record with its
// transcript and approval story, an agent's timeline). Served by the admin
// function; the core does the work (policy-review.ts, audit-export.ts, audit-chain.ts).
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { AirlockError } from '../core/status.ts';
import { NAME_PATTERN, isId } from '../core/ids.ts';
import { parseDuration } from '../core/durations.ts';
import { unspool } from '../core/transcripts.ts';
import type { Approval, Decision, Grant, RequestRecord } from '../core/model.ts';
import { K8S_AUDIT_LEVELS, toK8sAuditEvent, toOcsfApiActivity, type K8sAuditLevel, type TranscriptBodies } from '../core/audit-export.ts';
import { startOfDay, verifyChains } from '../core/audit-chain.ts';
import { describeRequest } from '../core/kube-request.ts';
import { partOnFirstUse } from '../core/on-first-use.ts';
import { pathParameter, queryParameter, type HttpResult, type RouteHandler } from '../runtime/http.ts';
import type { TranscriptServices } from '../runtime/services.ts';
import { PAGE_HEADERS, escapeHtml } from '../runtime/html.ts';

/** Most records one review, export page or verification reads (a bigger period: narrow it, or page the export). */
const MAX_RECORDS = 50_000;
const EXPORT_PAGE = 1000;
const DECISIONS: readonly Decision[] = ['allowed', 'denied', 'held', 'error', 'pending'];

/** An instant from a duration back from now (30d, 1h) or an ISO time. */
export function instantParameter(event: APIGatewayProxyEvent, field: string, now: number): number | undefined {
  const text = queryParameter(event, field);
  if (text === undefined) return undefined;
  const seconds = parseDuration(text);
  if (seconds !== undefined) return now - seconds * 1000;
  const instant = Date.parse(text);
  if (!Number.isNaN(instant) && /^\d{4}-\d{2}-\d{2}/.test(text)) return instant;
  throw new AirlockError(400, 'invalid_query', `${field}: a duration back from now (30d, 1h) or an ISO time`);
}

function nameParameter(event: APIGatewayProxyEvent, field: string): string | undefined {
  const value = queryParameter(event, field);
  if (value !== undefined && value !== '' && !NAME_PATTERN.test(value)) throw new AirlockError(400, 'invalid_query', `${field}: not a name`);
  return value || undefined;
}

/** Every record of the period (oldest first), through the store's pages. */
async function recordsBetween(services: TranscriptServices, filter: { since: number; until: number; agent?: string; connection?: string }): Promise<RequestRecord[]> {
  const records: RequestRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await services.records.query({ agent: filter.agent, connection: filter.connection, since: filter.since, limit: 1000, cursor });
    records.push(...page.items.filter((record) => record.time <= filter.until && (!filter.connection || record.connection === filter.connection)));
    cursor = page.cursor;
    if (records.length > MAX_RECORDS) throw new AirlockError(413, 'too_many_records', `more than ${MAX_RECORDS} records in the period; give a shorter one`);
  } while (cursor);
  return records.sort((a, b) => a.time - b.time);
}

async function transcriptOf(services: TranscriptServices, record: RequestRecord): Promise<string | undefined> {
  const stored = record.transcriptKey ? await services.transcripts.get(record.transcriptKey) : undefined;
  return stored ?? (record.transcriptSpool ? unspool(record.transcriptSpool) : undefined);
}

function iso(time: number | undefined): string {
  return time === undefined ? '' : new Date(time).toISOString();
}

/** The policy review (its YAML and diffs) is asked for rarely next to the audit pages: loaded on first use. */
const loadPolicyReview = partOnFirstUse('admin_unavailable', 'the policy review', () => import('../core/policy-review.ts'));

export function auditRoutes(admin: (event: APIGatewayProxyEvent) => Promise<{ services: TranscriptServices }>): Record<string, RouteHandler> {
  return {
    'GET /v1/policy-review': async (event) => {
      const { services } = await admin(event);
      const connectionName = nameParameter(event, 'connection');
      if (!connectionName) throw new AirlockError(400, 'invalid_query', 'connection: required');
      const agent = nameParameter(event, 'agent');
      const now = services.now();
      const since = instantParameter(event, 'since', now) ?? now - 30 * 86_400_000;
      const until = instantParameter(event, 'until', now) ?? now;
      const connection = await services.state.getConnection(connectionName);
      if (!connection) throw new AirlockError(404, 'connection_not_found', `no connection ${connectionName}`);
      const records = await recordsBetween(services, { since, until, connection: connectionName, ...(agent ? { agent } : {}) });
      const approvals = await services.state.listApprovals({ connection: connectionName });
      const review = (await loadPolicyReview()).reviewPolicy({
        connection: connectionName,
        ...(agent ? { agent } : {}),
        policy: connection.policy,
        policyVersion: connection.policyVersion,
        since,
        until,
        records,
        approvals,
      });
      return {
        status: 200,
        body: {
          ...review,
          since: iso(review.since),
          until: iso(review.until),
          rules: review.rules.map((rule) => ({ ...rule, lastMatched: iso(rule.lastMatched) || null })),
          refused: review.refused.map((refused) => ({ ...refused, last: iso(refused.last) })),
        },
      };
    },

    'GET /v1/audit/export': async (event) => {
      const { services } = await admin(event);
      const now = services.now();
      const since = instantParameter(event, 'since', now);
      if (since === undefined) throw new AirlockError(400, 'invalid_query', 'since: required (a duration back from now or an ISO time)');
      const until = instantParameter(event, 'until', now) ?? now;
      const format = queryParameter(event, 'format') ?? 'k8s-audit';
      if (format !== 'k8s-audit' && format !== 'ocsf') throw new AirlockError(400, 'invalid_query', 'format: k8s-audit or ocsf');
      const level = (queryParameter(event, 'level') ?? 'Metadata') as K8sAuditLevel;
      if (!K8S_AUDIT_LEVELS.includes(level)) throw new AirlockError(400, 'invalid_query', `level: one of ${K8S_AUDIT_LEVELS.join(', ')}`);
      const offset = Number(queryParameter(event, 'offset') ?? '0');
      if (!Number.isInteger(offset) || offset < 0) throw new AirlockError(400, 'invalid_query', 'offset: the "next" of a previous page');
      const records = (await recordsBetween(services, { since, until })).slice(offset, offset + EXPORT_PAGE);
      const items = await Promise.all(
        records.map(async (record) => {
          if (format === 'ocsf') return toOcsfApiActivity(record, { cloudProvider: services.config.endpoints ? 'Local' : 'AWS', region: services.config.region });
          const transcript = level === 'Metadata' ? undefined : await transcriptOf(services, record);
          return toK8sAuditEvent(record, level, transcript ? (JSON.parse(transcript) as TranscriptBodies) : undefined);
        }),
      );
      return { status: 200, body: { items, ...(records.length === EXPORT_PAGE ? { next: offset + EXPORT_PAGE } : {}) } };
    },

    'GET /v1/audit/verify': async (event) => {
      const { services } = await admin(event);
      const now = services.now();
      const since = startOfDay(instantParameter(event, 'since', now) ?? now - 86_400_000);
      const records = await recordsBetween(services, { since, until: now });
      const heads = await services.records.listChainHeads(since);
      const report = await verifyChains({ since, records, heads, readTranscript: (record) => transcriptOf(services, record) });
      return { status: 200, body: { ...report, since: iso(report.since), ok: report.problems.length === 0 } };
    },

    'GET /audit': async (event) => {
      const { services } = await admin(event);
      return recordListPage(event, services);
    },

    'GET /audit/{id}': async (event) => {
      const { services } = await admin(event);
      return recordPage(pathParameter(event, 'id'), services);
    },

    'GET /audit/agents/{name}': async (event) => {
      const { services } = await admin(event);
      return timelinePage(event, pathParameter(event, 'name'), services);
    },
  };
}

// ---------------------------------------------------------------- pages

const escape = escapeHtml;

function page(title: string, body: string): HttpResult {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} · Airlock audit</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:76rem;margin:1.5rem auto;padding:0 1rem;color:#1d1d1f}
h1{font-size:1.35rem} h2{font-size:1.1rem;margin-top:1.6rem} table{border-collapse:collapse;width:100%;margin:.8rem 0}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e4e4e8;vertical-align:top} th{color:#555;font-weight:600}
td{word-break:break-word} code,pre{font:13px ui-monospace,monospace;background:#f3f3f5;border-radius:4px;padding:.1rem .3rem}
pre{padding:.6rem;white-space:pre-wrap;overflow-wrap:anywhere} form{display:flex;flex-wrap:wrap;gap:.6rem;align-items:end}
label{display:flex;flex-direction:column;font-size:.85rem;color:#555} input,select,button{font-size:.95rem;padding:.3rem .4rem}
.allowed{color:#0a7c2f} .denied,.error{color:#b00020;font-weight:600} .held{color:#8a5a00;font-weight:600} .pending{color:#555}
.note{color:#555;font-size:.9rem} nav a{margin-right:1rem} td:first-child,td.nowrap{white-space:nowrap}
</style></head><body>
<nav><a href="/audit">Records</a></nav>
<h1>${escape(title)}</h1>
${body}
<p class="note">Airlock · admin view of the records; transcripts are shown as recorded (Secret values redacted).</p>
</body></html>
`;
  return { status: 200, body: html, headers: PAGE_HEADERS };
}

function decisionCell(decision: string): string {
  return `<td class="${escape(decision)}">${escape(decision)}</td>`;
}

function link(href: string, text: string): string {
  return `<a href="${escape(href)}">${escape(text)}</a>`;
}

async function recordListPage(event: APIGatewayProxyEvent, services: TranscriptServices): Promise<HttpResult> {
  const now = services.now();
  const agent = nameParameter(event, 'agent');
  const connection = nameParameter(event, 'connection');
  const decision = queryParameter(event, 'decision') || undefined;
  if (decision !== undefined && !DECISIONS.includes(decision as Decision)) throw new AirlockError(400, 'invalid_query', `decision: one of ${DECISIONS.join(', ')}`);
  const text = (queryParameter(event, 'q') ?? '').slice(0, 200);
  const sinceText = queryParameter(event, 'since') || '24h';
  const since = instantParameter({ ...event, queryStringParameters: { since: sinceText }, multiValueQueryStringParameters: null }, 'since', now)!;
  const until = instantParameter(event, 'until', now) ?? now;
  const records = (await recordsBetween(services, { since, until, ...(agent ? { agent } : {}), ...(connection ? { connection } : {}) }))
    .filter((record) => (!decision || record.decision === decision) && (!text || `${describeRequest(record)} ${record.reason} ${record.id}`.toLowerCase().includes(text.toLowerCase())))
    .reverse()
    .slice(0, 500);
  const field = (name: string, label: string, value: string | undefined, placeholder = '') =>
    `<label>${label}<input name="${name}" value="${escape(value ?? '')}" placeholder="${escape(placeholder)}"></label>`;
  const form = `<form method="get" action="/audit" role="search">
${field('agent', 'Agent', agent)}${field('connection', 'Connection', connection)}
<label>Decision<select name="decision"><option value="">any</option>${DECISIONS.map((d) => `<option${d === decision ? ' selected' : ''}>${d}</option>`).join('')}</select></label>
${field('since', 'Since', sinceText, '24h, 7d or an ISO time')}${field('q', 'Text', text, 'verb, resource, name, reason')}
<button type="submit">Search</button></form>`;
  const rows = records
    .map(
      (record) =>
        `<tr><td>${escape(iso(record.time))}</td><td>${link(`/audit/agents/${record.agent}`, record.agent)}</td><td>${escape(record.connection)}</td><td>${link(`/audit/${record.id}`, describeRequest(record))}</td>${decisionCell(record.decision)}<td>${record.status ?? ''}</td><td>${escape(record.reason)}</td></tr>`,
    )
    .join('\n');
  return page(
    'Records',
    `${form}<p class="note">${records.length} record(s)${records.length === 500 ? ' (the newest 500; narrow the search)' : ''}</p>
<table><thead><tr><th>Time</th><th>Agent</th><th>Connection</th><th>Request</th><th>Decision</th><th>Status</th><th>Why</th></tr></thead><tbody>
${rows}
</tbody></table>`,
  );
}

function approvalStory(approval: Approval): string {
  const steps: [number | undefined, string][] = [
    [approval.createdAt, `${approval.agentName} asked: ${approval.summary}${approval.reason ? ` — “${approval.reason}”` : ''} (rule: ${approval.rule}; approvers: ${approval.approvers.join(', ')})`],
  ];
  for (const decision of approval.decisions) steps.push([decision.at, `${decision.approver} decided: ${decision.decision}`]);
  if (approval.status === 'expired') steps.push([approval.expiresAt, 'expired without a decision']);
  if (approval.consumedAt) steps.push([approval.consumedAt, `used by ${approval.consumedBy ?? 'the request'}`]);
  if (approval.cancelledAt) steps.push([approval.cancelledAt, `cancelled: ${approval.cancelReason ?? ''}`]);
  return `<h2>Approval ${escape(approval.id)} — ${escape(approval.status)}</h2>
<table><tbody>${steps.map(([at, what]) => `<tr><td>${escape(iso(at))}</td><td>${escape(what)}</td></tr>`).join('')}</tbody></table>`;
}

async function recordPage(id: string, services: TranscriptServices): Promise<HttpResult> {
  const record = isId(id, 'req') ? await services.records.get(id) : undefined;
  if (!record) throw new AirlockError(404, 'record_not_found', `no request ${id.slice(0, 64)}`);
  const transcript = await transcriptOf(services, record);
  const approval = record.approvalId ? await services.state.getApproval(record.approvalId) : undefined;
  const facts: [string, string | number | undefined][] = [
    ['Time', iso(record.time)],
    ['Agent', record.agent],
    ['Connection', record.connection],
    ['Request', `${record.method} ${record.path}${record.query ? `?${record.query}` : ''}`],
    ['Decision', record.decision],
    ['Why', record.reason],
    ['Status', record.status],
    ['Window', record.grantId],
    ['Duration', record.durationMs === undefined ? undefined : `${record.durationMs} ms`],
    ['Transcript SHA-256', record.transcriptSha256],
    ['Chain', record.chain ? `${record.chain.partition} #${record.chain.seq} ${record.chain.hash}` : 'not chained'],
  ];
  const rows = facts
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([name, value]) => `<tr><th>${escape(name)}</th><td>${name === 'Agent' ? link(`/audit/agents/${String(value)}`, String(value)) : escape(String(value))}</td></tr>`)
    .join('');
  const shown = transcript === undefined ? '<p class="denied">The transcript is missing.</p>' : `<pre class="transcript">${escape(JSON.stringify(JSON.parse(transcript), null, 2))}</pre>`;
  return page(`Request ${record.id}`, `<table><tbody>${rows}</tbody></table>${approval ? approvalStory(approval) : ''}<h2>Transcript</h2>${shown}`);
}

async function timelinePage(event: APIGatewayProxyEvent, name: string, services: TranscriptServices): Promise<HttpResult> {
  if (!NAME_PATTERN.test(name)) throw new AirlockError(400, 'invalid_request', 'not an agent name');
  const agent = await services.state.getAgentByName(name);
  if (!agent) throw new AirlockError(404, 'agent_not_found', `no agent ${name}`);
  const now = services.now();
  const since = instantParameter(event, 'since', now) ?? now - 7 * 86_400_000;
  const [records, grants] = await Promise.all([recordsBetween(services, { since, until: now, agent: name }), services.state.listGrants({ agentId: agent.id })]);
  type Line = { at: number; kind: string; what: string; cls: string; href?: string };
  const lines: Line[] = [];
  for (const grant of grants as Grant[]) {
    if ((grant.endedAt ?? grant.expiresAt ?? now) < since) continue;
    lines.push({ at: grant.requestedAt, kind: 'window', what: `asked ${Math.round(grant.durationSeconds / 60)} min on ${grant.connection}: “${grant.reason}” (${grant.status})`, cls: 'pending' });
    if (grant.activatedAt) lines.push({ at: grant.activatedAt, kind: 'window', what: `opened on ${grant.connection} until ${iso(grant.expiresAt)}`, cls: 'allowed' });
    if (grant.endedAt) lines.push({ at: grant.endedAt, kind: 'window', what: `ended on ${grant.connection}: ${grant.endReason ?? grant.status}`, cls: 'pending' });
  }
  const refusals = records.filter((record) => record.decision !== 'allowed').length;
  for (const record of records) {
    lines.push({
      at: record.time,
      kind: record.decision === 'allowed' ? 'request' : 'refusal',
      what: `${describeRequest(record)} on ${record.connection} — ${record.decision}${record.decision === 'allowed' ? '' : `: ${record.reason}`}`,
      cls: record.decision,
      href: `/audit/${record.id}`,
    });
  }
  lines.sort((a, b) => a.at - b.at);
  const rows = lines
    .map((line) => `<tr><td>${escape(iso(line.at))}</td><td class="${escape(line.cls)} nowrap">${escape(line.kind)}</td><td>${line.href ? link(line.href, line.what) : escape(line.what)}</td></tr>`)
    .join('\n');
  return page(
    `Agent ${name}`,
    `<p>${records.length} request(s), ${refusals} refused, ${grants.length} window(s) since ${escape(iso(since))}. Status: ${escape(agent.status)}.</p>
<table><thead><tr><th>Time</th><th>What</th><th>Detail</th></tr></thead><tbody>
${rows}
</tbody></table>`,
  );
}
