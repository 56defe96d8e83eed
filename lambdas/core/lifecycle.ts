// Every state change of a window and of an approval, in one place: the agent's
// access requests, the workflow tasks, the admin's kill switch, the approval
// page and the gateway's approval gate call these, and only these change a
// grant's or an approval's status. Each is a conditional write (it only happens
// from the right state) plus an audit event: before the change when the change
// opens access, after it when it closes access (closing never waits for the
// recorder). Only the ports are used here, so all of it runs against the
// in-memory ports in unit tests.
import type { Agent, Approval, Connection, Grant, Plan } from './model.ts';
import type { Log, Notifier, RecordStore, StateStore, Workflows } from './ports.ts';
import { approvalEmail, approvalsCount } from './approvals.ts';
import { formatDuration } from './durations.ts';
import { recordEvent, recordEventAfter } from './events.ts';
import { newId } from './ids.ts';
import { AirlockError } from './status.ts';
import { windowDurationSeconds } from './windows.ts';
import { errorText } from './errors.ts';
import { redactCommandLine } from './redaction.ts';
import type { WindowActivity } from './preview.ts';

/** The ports a transition may touch. Workflows and the notifier are absent where they are not configured. */
export interface LifecycleDeps {
  state: StateStore;
  records: RecordStore;
  log: Log;
  now: () => number;
  workflows?: Workflows;
  notifier?: Notifier;
}

function iso(time: number): string {
  return new Date(time).toISOString();
}

// ---------------------------------------------------------------- approvals

/**
 * The one way an approval is made, for a window or for one held request. Who
 * decides, how many, and for how long come from the connection's policy; the
 * window is the grant it activates (window) or was asked in (request), and
 * the agent's reason and ticket come with it.
 */
export function newApproval(input: {
  kind: Approval['kind'];
  agent: Pick<Agent, 'id' | 'name'>;
  connection: Connection;
  grant: Grant;
  /** What is asked for, in words an approver reads. */
  summary: string;
  /** The policy rule that asked for approval. */
  rule: string;
  now: number;
  fingerprint?: string;
  request?: Approval['request'];
  plan?: Approval['plan'];
}): Approval {
  const { agent, connection, grant, now } = input;
  const timeoutSeconds = connection.policy.approvalTimeoutSeconds;
  return {
    id: newId('apr'),
    kind: input.kind,
    status: 'pending',
    agentId: agent.id,
    agentName: agent.name,
    connection: connection.name,
    summary: input.summary,
    reason: grant.reason,
    ...(grant.ticket ? { ticket: grant.ticket } : {}),
    rule: input.rule,
    approvers: connection.policy.approvers,
    minApprovals: connection.policy.minApprovals,
    decisions: [],
    notified: [],
    createdAt: now,
    expiresAt: now + timeoutSeconds * 1000,
    timeoutSeconds,
    ...(input.fingerprint ? { fingerprint: input.fingerprint } : {}),
    ...(input.request ? { request: input.request } : {}),
    ...(input.plan ? { plan: input.plan } : {}),
    policyVersion: connection.policyVersion,
    grantId: grant.id,
  };
}

/**
 * A held request: the approval is recorded (before anything else), stored,
 * bound to the request's fingerprint, and its workflow started. When the same
 * request was held at the same moment, the other approval is returned and
 * this one cancelled. A workflow that cannot start cancels it too: 503.
 */
