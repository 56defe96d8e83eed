// What an agent is shown of its own windows and approvals (REST and MCP alike).
import type { Approval, Grant } from './model.ts';
import { approvalsCount } from './approvals.ts';

/** What an agent sees of a window; status says "expired" as soon as the clock says so. */
export function grantView(grant: Grant, now: number) {
  const status = grant.status === 'active' && (grant.expiresAt ?? 0) <= now ? 'expired' : grant.status;
  return {
    id: grant.id,
    connection: grant.connection,
    status,
    reason: grant.reason,
    ...(grant.ticket ? { ticket: grant.ticket } : {}),
    duration: grant.durationSeconds,
    requestedAt: new Date(grant.requestedAt).toISOString(),
    ...(grant.activatedAt ? { activatedAt: new Date(grant.activatedAt).toISOString() } : {}),
    ...(grant.expiresAt ? { expiresAt: new Date(grant.expiresAt).toISOString() } : {}),
    ...(grant.approvalId ? { approvalId: grant.approvalId } : {}),
    ...(grant.endReason ? { endReason: grant.endReason } : {}),
  };
}

/** What an agent sees of one of its approvals; status says "expired" as soon as the clock says so. */
export function approvalView(approval: Approval, now: number) {
  const status = approval.status === 'pending' && approval.expiresAt <= now ? 'expired' : approval.status;
  return {
    id: approval.id,
    kind: approval.kind,
    status,
    summary: approval.summary,
    connection: approval.connection,
    approvals: approvalsCount(approval.decisions),
    minApprovals: approval.minApprovals,
    expiresAt: new Date(approval.expiresAt).toISOString(),
    ...(approval.grantId ? { window: approval.grantId } : {}),
    ...(approval.status === 'cancelled' && approval.cancelReason ? { cancelReason: approval.cancelReason } : {}),
    ...(approval.cancelledAt ? { cancelledAt: new Date(approval.cancelledAt).toISOString() } : {}),
  };
}
