// The approver's page. GET /approvals/{id}?sig=... shows who asks for what and
// why, and never decides anything (mail scanners prefetch links); POST
// /approvals/{id} with the signed form token records one decision. Agent
// credentials are not accepted here at all.
import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { Approval } from '../core/model.ts';
import { approvalsCount } from '../core/approvals.ts';
import { AirlockError } from '../core/status.ts';
import { isId } from '../core/ids.ts';
import { header, httpHandler, pathParameter, queryParameter, rawBody, router, type HttpResult, type RouteHandler } from '../runtime/http.ts';
import type { TranscriptServices } from '../runtime/services.ts';
import { PAGE_HEADERS, escapeHtml } from '../runtime/html.ts';
import { servicesFromEnvironment } from '../runtime/environment.ts';
import { createTranscriptServices } from '../runtime/transcript-services.ts';
import { cancelledMessage, decide } from '../core/lifecycle.ts';
import type { ChangePreview } from '../core/preview.ts';
import { renderChangePreview, renderWindow } from '../core/preview-render.ts';

const escape = escapeHtml;

function page(status: number, title: string, body: string): HttpResult {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} · Airlock</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}
h1{font-size:1.4rem} table{border-collapse:collapse;width:100%;margin:1rem 0}
th{text-align:left;width:9rem;vertical-align:top;color:#555;font-weight:600;padding:.3rem .6rem .3rem 0}
td{padding:.3rem 0;word-break:break-word} code,pre{font:14px ui-monospace,monospace;background:#f3f3f5;border-radius:4px;padding:.1rem .3rem}
pre{padding:.6rem;white-space:pre-wrap;overflow-wrap:anywhere;max-height:14rem;overflow:auto}
.actions{display:flex;gap:1rem;margin-top:1.5rem} button{font-size:1rem;padding:.6rem 1.4rem;border-radius:6px;border:1px solid #888;cursor:pointer}
.approve{background:#0a7c2f;color:#fff;border-color:#0a7c2f} .deny{background:#fff;color:#b00020;border-color:#b00020}
.note{color:#555;font-size:.9rem} .status{padding:.8rem 1rem;border-radius:6px;background:#f3f3f5}
h3{font-size:1.05rem;margin:1.2rem 0 .4rem} .flags li{color:#8a1c00;font-weight:600} .blind{padding:.8rem 1rem;border-radius:6px;background:#fde8e8;color:#7a0010} section.change{border-top:1px solid #ccc;margin-top:1.2rem}
pre.body,pre.diff{max-height:none} pre.diff span,ins,del{display:block;min-height:1.2em} ins{background:#dcf5e3;text-decoration:none} del{background:#fbe1e1;text-decoration:none} .recent code{overflow-wrap:anywhere}
</style></head><body>
<h1>${escape(title)}</h1>
${body}
<p class="note">Airlock · every decision is recorded with your address and the time.</p>
</body></html>
`;
  return { status, body: html, headers: PAGE_HEADERS };
}

function errorPage(error: AirlockError): HttpResult {
  return page(error.status, 'Nothing was changed', `<p class="status">${escape(error.message)}</p>`);
}

function details(approval: Approval, now: number): string {
  const rows: [string, string][] = [
    ['Agent', `${escape(approval.agentName)} <code>${escape(approval.agentId)}</code>`],
    ['Asks for', escape(approval.summary)],
    ['Connection', escape(approval.connection)],
    ['Why', `${escape(approval.reason ?? '(no reason given)')} <span class="note">(written by the agent)</span>`],
    ...(approval.ticket ? ([['Ticket', escape(approval.ticket)]] as [string, string][]) : []),
    ['Rule', escape(approval.rule)],
    ['Approvals', `${approvalsCount(approval.decisions)} of ${approval.minApprovals} needed (approvers: ${escape(approval.approvers.join(', '))})`],
    ['Requested', new Date(approval.createdAt).toISOString()],
    ['Expires', `${new Date(approval.expiresAt).toISOString()}${approval.expiresAt <= now ? ' (expired)' : ''}`],
  ];
  if (approval.request) {
    const query = approval.request.query ? `?${approval.request.query}` : '';
    rows.push(['Request', `<code>${escape(approval.request.method)} ${escape(approval.request.path + query)}</code>`]);
    rows.push(['Body SHA-256', `<code>${escape(approval.request.bodySha256)}</code>${approval.request.mediaType ? ` (${escape(approval.request.mediaType)})` : ''}`]);
    // Approvals held before previews existed kept a short body preview; a preview shows the whole body below.
    if (approval.request.bodyPreview && !approval.preview) rows.push(['Body', `<pre>${escape(approval.request.bodyPreview)}</pre>`]);
  }
  // A plan's changes, each with what it would do, are under "What it would do".
  if (approval.plan) rows.push(['Command', `<code>${escape(approval.plan.command)}</code> <span class="note">(written by the agent)</span>`]);
  return `<table>${rows.map(([name, value]) => `<tr><th>${name}</th><td>${value}</td></tr>`).join('')}</table>`;
}

/** What the approver is shown: a request's preview, or each of a plan's changes' (undefined where none can be read). */
interface Shown {
  request?: ChangePreview;
  changes: (ChangePreview | undefined)[];
}

/** A preview as the gateway kept it in the transcript store. Undefined when there is none to show (not stored, unreadable). */
async function readPreview(services: TranscriptServices, key: string | undefined): Promise<ChangePreview | undefined> {
  if (!key) return undefined;
  try {
    const text = await services.transcripts.get(key);
    return text ? (JSON.parse(text) as ChangePreview) : undefined;
  } catch {
    return undefined;
  }
}

async function loadPreviews(services: TranscriptServices, approval: Approval): Promise<Shown> {
  if (approval.kind === 'request') {
    const request = await readPreview(services, approval.preview?.key);
    return request ? { request, changes: [] } : { changes: [] };
  }
  if (approval.kind !== 'plan') return { changes: [] };
  return { changes: await Promise.all((approval.plan?.changes ?? []).map((change) => readPreview(services, change.preview?.key))) };
}

/** Why an approver cannot approve this: they could not see what it does. Undefined when they can. */
function blindReason(approval: Approval, shown: Shown): string | undefined {
  if (approval.kind === 'plan') {
    // Every change the policy holds (or one from before that was known) must be shown; one it allows outright needs no approval.
    const hidden = (approval.plan?.changes ?? []).flatMap((change, index) => {
      if (change.held === false) return [];
      const preview = shown.changes[index];
      const problems = preview?.problems ?? change.preview?.problems ?? [];
      if (problems.length) return [`change ${index + 1}: ${problems.join('; ')}`];
      return preview ? [] : [`change ${index + 1}: its preview is not available`];
    });
    return hidden.length ? `${hidden.join('; ')} — deny the plan, or ask for that change as a request Airlock can show` : undefined;
  }
  if (approval.kind !== 'request') return undefined;
  const problems = shown.request?.problems ?? approval.preview?.problems ?? [];
  if (problems.length) return problems.join('; ');
  if (!shown.request) return 'the preview of this request is not available';
  return undefined;
}

function planChangesSection(approval: Approval, shown: Shown): string {
  const changes = approval.plan?.changes ?? [];
  const sections = changes.map((change, index) => {
    const query = change.query ? `?${change.query}` : '';
    const preview = shown.changes[index];
    const needsApproval = change.held !== false;
    const head =
      `<h3>Change ${index + 1} of ${changes.length}: ${escape(change.summary)}</h3>` +
      `<p><code>${escape(change.method)} ${escape(change.path + query)}</code><br>Body SHA-256 <code>${escape(change.bodySha256)}</code>${change.mediaType ? ` (${escape(change.mediaType)})` : ''}` +
      `<br>Dry run: the API server answered ${change.dryRun.status}</p>` +
      `<p class="note">${needsApproval ? 'Held by the policy: it passes only with this approval.' : 'Allowed by the policy without approval: shown so the whole change is in view.'}</p>`;
    const body = preview
      ? renderChangePreview(preview, { needsApproval })
      : `<div class="blind"><strong>Airlock cannot show what this change does${needsApproval ? ', so the plan cannot be approved' : ''}.</strong> Its preview is not available.</div>`;
    return `<section class="change">${head}${body}</section>`;
  });
  const window = approval.plan?.window ? `<section class="change">${renderWindow(approval.plan.window)}</section>` : '';
  return `<h2>What it would do</h2>${sections.join('\n')}${window}`;
}

function previewSection(approval: Approval, shown: Shown): string {
  if (approval.kind === 'plan') return planChangesSection(approval, shown);
  if (approval.kind !== 'request') return '';
  if (!shown.request) {
    return `<div class="blind"><strong>Airlock cannot show what this request does, so it cannot be approved.</strong> ${escape(blindReason(approval, shown) ?? '')}</div>`;
  }
  return `<h2>What it would do</h2>${renderChangePreview(shown.request)}`;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function refuseAgentCredentials(event: APIGatewayProxyEvent): void {
  if (header(event, 'authorization')) {
    throw new AirlockError(403, 'agent_credentials_refused', 'approval pages are for people with an approval link; credentials are not accepted here');
  }
}

async function load(services: TranscriptServices, event: APIGatewayProxyEvent, sig: string | undefined) {
  const id = pathParameter(event, 'id');
  if (!isId(id, 'apr')) throw new AirlockError(404, 'approval_not_found', 'there is no such approval');
  const { approver } = await services.links.verifyLink(sig ?? '', id);
  const approval = await services.state.getApproval(id);
  if (!approval) throw new AirlockError(404, 'approval_not_found', 'there is no such approval');
  if (!approval.approvers.includes(approver)) throw new AirlockError(403, 'not_an_approver', 'this link is not for an approver of this request');
  return { approval, approver };
}

export function approvalRoutes(getServices: () => Promise<TranscriptServices>): RouteHandler {
  const guarded =
    (handler: RouteHandler): RouteHandler =>
    async (event, context) => {
      try {
        refuseAgentCredentials(event);
        return await handler(event, context);
      } catch (error) {
        if (error instanceof AirlockError) return errorPage(error);
        throw error;
      }
    };

  return router({
    'GET /approvals/{id}': guarded(async (event) => {
      const services = await getServices();
      const sig = queryParameter(event, 'sig');
      const { approval, approver } = await load(services, event, sig);
      const now = services.now();
      const title =
        approval.kind === 'window'
          ? `Access window for ${approval.agentName}?`
          : approval.kind === 'plan'
            ? `Approve these ${approval.plan?.changes.length ?? 0} changes from ${approval.agentName}?`
            : `Approve this request from ${approval.agentName}?`;
      const mine = approval.decisions.find((decision) => decision.approver === approver);
      const shown = await loadPreviews(services, approval);
      const blind = blindReason(approval, shown);
      let action: string;
      if (approval.status === 'cancelled') {
        // Said first, even to an approver who already approved: that approval no longer lets anything through.
        const yours = mine ? ` You had chosen to ${mine.decision} it at ${new Date(mine.at).toISOString()}; that no longer counts.` : '';
        action = `<p class="status">${escape(capitalize(cancelledMessage(approval)))}. It can no longer be approved or used; there is nothing left to decide.${escape(yours)}</p>`;
      } else if (mine) {
        action = `<p class="status">You chose to <strong>${mine.decision}</strong> this at ${new Date(mine.at).toISOString()}. A decision is made once.</p>`;
      } else if (approval.status !== 'pending') {
        action = `<p class="status">This request is <strong>${escape(approval.status)}</strong>; there is nothing left to decide.</p>`;
      } else if (approval.expiresAt <= now) {
        action = '<p class="status">This request has <strong>expired</strong>; there is nothing left to decide.</p>';
      } else if (blind) {
        // Never approved blind: only Deny is offered, and a POST approve is refused too.
        const form = await services.links.form(approval.id, approver, approval.expiresAt);
        action = `<form method="post" action="/approvals/${approval.id}">
<input type="hidden" name="sig" value="${escape(sig!)}"><input type="hidden" name="form" value="${escape(form)}">
<p class="blind">Approve is not offered: Airlock cannot show what this request does (${escape(blind)}). Deciding as <strong>${escape(approver)}</strong>.</p>
<div class="actions"><button class="deny" type="submit" name="decision" value="deny">Deny</button></div></form>`;
      } else {
        const form = await services.links.form(approval.id, approver, approval.expiresAt);
        action = `<form method="post" action="/approvals/${approval.id}">
<input type="hidden" name="sig" value="${escape(sig!)}"><input type="hidden" name="form" value="${escape(form)}">
<p>Deciding as <strong>${escape(approver)}</strong>.</p>
<div class="actions"><button class="approve" type="submit" name="decision" value="approve">Approve</button>
<button class="deny" type="submit" name="decision" value="deny">Deny</button></div></form>`;
      }
      return page(200, title, `${details(approval, now)}${previewSection(approval, shown)}${action}`);
    }),

    'POST /approvals/{id}': guarded(async (event) => {
      const services = await getServices();
      const type = (header(event, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/x-www-form-urlencoded') throw new AirlockError(415, 'unsupported_media_type', 'decisions are sent by the form on the approval page');
      const raw = rawBody(event);
      if (raw.length > 8192) throw new AirlockError(413, 'body_too_large', 'the form is too large');
      const form = new URLSearchParams(raw.toString('utf8'));
      for (const field of ['sig', 'form', 'decision']) {
        if (form.getAll(field).length !== 1) throw new AirlockError(400, 'invalid_form', 'the form is incomplete; open the link from your email again');
      }
      const { approval, approver } = await load(services, event, form.get('sig')!);
      const formClaims = await services.links.verifyForm(form.get('form')!, approval.id);
      if (formClaims.approver !== approver) throw new AirlockError(403, 'invalid_link', 'the form does not belong to this link');
      const decision = form.get('decision');
      if (decision !== 'approve' && decision !== 'deny') throw new AirlockError(400, 'invalid_form', 'choose Approve or Deny');
      if (decision === 'approve') {
        const blind = blindReason(approval, await loadPreviews(services, approval));
        if (blind)
          throw new AirlockError(409, 'approval_blind', `this request cannot be approved: Airlock cannot show what it does (${blind}); deny it, or ask the agent to send a request Airlock can show`);
      }
      const outcome = await decide(services, approval.id, approver, decision);
      const message =
        outcome.status === 'approved'
          ? approval.kind === 'window'
            ? 'Approved. The window opens now.'
            : approval.kind === 'plan'
              ? 'Approved. The agent may now apply exactly these changes, each once.'
              : 'Approved. The agent may now retry that exact request, once.'
          : outcome.status === 'denied'
            ? 'Denied. The agent has been refused.'
            : `Your approval is recorded; ${approval.minApprovals - approvalsCount(outcome.approval.decisions)} more needed.`;
      return page(200, decision === 'approve' ? 'Thank you — approved' : 'Thank you — denied', `${details(outcome.approval, services.now())}<p class="status">${escape(message)}</p>`);
    }),
  });
}

export const handler = httpHandler(approvalRoutes(servicesFromEnvironment(createTranscriptServices)));
