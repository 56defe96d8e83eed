// Every state change of a window and of an approval, in one place: the
// workflow tasks, the admin's kill switch and the approval page call these.
// Each is a conditional write (it only happens from the right state) plus an
// audit event: before the change when the change opens access, after it when
// it closes access (closing never waits for the recorder).
import type { Approval, Grant } from '../core/model.ts';
import type { Workflows } from '../core/ports.ts';
import { approvalEmail, approvalsCount } from '../core/approvals.ts';
import { AirlockError } from '../core/status.ts';
import { recordEvent, recordEventAfter } from './events.ts';
import { logger } from './logger.ts';
import type { Services } from './services.ts';

function iso(time: number): string {
  return new Date(time).toISOString();
}

/** pending -> active, expiresAt = now + duration. Undefined when the grant is no longer pending. */
export async function activateWindow(services: Services, grantId: string, actor: string): Promise<Grant | undefined> {
  const grant = await services.state.getGrant(grantId);
  if (!grant || grant.status !== 'pending') return undefined;
  const now = services.now();
  const expiresAt = now + grant.durationSeconds * 1000;
  await recordEvent(services.records, { time: now, type: 'window.activated', agent: grant.agentName, agentId: grant.agentId, connection: grant.connection, subject: grant.id, actor, detail: { expiresAt: iso(expiresAt) } });
  return services.state.transitionGrant(grant.id, ['pending'], { status: 'active', activatedAt: now, expiresAt });
}

/** active -> expired (the gateway already refuses past expiresAt; this makes it visible and notifies). */
export async function expireWindow(services: Services, grantId: string): Promise<void> {
  const now = services.now();
  const grant = await services.state.transitionGrant(grantId, ['active'], { status: 'expired', endedAt: now, endReason: 'window ended' });
  if (!grant) return;
  await recordEventAfter(services.records, { time: now, type: 'window.expired', agent: grant.agentName, agentId: grant.agentId, connection: grant.connection, subject: grant.id, actor: 'workflow' });
  await cancelRequestApprovals(services, { agentId: grant.agentId, grantId: grant.id }, `the window ${grant.id} it was asked in ended at ${iso(now)}`, 'workflow');
  await notify(services, 'window.expired', `[Airlock] Window of ${grant.agentName} on ${grant.connection} ended`, `The access window ${grant.id} of agent ${grant.agentName} on ${grant.connection} ended at ${iso(now)}.\n`, grant);
}

/** pending -> denied (denied, approval timed out, or the workflow failed), and its approval with it. */
export async function endPendingWindow(services: Services, grantId: string, outcome: 'denied' | 'timed-out' | 'failed'): Promise<void> {
  const now = services.now();
  const reasons = { denied: 'approval denied', 'timed-out': 'approval timed out', failed: 'workflow failed (closed)' };
  const grant = await services.state.transitionGrant(grantId, ['pending'], { status: 'denied', endedAt: now, endReason: reasons[outcome] });
  if (!grant) return;
  if (grant.approvalId) await settleApproval(services, grant.approvalId, outcome === 'denied' ? 'denied' : 'expired', 'workflow');
  await recordEventAfter(services.records, { time: now, type: `window.${outcome === 'denied' ? 'denied' : outcome === 'timed-out' ? 'timed-out' : 'failed'}`, agent: grant.agentName, agentId: grant.agentId, connection: grant.connection, subject: grant.id, actor: 'workflow' });
  await notify(services, `window.${outcome}`, `[Airlock] Window of ${grant.agentName} on ${grant.connection}: ${reasons[outcome]}`, `The access request ${grant.id} of agent ${grant.agentName} on ${grant.connection} ended: ${reasons[outcome]}.\n`, grant);
}

/** Kill switch for one window: pending/active -> revoked, its workflow stopped, its approval cancelled. */
export async function revokeWindow(services: Services, grant: Grant, actor: string, why: string): Promise<boolean> {
  const now = services.now();
  const revoked = await services.state.transitionGrant(grant.id, ['pending', 'active'], { status: 'revoked', endedAt: now, endReason: why });
  if (!revoked) return false;
  await recordEventAfter(services.records, { time: now, type: 'window.revoked', agent: grant.agentName, agentId: grant.agentId, connection: grant.connection, subject: grant.id, actor, detail: { why } });
  if (revoked.approvalId) await settleApproval(services, revoked.approvalId, 'cancelled', actor, `the window ${grant.id} was closed by ${actor} at ${iso(now)} (${why})`);
  await cancelRequestApprovals(services, { agentId: grant.agentId, grantId: grant.id }, `the window ${grant.id} it was asked in was closed by ${actor} at ${iso(now)} (${why})`, actor);
  if (revoked.executionArn && services.workflows) {
    await services.workflows.stop(revoked.executionArn, `window revoked: ${why}`).catch((error: unknown) => {
      // The grant is revoked in DynamoDB already; the gateway refuses on that alone.
      logger.warn('could not stop the window workflow', { grant: grant.id, error: error instanceof Error ? error.message : String(error) });
    });
  }
  return true;
}