export async function holdRequest(
  deps: LifecycleDeps & { workflows: Workflows },
  approval: Approval & { fingerprint: string },
  previousApprovalId: string | undefined,
  requestId: string,
): Promise<Approval> {
  const { state } = deps;
  await recordEvent(deps, {
    time: deps.now(),
    type: 'approval.requested',
    agent: approval.agentName,
    agentId: approval.agentId,
    connection: approval.connection,
    subject: approval.id,
    actor: approval.agentName,
    detail: { request: requestId, rule: approval.rule },
  });
  await state.createApproval(approval);
  if (!(await state.bindFingerprint(approval.fingerprint, approval.id, previousApprovalId, approval.expiresAt))) {
    // Someone else held the same request at the same moment: wait for theirs.
    const winner = await state.getApprovalIdForFingerprint(approval.fingerprint);
    const existing = winner ? await state.getApproval(winner) : undefined;
    await cancelApproval(deps, approval.id, `the same request was held at the same moment as approval ${winner ?? '(unknown)'}`, 'gateway');
    if (existing) return existing;
    throw new AirlockError(409, 'approval_conflict', 'another approval for this exact request was just created; retry');
  }
  try {
    const executionArn = await deps.workflows.startApproval(approval.id);
    await state.updateApproval(approval.id, { status: ['pending', 'approved', 'denied'] }, { executionArn });
  } catch {
    await cancelApproval(deps, approval.id, 'the approval workflow could not be started', 'gateway');
    throw new AirlockError(503, 'approvals_unavailable', 'this request needs approval, and the approval workflow cannot be started right now; nothing was forwarded');
  }
  return approval;
}

/**
 * approved -> consumed, by one request. Conditional: of two requests (or a
 * request and a cancel) only one moves it. Undefined when it was not approved
 * any more. The event is recorded before the request is forwarded (503 if not).
 */
export async function consumeApproval(deps: LifecycleDeps, approval: Approval, requestId: string, actor: string): Promise<Approval | undefined> {
  const consumed = await deps.state.updateApproval(approval.id, { status: ['approved'] }, { status: 'consumed', consumedAt: deps.now(), consumedBy: requestId });
  if (!consumed) return undefined;
  await recordEvent(deps, {
    time: deps.now(),
    type: 'approval.consumed',
    agent: consumed.agentName,
    agentId: consumed.agentId,
    connection: consumed.connection,
    subject: consumed.id,
    actor,
    detail: { request: requestId },
  });
  return consumed;
}

/** pending -> a final status (never overrides a decision already taken). `reason` is kept when cancelling. */
export async function settleApproval(deps: LifecycleDeps, approvalId: string, status: 'denied' | 'expired' | 'cancelled', actor: string, reason?: string): Promise<Approval | undefined> {
  const now = deps.now();
  const cancelled = status === 'cancelled' && reason ? { cancelledAt: now, cancelReason: reason } : {};
  const settled = await deps.state.updateApproval(approvalId, { status: ['pending'] }, { status, decidedAt: now, ...cancelled });
  if (!settled) return undefined;
  await recordEventAfter(deps, {
    time: now,
    type: `approval.${status}`,
    agent: settled.agentName,
    agentId: settled.agentId,
    connection: settled.connection,
    subject: settled.id,
    actor,
    ...(reason ? { detail: { reason } } : {}),
  });
  if (status === 'cancelled' && settled.executionArn && deps.workflows) {
    await deps.workflows.stop(settled.executionArn, 'approval cancelled').catch(() => undefined);
  }
  return settled;
}

/**
 * pending or approved-but-unused -> cancelled, with the reason an approver reads.
 * Conditional on the status, like consuming (approved -> consumed): of a
 * concurrent cancel and consume exactly one wins. Undefined when it was no
 * longer pending/approved (already used, decided against, or cancelled).
 */
