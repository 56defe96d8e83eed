// Human approval: what exactly is approved (a fingerprint), who may decide (a
// signed link per approver), and what the approver reads (the email).
import { createHash } from 'node:crypto';
import { SignJWT, errors, jwtVerify } from 'jose';
import type { Approval, ApprovalDecision } from './model.ts';
import { AirlockError } from './status.ts';
import { formatDuration } from './durations.ts';

/** A Content-Type reduced to its media type: what decides how the API server reads the body. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/**
 * The exact request an approval is for: agent, connection, method, path+query
 * (canonical), body, the body's media type (the same bytes are a different
 * PATCH as merge-patch or strategic-merge-patch) and the policy version.
 */
export function requestFingerprint(input: { agentId: string; connection: string; method: string; path: string; query: string; bodySha256: string; mediaType: string; policyVersion: string }): string {
  const canonical = JSON.stringify([input.agentId, input.connection, input.method.toUpperCase(), input.path, input.query, input.bodySha256, input.mediaType, input.policyVersion]);
  return createHash('sha256').update(canonical).digest('hex');
}

const LINK_TYPE = 'airlock-approval-link';
const FORM_TYPE = 'airlock-approval-form';
/** A form token is only good for a short while after the page was shown. */
const FORM_TTL_SECONDS = 15 * 60;

export interface LinkClaims {
  approvalId: string;
  approver: string;
}

/**
 * Approval links and forms: HS256 JWS (jose) under the gateway's link key.
 * The link names one approval and one approver and expires with the approval;
 * the form token (in the page) is what a POST must carry.
 */
export class ApprovalLinks {
  private readonly key: Uint8Array;
  private readonly now: () => number;

  constructor(linkKey: Buffer, now: () => number = Date.now) {
    this.key = new Uint8Array(linkKey);
    this.now = now;
  }

  async link(baseUrl: string, approval: Approval, approver: string): Promise<string> {
    const sig = await this.sign(LINK_TYPE, approval.id, approver, Math.floor(approval.expiresAt / 1000));
    return `${baseUrl.replace(/\/$/, '')}/approvals/${approval.id}?sig=${sig}`;
  }

  async form(approvalId: string, approver: string, approvalExpiresAt: number): Promise<string> {
    const exp = Math.min(Math.floor(this.now() / 1000) + FORM_TTL_SECONDS, Math.floor(approvalExpiresAt / 1000));
    return this.sign(FORM_TYPE, approvalId, approver, exp);
  }

  verifyLink(token: string, approvalId: string): Promise<LinkClaims> {
    return this.verify(LINK_TYPE, token, approvalId, 'this approval link');
  }

  verifyForm(token: string, approvalId: string): Promise<LinkClaims> {
    return this.verify(FORM_TYPE, token, approvalId, 'this form');
  }

  private async sign(type: string, approvalId: string, approver: string, exp: number): Promise<string> {
    return new SignJWT({ apr: approvalId })
      .setProtectedHeader({ alg: 'HS256', typ: type })
      .setSubject(approver)
      .setIssuedAt(Math.floor(this.now() / 1000))
      .setExpirationTime(exp)
      .sign(this.key);
  }

  private async verify(type: string, token: string, approvalId: string, what: string): Promise<LinkClaims> {
    if (!token || token.length > 2048 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
      throw new AirlockError(403, 'invalid_link', `${what} is not valid; use the link from your email`);
    }
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'], typ: type, currentDate: new Date(this.now()), requiredClaims: ['sub', 'exp'] });
      if (payload.apr !== approvalId || typeof payload.sub !== 'string') throw new AirlockError(403, 'invalid_link', `${what} is for another approval`);
      return { approvalId, approver: payload.sub };
    } catch (error) {
      if (error instanceof AirlockError) throw error;
      if (error instanceof errors.JWTExpired) throw new AirlockError(410, 'link_expired', `${what} has expired, and so has the request it was for`);
      throw new AirlockError(403, 'invalid_link', `${what} is not valid; use the link from your email`);
    }
  }
}

export function approvalsCount(decisions: ApprovalDecision[]): number {
  return decisions.filter((decision) => decision.decision === 'approve').length;
}

/**
 * Agent-supplied text (reason, ticket, request path) on one line: an agent must
 * not be able to lay out a fake "Review and decide" section or link in an email.
 */
export function oneLine(text: string, max = 500): string {
  // \p{Cc}: control characters (newlines, tabs, escapes); \p{Zl}\p{Zp}: Unicode line and paragraph separators.
  return text.replace(/[\p{Cc}\p{Zl}\p{Zp}]+/gu, ' ').slice(0, max);
}

/** The plain-text email one approver receives. */
export function approvalEmail(approval: Approval, approver: string, link: string): { subject: string; text: string } {
  const what = approval.kind === 'window' ? `an access window on ${approval.connection}` : `${approval.summary}`;
  const lines = [
    `Airlock: agent "${approval.agentName}" asks for ${what}.`,
    '',
    `Who:      agent ${approval.agentName} (${approval.agentId})`,
    `What:     ${oneLine(approval.summary)}`,
    `Where:    connection ${approval.connection}`,
    `Why:      ${approval.reason ? oneLine(approval.reason) : '(no reason given)'}  [written by the agent]`,
    ...(approval.ticket ? [`Ticket:   ${oneLine(approval.ticket, 128)}`] : []),
    `Rule:     ${approval.rule}`,
    `Needs:    ${approval.minApprovals} approval(s) from ${approval.approvers.join(', ')}`,
    `Expires:  ${new Date(approval.expiresAt).toISOString()} (in ${formatDuration((approval.expiresAt - approval.createdAt) / 1000)})`,
    ...(approval.request
      ? [
          '',
          `Request:  ${approval.request.method} ${oneLine(approval.request.path + (approval.request.query ? `?${approval.request.query}` : ''), 2048)}`,
          `Body:     sha256 ${approval.request.bodySha256}${approval.request.mediaType ? ` (${approval.request.mediaType})` : ''}`,
        ]
      : []),
    // What it would do (redacted when it was worked out); agent-written text on one line each.
    ...(approval.kind === 'request'
      ? ['', ...(approval.preview ? approval.preview.lines.map((line) => oneLine(line, 300)) : ['CANNOT BE SHOWN (no Approve): no preview was worked out for this request'])]
      : []),
    ...(approval.plan
      ? [
          '',
          ...approval.plan.changes.flatMap((change, index) => [
            `Change ${index + 1}: ${change.method} ${oneLine(change.path + (change.query ? `?${change.query}` : ''), 2048)} (dry run: ${change.dryRun.status}${change.held === false ? '; allowed by the policy without approval' : ''})`,
            // What it would do, redacted when it was planned; a held change without a preview cannot be approved.
            ...(change.preview
              ? change.preview.lines.slice(0, 8).map((line) => `    ${oneLine(line, 300)}`)
              : change.held === false
                ? []
                : ['    CANNOT BE SHOWN (no Approve): no preview was worked out for this change']),
          ]),
        ]
      : []),
    '',
    `Review and decide at ${new URL(link).origin} only (the link is yours alone; opening it decides nothing):`,
    link,
    '',
    `Approval id: ${approval.id}`,
  ];
  return {
    subject: `[Airlock] Approve ${approval.kind === 'window' ? 'access window' : approval.kind === 'plan' ? 'plan' : 'request'} for ${approval.agentName} on ${approval.connection}?`,
    text: `${lines.join('\n')}\n`,
  };
}