/** pending -> a final status (never overrides a decision already taken). `reason` is kept when cancelling. */
export async function settleApproval(services: Services, approvalId: string, status: 'denied' | 'expired' | 'cancelled', actor: string, reason?: string): Promise<Approval | undefined> {
  const now = services.now();
  const cancelled = status === 'cancelled' && reason ? { cancelledAt: now, cancelReason: reason } : {};
  const settled = await services.state.updateApproval(approvalId, { status: ['pending'] }, { status, decidedAt: now, ...cancelled });
  if (!settled) return undefined;
  await recordEventAfter(services.records, { time: now, type: `approval.${status}`, agent: settled.agentName, agentId: settled.agentId, connection: settled.connection, subject: settled.id, actor, ...(reason ? { detail: { reason } } : {}) });
  if (status === 'cancelled' && settled.executionArn && services.workflows) {
    await services.workflows.stop(settled.executionArn, 'approval cancelled').catch(() => undefined);
  }
  return settled;
}

/** What cancelling an approval needs: the gate has these too, without the rest of Services. */
export type ApprovalCancelServices = Pick<Services, 'state' | 'records' | 'now'> & { workflows?: Workflows };

/**
 * pending or approved-but-unused -> cancelled, with the reason an approver reads.
 * Conditional on the status, like consuming (approved -> consumed): of a
 * concurrent cancel and consume exactly one wins. Undefined when it was no
 * longer pending/approved (already used, decided against, or cancelled).
 */
export async function cancelApproval(services: ApprovalCancelServices, approvalId: string, reason: string, actor: string): Promise<Approval | undefined> {
  const now = services.now();
  const cancelled = await services.state.updateApproval(approvalId, { status: ['pending', 'approved'] }, { status: 'cancelled', cancelledAt: now, cancelReason: reason });
  if (!cancelled) return undefined;
  await recordEventAfter(services.records, {
    time: now,
    type: 'approval.cancelled',
    agent: cancelled.agentName,
    agentId: cancelled.agentId,
    connection: cancelled.connection,
    subject: cancelled.id,
    actor,
    detail: { reason },
  });
  // A workflow still waiting on approvers ends now; a late click or the timeout finds it cancelled and changes nothing.
  if (cancelled.executionArn && services.workflows) {
    await services.workflows.stop(cancelled.executionArn, 'approval cancelled').catch((error: unknown) => {
      logger.warn('could not stop the approval workflow', { approval: cancelled.id, error: error instanceof Error ? error.message : String(error) });
    });
  }
  return cancelled;
}

/**
 * The kill switch for held requests: every pending or approved-but-unused
 * request approval of an agent (optionally only those asked in one window) or
 * of a connection is cancelled. The list comes from an index that can lag a
 * just-created approval; the gate's window binding covers that moment.
 */
export async function cancelRequestApprovals(
  services: ApprovalCancelServices,
  scope: { agentId: string; grantId?: string } | { connection: string },
  reason: string,
  actor: string,
): Promise<number> {
  const approvals = await services.state.listApprovals('agentId' in scope ? { agentId: scope.agentId } : { connection: scope.connection });
  let cancelled = 0;
  for (const approval of approvals) {
    if (approval.kind !== 'request' || (approval.status !== 'pending' && approval.status !== 'approved')) continue;
    if ('grantId' in scope && scope.grantId !== undefined && approval.grantId !== scope.grantId) continue;
    if (await cancelApproval(services, approval.id, reason, actor)) cancelled++;
  }
  return cancelled;
}

/** Why a cancelled approval cannot be decided or used, in one sentence. */
export function cancelledMessage(approval: Approval): string {
  const when = approval.cancelledAt ? ` at ${iso(approval.cancelledAt)}` : '';
  return `this request was cancelled${when}${approval.cancelReason ? `: ${approval.cancelReason}` : ''}`;
}

export type DecisionOutcome = { status: 'recorded' | 'approved' | 'denied'; approval: Approval };

/**
 * One approver's decision. Conditional on the approval still pending and on
 * the number of decisions seen (so two approvers deciding at once cannot both
 * count as "the last one"). Any deny denies; minApprovals approvals approve.
 */