export async function cancelApproval(deps: LifecycleDeps, approvalId: string, reason: string, actor: string): Promise<Approval | undefined> {
  const now = deps.now();
  const cancelled = await deps.state.updateApproval(approvalId, { status: ['pending', 'approved'] }, { status: 'cancelled', cancelledAt: now, cancelReason: reason });
  if (!cancelled) return undefined;
  await recordEventAfter(deps, {
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
  if (cancelled.executionArn && deps.workflows) {
    await deps.workflows.stop(cancelled.executionArn, 'approval cancelled').catch((error: unknown) => {
      deps.log.warn('could not stop the approval workflow', { approval: cancelled.id, error: errorText(error) });
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
export async function cancelRequestApprovals(deps: LifecycleDeps, scope: { agentId: string; grantId?: string } | { connection: string }, reason: string, actor: string): Promise<number> {
  const approvals = await deps.state.listApprovals('agentId' in scope ? { agentId: scope.agentId } : { connection: scope.connection });
  let cancelled = 0;
  for (const approval of approvals) {
    if (approval.kind === 'window' || (approval.status !== 'pending' && approval.status !== 'approved')) continue;
    if ('grantId' in scope && scope.grantId !== undefined && approval.grantId !== scope.grantId) continue;
    if (await cancelApproval(deps, approval.id, reason, actor)) cancelled++;
  }
  // Plans die with them: one being applied has spent its approval, so it is cancelled itself.
  await cancelPlans(deps, scope, reason, actor);
  return cancelled;
}

// ---------------------------------------------------------------- plans

/** `airlock plan`: a plan opens in the agent's open window, recorded first. */
export async function openPlan(deps: LifecycleDeps, input: { agent: Agent; connection: Connection; grant: Grant; reason: string; ticket?: string; command: string }): Promise<Plan> {
  const now = deps.now();
  const plan: Plan = {
    id: newId('pln'),
    agentId: input.agent.id,
    agentName: input.agent.name,
    connection: input.connection.name,
    grantId: input.grant.id,
    status: 'open',
    reason: input.reason,
    ...(input.ticket ? { ticket: input.ticket } : {}),
    // Shown to approvers: literal values and credential-like options are redacted first.
    command: redactCommandLine(input.command),
    changes: [],
    createdAt: now,
    policyVersion: input.connection.policyVersion,
  };
  await recordEvent(deps, {
    time: now,
    type: 'plan.opened',
    agent: plan.agentName,
    agentId: plan.agentId,
    connection: plan.connection,
    subject: plan.id,
    actor: plan.agentName,
    detail: { window: plan.grantId },
  });
  await deps.state.createPlan(plan);
  return plan;
}

/**
 * The command ran: the plan closes, and its changes — copied onto the
 * approval, so the page shows exactly what is bound — go to the approvers as
 * one approval of kind 'plan' (the approval workflow emails them). A plan
 * without changes closes with nothing to approve.
 */
export async function closePlan(
  deps: LifecycleDeps & { workflows: Workflows },
  plan: Plan,
  connection: Connection,
  grant: Grant,
  /** What the agent has done in the window so far, for the approver (read by the caller; absent if it could not be). */
  window?: WindowActivity,
): Promise<{ plan: Plan; approval: Approval | undefined }> {
  const now = deps.now();
  if (plan.changes.length === 0) {
    const closed = await deps.state.updatePlan(plan.id, ['open'], { status: 'closed', closedAt: now });
    if (!closed) throw planNotOpen(plan);
    await recordEventAfter(deps, {
      time: now,
      type: 'plan.closed',
      agent: plan.agentName,
      agentId: plan.agentId,
      connection: plan.connection,
      subject: plan.id,
      actor: plan.agentName,
      detail: { changes: 0 },
    });
    return { plan: closed, approval: undefined };
  }
  const approval = newApproval({
    kind: 'plan',
    agent: { id: plan.agentId, name: plan.agentName },
    connection,
    grant: { ...grant, reason: plan.reason, ...(plan.ticket ? { ticket: plan.ticket } : {}) },
    summary: `plan ${plan.id}: ${plan.changes.length} change${plan.changes.length === 1 ? '' : 's'} from \`${plan.command}\``,
    rule: 'plan: every change it makes, approved at once',
    now,
    plan: { id: plan.id, command: plan.command, changes: plan.changes, ...(window ? { window } : {}) },
  });
  await recordEvent(deps, {
    time: now,
    type: 'approval.requested',
    agent: plan.agentName,
    agentId: plan.agentId,
    connection: plan.connection,
    subject: approval.id,
    actor: plan.agentName,
    detail: { plan: plan.id, changes: plan.changes.length },
  });
  await deps.state.createApproval(approval);
  // Closing is conditional: a change that arrives after this is refused, never silently outside the approval.
  const closed = await deps.state.updatePlan(plan.id, ['open'], { status: 'closed', closedAt: now, approvalId: approval.id });
  if (!closed) {
    await cancelApproval(deps, approval.id, `plan ${plan.id} was no longer open`, 'gateway');
    throw planNotOpen(plan);
  }
  try {
    const executionArn = await deps.workflows.startApproval(approval.id);
    await deps.state.updateApproval(approval.id, { status: ['pending', 'approved', 'denied'] }, { executionArn });
  } catch {
    await cancelApproval(deps, approval.id, 'the approval workflow could not be started', 'gateway');
    await deps.state.updatePlan(plan.id, ['closed'], { status: 'cancelled', cancelledAt: deps.now(), cancelReason: 'the approval workflow could not be started' });
    throw new AirlockError(503, 'approvals_unavailable', 'the plan needs approval, and the approval workflow cannot be started right now; run `airlock plan` again');
  }
  return { plan: closed, approval };
}

/**
 * `airlock apply`: the plan's approval is spent (approved -> consumed, once),
 * and the plan applies until the approval's use deadline. A second apply finds
 * it consumed and the plan no longer closed.
 */
export async function startApply(deps: LifecycleDeps, plan: Plan): Promise<Plan> {
  const now = deps.now();
  if (plan.status !== 'closed' || !plan.approvalId)
    throw new AirlockError(
      409,
      'plan_not_applicable',
      `plan ${plan.id} is ${plan.status === 'closed' ? 'closed without changes' : plan.status}; it cannot be applied${plan.status === 'applying' ? ' twice' : ''}${plan.cancelReason ? ` (${plan.cancelReason})` : ''}`,
    );
  const approval = await deps.state.getApproval(plan.approvalId);
  if (!approval || approval.status !== 'approved' || approval.expiresAt <= now) {
    const status = approval?.status === 'approved' || approval?.status === 'pending' ? 'expired' : (approval?.status ?? 'missing');
    throw new AirlockError(
      approval?.status === 'pending' && approval.expiresAt > now ? 409 : 403,
      'plan_not_approved',
      `plan ${plan.id} cannot be applied: its approval ${plan.approvalId} is ${approval?.status === 'pending' && approval.expiresAt > now ? 'still pending' : status}`,
    );
  }
  const consumed = await consumeApproval(deps, approval, plan.id, plan.agentName);
  if (!consumed) throw new AirlockError(409, 'plan_not_applicable', `plan ${plan.id} cannot be applied: its approval ${approval.id} was just used or cancelled`);
  const applying = await deps.state.updatePlan(plan.id, ['closed'], { status: 'applying', appliedAt: now, expiresAt: approval.expiresAt });
  if (!applying) throw new AirlockError(409, 'plan_not_applicable', `plan ${plan.id} was cancelled or applied at the same moment`);
  return applying;
}

/** The kill switch and the window's end for plans: open, closed and applying plans are cancelled. */
export async function cancelPlans(deps: LifecycleDeps, scope: { agentId: string; grantId?: string } | { connection: string }, reason: string, actor: string): Promise<number> {
  const plans = await deps.state.listPlans('agentId' in scope ? { agentId: scope.agentId } : { connection: scope.connection });
  let cancelled = 0;
  for (const plan of plans) {
    if ('grantId' in scope && scope.grantId !== undefined && plan.grantId !== scope.grantId) continue;
    const now = deps.now();
    const done = await deps.state.updatePlan(plan.id, ['open', 'closed', 'applying'], { status: 'cancelled', cancelledAt: now, cancelReason: reason });
    if (!done) continue;
    cancelled++;
    await recordEventAfter(deps, { time: now, type: 'plan.cancelled', agent: plan.agentName, agentId: plan.agentId, connection: plan.connection, subject: plan.id, actor, detail: { reason } });
  }
  return cancelled;
}

function planNotOpen(plan: Plan): AirlockError {
  return new AirlockError(409, 'plan_not_open', `plan ${plan.id} is no longer open`);
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
export async function decide(deps: LifecycleDeps, approvalId: string, approver: string, decision: 'approve' | 'deny'): Promise<DecisionOutcome> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const approval = await deps.state.getApproval(approvalId);
    if (!approval) throw new AirlockError(404, 'approval_not_found', 'this approval does not exist');
    const now = deps.now();
    if (approval.status === 'cancelled') throw new AirlockError(409, 'approval_cancelled', `${cancelledMessage(approval)}; your decision changes nothing and was not recorded`);
    if (approval.status !== 'pending') throw new AirlockError(409, 'already_decided', `this request is already ${approval.status}; nothing was changed`);
    if (approval.expiresAt <= now) throw new AirlockError(410, 'approval_expired', 'this approval has expired; nothing was changed');
    if (!approval.approvers.includes(approver)) throw new AirlockError(403, 'not_an_approver', 'you are not an approver for this request');
    const previous = approval.decisions.find((entry) => entry.approver === approver);
    if (previous) throw new AirlockError(409, 'already_decided', `you already chose to ${previous.decision} this at ${iso(previous.at)}; a decision is made once`);

    // A held request or a plan lives only as long as the window it was asked in (even if a sweep was missed).
    if (approval.kind !== 'window' && approval.grantId) {
      const grant = await deps.state.getGrant(approval.grantId);
      if (!grant || grant.status !== 'active' || (grant.expiresAt ?? 0) <= now) {
        const ended = !grant ? 'no longer exists' : grant.status === 'active' ? `ended at ${iso(grant.expiresAt ?? now)}` : `is ${grant.status}${grant.endReason ? ` (${grant.endReason})` : ''}`;
        const cancelled = await cancelApproval(deps, approval.id, `the window ${approval.grantId} it was asked in ${ended}`, 'approval page');
        if (!cancelled) continue; // it changed meanwhile: re-read
        throw new AirlockError(409, 'approval_cancelled', `${cancelledMessage(cancelled)}; your decision changes nothing and was not recorded`);
      }
    }
    const decisions = [...approval.decisions, { approver, decision, at: now }];
    const approved = decision === 'approve' && approvalsCount(decisions) >= approval.minApprovals;
    const status = decision === 'deny' ? 'denied' : approved ? 'approved' : 'pending';
    await recordEvent(deps, {
      time: now,
      type: `approval.${decision === 'approve' ? 'approve' : 'deny'}`,
      agent: approval.agentName,
      agentId: approval.agentId,
      connection: approval.connection,
      subject: approval.id,
      actor: approver,
      detail: { result: status },
    });
    const updated = await deps.state.updateApproval(
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
    if (status !== 'pending' && updated.taskToken && deps.workflows) {
      if (status === 'approved') await deps.workflows.sendSuccess(updated.taskToken, { decision: 'approved', by: decisions.map((entry) => entry.approver) });
      else await deps.workflows.sendFailure(updated.taskToken, 'Airlock.Denied', `denied by ${approver}`);
    }
    return { status: status === 'pending' ? 'recorded' : status, approval: updated };
  }
  throw new AirlockError(409, 'busy', 'other approvers are deciding right now; reload and try again');
}

/**
 * The approval workflow waits on people: the task token is stored first (only
 * while pending), so a decision that lands after this can resume the workflow,
 * and the approvers are emailed; a decision that landed before is replayed here.
 */
export async function awaitDecision(deps: LifecycleDeps, approvalId: string, taskToken: string, linkFor: ApprovalLinkFor): Promise<void> {
  const waiting = await deps.state.updateApproval(approvalId, { status: ['pending'] }, { taskToken });
  if (waiting) {
    await notifyApprovers(deps, waiting, linkFor);
    return;
  }
  const approval = await deps.state.getApproval(approvalId);
  if (!deps.workflows) throw new Error('workflows not configured');
  if (approval?.status === 'approved') await deps.workflows.sendSuccess(taskToken, { decision: 'approved' });
  else await deps.workflows.sendFailure(taskToken, 'Airlock.Denied', `approval is ${approval?.status ?? 'gone'}`);
}

/** One approver's signed link to one approval. */
export type ApprovalLinkFor = (approval: Approval, approver: string) => Promise<string>;

/** Emails every approver not yet emailed, each with their own signed link. */
export async function notifyApprovers(deps: LifecycleDeps, approval: Approval, linkFor: ApprovalLinkFor): Promise<void> {
  if (!deps.notifier) throw new Error('no notifier configured');
  for (const approver of approval.approvers) {
    if (approval.notified.includes(approver)) continue;
    const email = approvalEmail(approval, approver, await linkFor(approval, approver));
    await deps.notifier.toApprover(approver, email.subject, email.text, { kind: 'approval', approvalId: approval.id, connection: approval.connection });
    const notified = [...approval.notified, approver];
    await deps.state.updateApproval(approval.id, { status: ['pending', 'approved', 'denied'] }, { notified });
    approval = { ...approval, notified };
    await recordEventAfter(deps, {
      time: deps.now(),
      type: 'approval.notified',
      agent: approval.agentName,
      agentId: approval.agentId,
      connection: approval.connection,
      subject: approval.id,
      actor: 'workflow',
      detail: { approver },
    });
  }
}

// ------------------------------------------------------------------ windows

/**
 * An agent asks for a window. The request is recorded first; with
 * `windowApproval: none` the window is active at once; with `required` an
 * approval is created and the access-window workflow waits for it. Either way
 * the workflow (when configured) ends the window at expiresAt.
 */
export async function requestWindow(deps: LifecycleDeps, agent: Agent, connection: Connection, input: { duration: string; reason: string; ticket?: string }): Promise<Grant> {
  const { state } = deps;
  const now = deps.now();
  const policy = connection.policy;
  const durationSeconds = windowDurationSeconds(input.duration, policy);
  const grant: Grant = {
    id: newId('gr'),
    agentId: agent.id,
    agentName: agent.name,
    connection: connection.name,
    status: 'pending',
    reason: input.reason,
    ...(input.ticket ? { ticket: input.ticket } : {}),
    durationSeconds,
    requestedAt: now,
    policyVersion: connection.policyVersion,
  };
  await recordEvent(deps, {
    time: now,
    type: 'window.requested',
    agent: agent.name,
    agentId: agent.id,
    connection: connection.name,
    subject: grant.id,
    actor: agent.name,
    detail: { duration: input.duration, reason: input.reason, ...(input.ticket ? { ticket: input.ticket } : {}) },
  });
  let pending = grant;
  if (policy.windowApproval === 'required') {
    if (!deps.workflows || !deps.notifier) {
      throw new AirlockError(501, 'approval_unavailable', 'this connection requires window approval, and approvals are not configured on this gateway');
    }
    const summary = `access window on ${grant.connection} for ${formatDuration(grant.durationSeconds)}`;
    const approval = newApproval({ kind: 'window', agent, connection, grant, summary, rule: 'windowApproval: required', now });
    await state.createApproval(approval);
    pending = { ...grant, approvalId: approval.id };
  }
  await state.createGrant(pending);
  let current: Grant = pending;
  if (policy.windowApproval === 'none') current = (await activateWindow(deps, grant.id, 'policy (windowApproval: none)')) ?? pending;
  if (!deps.workflows) return current;
  try {
    const executionArn = await deps.workflows.startWindow(grant.id);
    return (await state.transitionGrant(grant.id, ['pending', 'active'], { executionArn })) ?? current;
  } catch (error) {
    if (current.status === 'active') return current; // it still ends at expiresAt: the gateway checks the clock on every request
    await endPendingWindow(deps, grant.id, 'failed');
    throw new AirlockError(503, 'workflows_unavailable', `the approval workflow could not be started, so the window was not opened; retry shortly (${causeName(error)})`);
  }
}

/** pending -> active, expiresAt = now + duration. Undefined when the grant is no longer pending. */
export async function activateWindow(deps: LifecycleDeps, grantId: string, actor: string): Promise<Grant | undefined> {
  const grant = await deps.state.getGrant(grantId);
  if (!grant || grant.status !== 'pending') return undefined;
  const now = deps.now();
  const expiresAt = now + grant.durationSeconds * 1000;
  await recordEvent(deps, {
    time: now,
    type: 'window.activated',
    agent: grant.agentName,
    agentId: grant.agentId,
    connection: grant.connection,
    subject: grant.id,
    actor,
    detail: { expiresAt: iso(expiresAt) },
  });
  return deps.state.transitionGrant(grant.id, ['pending'], { status: 'active', activatedAt: now, expiresAt });
}

/** active -> expired (the gateway already refuses past expiresAt; this makes it visible and notifies). */
export async function expireWindow(deps: LifecycleDeps, grantId: string): Promise<void> {
  const now = deps.now();
  const grant = await deps.state.transitionGrant(grantId, ['active'], { status: 'expired', endedAt: now, endReason: 'window ended' });
  if (!grant) return;
  await recordEventAfter(deps, { time: now, type: 'window.expired', agent: grant.agentName, agentId: grant.agentId, connection: grant.connection, subject: grant.id, actor: 'workflow' });
  await cancelRequestApprovals(deps, { agentId: grant.agentId, grantId: grant.id }, `the window ${grant.id} it was asked in ended at ${iso(now)}`, 'workflow');
  await notify(
    deps,
    'window.expired',
    `[Airlock] Window of ${grant.agentName} on ${grant.connection} ended`,
    `The access window ${grant.id} of agent ${grant.agentName} on ${grant.connection} ended at ${iso(now)}.\n`,
    grant,
  );
}

/** pending -> denied (denied, approval timed out, or the workflow failed), and its approval with it. */
export async function endPendingWindow(deps: LifecycleDeps, grantId: string, outcome: 'denied' | 'timed-out' | 'failed'): Promise<void> {
  const now = deps.now();
  const reasons = { denied: 'approval denied', 'timed-out': 'approval timed out', failed: 'workflow failed (closed)' };
  const grant = await deps.state.transitionGrant(grantId, ['pending'], { status: 'denied', endedAt: now, endReason: reasons[outcome] });
  if (!grant) return;
  if (grant.approvalId) await settleApproval(deps, grant.approvalId, outcome === 'denied' ? 'denied' : 'expired', 'workflow');
  await recordEventAfter(deps, { time: now, type: `window.${outcome}`, agent: grant.agentName, agentId: grant.agentId, connection: grant.connection, subject: grant.id, actor: 'workflow' });
  await notify(
    deps,
    `window.${outcome}`,
    `[Airlock] Window of ${grant.agentName} on ${grant.connection}: ${reasons[outcome]}`,
    `The access request ${grant.id} of agent ${grant.agentName} on ${grant.connection} ended: ${reasons[outcome]}.\n`,
    grant,
  );
}

/** The access-window workflow's next step (state-machines/access-window.asl.json branches on `phase`). */
export type WindowPhase = { phase: 'ended' | 'activate' | 'expire' } | { phase: 'active'; expiresAt: string } | { phase: 'approve'; approvalId: string; approvalTimeoutSeconds: number };

/**
 * Where the access-window workflow stands with a window (a fresh start and a
 * resumed workflow both begin here). A pending window whose approval was
 * denied or ran out ends now.
 */
export async function windowPhase(deps: LifecycleDeps, grantId: string): Promise<WindowPhase> {
  const now = deps.now();
  const grant = await deps.state.getGrant(grantId);
  if (!grant) return { phase: 'ended' };
  if (grant.status === 'active') {
    return grant.expiresAt! > now ? { phase: 'active', expiresAt: iso(grant.expiresAt!) } : { phase: 'expire' };
  }
  if (grant.status !== 'pending') return { phase: 'ended' };
  if (!grant.approvalId) return { phase: 'activate' };
  const approval = await deps.state.getApproval(grant.approvalId);
  if (approval?.status === 'approved') return { phase: 'activate' };
  if (approval?.status === 'pending' && approval.expiresAt > now) {
    return { phase: 'approve', approvalId: approval.id, approvalTimeoutSeconds: secondsUntil(approval.expiresAt, now) };
  }
  await endPendingWindow(deps, grant.id, approval?.status === 'denied' ? 'denied' : 'timed-out');
  return { phase: 'ended' };
}

/** Whole seconds until `time`, at least 1 (a workflow's Wait). */
export function secondsUntil(time: number, now: number): number {
  return Math.max(1, Math.ceil((time - now) / 1000));
}

/** Kill switch for one window: pending/active -> revoked, its workflow stopped, its approval and held requests cancelled. */
export async function revokeWindow(deps: LifecycleDeps, grant: Grant, actor: string, why: string): Promise<boolean> {
  const now = deps.now();
  const revoked = await deps.state.transitionGrant(grant.id, ['pending', 'active'], { status: 'revoked', endedAt: now, endReason: why });
  if (!revoked) return false;
  await recordEventAfter(deps, { time: now, type: 'window.revoked', agent: grant.agentName, agentId: grant.agentId, connection: grant.connection, subject: grant.id, actor, detail: { why } });
  if (revoked.approvalId) await settleApproval(deps, revoked.approvalId, 'cancelled', actor, `the window ${grant.id} was closed by ${actor} at ${iso(now)} (${why})`);
  await cancelRequestApprovals(deps, { agentId: grant.agentId, grantId: grant.id }, `the window ${grant.id} it was asked in was closed by ${actor} at ${iso(now)} (${why})`, actor);
  if (revoked.executionArn && deps.workflows) {
    await deps.workflows.stop(revoked.executionArn, `window revoked: ${why}`).catch((error: unknown) => {
      // The grant is revoked in the state store already; the gateway refuses on that alone.
      deps.log.warn('could not stop the window workflow', { grant: grant.id, error: errorText(error) });
    });
  }
  return true;
}

export interface Sweep {
  windowsRevoked: number;
  approvalsCancelled: number;
}

async function revokeWindows(deps: LifecycleDeps, grants: Grant[], actor: string, why: string): Promise<number> {
  let revoked = 0;
  for (const grant of grants) if (await revokeWindow(deps, grant, actor, why)) revoked++;
  return revoked;
}

/**
 * The kill switch for an agent: every window started before now is void (a
 * marker the gateway checks, so even one an index has not shown yet), held
 * requests die with it (pending and approved-but-unused approvals cancelled),
 * and its windows are revoked.
 */
export async function revokeAgent(deps: LifecycleDeps, agent: Agent, actor: string): Promise<Sweep & { revokedBefore: number }> {
  const now = deps.now();
  await deps.state.setAgentRevokedBefore(agent.id, now);
  const approvalsCancelled = await cancelRequestApprovals(deps, { agentId: agent.id }, `the agent was revoked by ${actor} at ${iso(now)}`, actor);
  const windowsRevoked = await revokeWindows(deps, await deps.state.listGrants({ agentId: agent.id }), actor, 'revoked by admin');
  return { windowsRevoked, approvalsCancelled, revokedBefore: now };
}

/** The same for every agent on a connection. */
export async function revokeConnection(deps: LifecycleDeps, connection: Connection, actor: string): Promise<Sweep & { revokedBefore: number }> {
  const now = deps.now();
  await deps.state.setConnectionRevokedBefore(connection.name, now);
  const approvalsCancelled = await cancelRequestApprovals(deps, { connection: connection.name }, `connection ${connection.name} was revoked by ${actor} at ${iso(now)}`, actor);
  const windowsRevoked = await revokeWindows(deps, await deps.state.listGrants({ connection: connection.name }), actor, 'revoked by admin');
  return { windowsRevoked, approvalsCancelled, revokedBefore: now };
}

/** Disables an agent (which also revokes it): its held requests are cancelled and its windows revoked. */
export async function disableAgent(deps: LifecycleDeps, agent: Agent, actor: string): Promise<Sweep & { agent: Agent }> {
  const disabled = await deps.state.disableAgent(agent.id, deps.now());
  await recordEventAfter(deps, { time: deps.now(), type: 'agent.disabled', agent: agent.name, agentId: agent.id, subject: agent.id, actor });
  const approvalsCancelled = await cancelRequestApprovals(deps, { agentId: agent.id }, `the agent was disabled by ${actor} at ${iso(disabled.disabledAt ?? deps.now())}`, actor);
  const windowsRevoked = await revokeWindows(deps, await deps.state.listGrants({ agentId: agent.id }), actor, 'agent disabled');
  return { agent: disabled, windowsRevoked, approvalsCancelled };
}

async function notify(deps: LifecycleDeps, type: string, subject: string, text: string, grant: Grant): Promise<void> {
  if (!deps.notifier) return;
  await deps.notifier.event(type, subject, text, { connection: grant.connection, agent: grant.agentName }).catch((error: unknown) => {
    deps.log.warn('notification not sent', { type, error: errorText(error) });
  });
}

/** The name of what failed underneath: adapters wrap SDK errors, the SDK's name (ThrottlingException) is what an operator searches for. */
function causeName(error: unknown): string {
  const underlying = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  return underlying instanceof Error ? underlying.name : 'error';
}