export async function decide(services: Services, approvalId: string, approver: string, decision: 'approve' | 'deny'): Promise<DecisionOutcome> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const approval = await services.state.getApproval(approvalId);
    if (!approval) throw new AirlockError(404, 'approval_not_found', 'this approval does not exist');
    const now = services.now();
    if (approval.status === 'cancelled') throw new AirlockError(409, 'approval_cancelled', `${cancelledMessage(approval)}; your decision changes nothing and was not recorded`);
    if (approval.status !== 'pending') throw new AirlockError(409, 'already_decided', `this request is already ${approval.status}; nothing was changed`);
    if (approval.expiresAt <= now) throw new AirlockError(410, 'approval_expired', 'this approval has expired; nothing was changed');
    if (!approval.approvers.includes(approver)) throw new AirlockError(403, 'not_an_approver', 'you are not an approver for this request');
    const previous = approval.decisions.find((entry) => entry.approver === approver);
    if (previous) throw new AirlockError(409, 'already_decided', `you already chose to ${previous.decision} this at ${iso(previous.at)}; a decision is made once`);

    // A held request lives only as long as the window it was asked in (even if a sweep was missed).
    if (approval.kind === 'request' && approval.grantId) {
      const grant = await services.state.getGrant(approval.grantId);
      if (!grant || grant.status !== 'active' || (grant.expiresAt ?? 0) <= now) {
        const ended = !grant ? 'no longer exists' : grant.status === 'active' ? `ended at ${iso(grant.expiresAt ?? now)}` : `is ${grant.status}${grant.endReason ? ` (${grant.endReason})` : ''}`;
        const cancelled = await cancelApproval(services, approval.id, `the window ${approval.grantId} it was asked in ${ended}`, 'approval page');
        if (!cancelled) continue; // it changed meanwhile: re-read
        throw new AirlockError(409, 'approval_cancelled', `${cancelledMessage(cancelled)}; your decision changes nothing and was not recorded`);
      }
    }
    const decisions = [...approval.decisions, { approver, decision, at: now }];
    const approved = decision === 'approve' && approvalsCount(decisions) >= approval.minApprovals;
    const status = decision === 'deny' ? 'denied' : approved ? 'approved' : 'pending';
    await recordEvent(services.records, { time: now, type: `approval.${decision === 'approve' ? 'approve' : 'deny'}`, agent: approval.agentName, agentId: approval.agentId, connection: approval.connection, subject: approval.id, actor: approver, detail: { result: status } });
    const updated = await services.state.updateApproval(
      approvalId,
      { status: ['pending'], decisionsCount: approval.decisions.length },
      {
        decisions,
        status,
        ...(status !== 'pending' ? { decidedAt: now } : {}),
        // An approved request may be used once, within the approval timeout from now.
        ...(status === 'approved' ? { expiresAt: now + approval.timeoutSeconds * 1000 } : {}),
      },
    );
    if (!updated) continue; // someone decided at the same moment: re-read and check again
    if (status !== 'pending' && updated.taskToken && services.workflows) {
      if (status === 'approved') await services.workflows.sendSuccess(updated.taskToken, { decision: 'approved', by: decisions.map((entry) => entry.approver) });
      else await services.workflows.sendFailure(updated.taskToken, 'Airlock.Denied', `denied by ${approver}`);
    }
    return { status: status === 'pending' ? 'recorded' : status, approval: updated };
  }
  throw new AirlockError(409, 'busy', 'other approvers are deciding right now; reload and try again');
}

/** Emails every approver not yet emailed, each with their own signed link. */
export async function notifyApprovers(services: Services, approval: Approval): Promise<void> {
  if (!services.notifier) throw new Error('no notifier configured');
  for (const approver of approval.approvers) {
    if (approval.notified.includes(approver)) continue;
    const link = await services.links.link(services.config.publicUrl, approval, approver);
    const email = approvalEmail(approval, approver, link);
    await services.notifier.toApprover(approver, email.subject, email.text, { kind: 'approval', approvalId: approval.id, connection: approval.connection });
    const notified = [...approval.notified, approver];
    await services.state.updateApproval(approval.id, { status: ['pending', 'approved', 'denied'] }, { notified });
    approval = { ...approval, notified };
    await recordEventAfter(services.records, { time: services.now(), type: 'approval.notified', agent: approval.agentName, agentId: approval.agentId, connection: approval.connection, subject: approval.id, actor: 'workflow', detail: { approver } });
  }
}

async function notify(services: Services, type: string, subject: string, text: string, grant: Grant): Promise<void> {
  if (!services.notifier) return;
  await services.notifier.event(type, subject, text, { connection: grant.connection, agent: grant.agentName }).catch((error: unknown) => {
    logger.warn('notification not sent', { type, error: error instanceof Error ? error.message : String(error) });
  });
}
