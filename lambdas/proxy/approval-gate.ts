// Step 5 of the path: a request that matches an `approve` rule passes only
// with a one-time approval of that exact request (fingerprint over agent,
// connection, method, canonical path+query, body SHA-256, policy version),
// asked in the same window (grant) as the request that spends it.
// Without one, it is held: an approval is created, its workflow notifies the
// approvers, and the agent gets a 403 naming the approval to wait for.
import type { Approval } from '../core/model.ts';
import type { RecordStore, StateStore, Workflows } from '../core/ports.ts';
import { mediaType, requestFingerprint } from '../core/approvals.ts';
import { AirlockError } from '../core/status.ts';
import { newId } from '../core/ids.ts';
import { redactBody } from '../core/redaction.ts';
import { recordEvent } from '../runtime/events.ts';
import { cancelApproval } from '../runtime/window-lifecycle.ts';
import type { HeldRequest, RequestApprovalGate } from './gateway.ts';

const BODY_PREVIEW_BYTES = 2048;

export class RequestApprovals implements RequestApprovalGate {
  private readonly state: StateStore;
  private readonly records: RecordStore;
  private readonly workflows: Workflows;
  private readonly now: () => number;

  constructor(options: { state: StateStore; records: RecordStore; workflows: Workflows; now: () => number }) {
    this.state = options.state;
    this.records = options.records;
    this.workflows = options.workflows;
    this.now = options.now;
  }

  async authorize(held: HeldRequest): Promise<string> {
    const { agent, connection, kube } = held;
    const fingerprint = requestFingerprint({
      agentId: agent.id,
      connection: connection.name,
      method: held.method,
      path: kube.path,
      query: kube.query,
      bodySha256: held.bodySha256,
      mediaType: mediaType(held.contentType),
      policyVersion: connection.policyVersion,
    });
    const boundId = await this.state.getApprovalIdForFingerprint(fingerprint);
    let bound = boundId ? await this.state.getApproval(boundId) : undefined;
    const now = this.now();
    if (bound && bound.fingerprint === fingerprint && bound.agentId === agent.id && bound.grantId !== held.grant.id && (bound.status === 'pending' || bound.status === 'approved')) {
      // Asked in another window: it is never spent here (even when the sweep at that window's end was missed).
      const reason = `it was asked in window ${bound.grantId ?? '(none recorded)'}, and the same request came again in window ${held.grant.id}, which needs its own approval`;
      bound = (await cancelApproval({ state: this.state, records: this.records, workflows: this.workflows, now: this.now }, bound.id, reason, 'gateway')) ?? (await this.state.getApproval(bound.id));
    }
    if (bound && bound.fingerprint === fingerprint && bound.agentId === agent.id && bound.grantId === held.grant.id) {
      if (bound.status === 'approved' && bound.expiresAt > now) {
        // Single use: only one request can move it from approved to consumed.
        const consumed = await this.state.updateApproval(bound.id, { status: ['approved'] }, { status: 'consumed', consumedAt: now, consumedBy: held.requestId });
        if (consumed) {
          await this.recordEvent(consumed, 'approval.consumed', agent.name, { request: held.requestId });
          return consumed.id;
        }
      }
      if (bound.status === 'pending' && bound.expiresAt > now) throw held403(bound, 'is waiting for approval');
    }
    const approval = await this.hold(held, fingerprint, bound?.id);
    if (bound?.status === 'cancelled' && bound.agentId === agent.id && approval.id !== bound.id) {
      const why = bound.cancelReason ? ` (${bound.cancelReason})` : '';
      throw held403(approval, `was held again for a new approval, because approval ${bound.id} of this request was cancelled${why}; an approver has been emailed`);
    }
    throw held403(approval, 'was held for approval; an approver has been emailed');
  }

  private async hold(held: HeldRequest, fingerprint: string, previousId: string | undefined): Promise<Approval> {
    const { agent, connection, grant, kube, decision } = held;
    const now = this.now();
    const timeoutSeconds = connection.policy.approvalTimeoutSeconds;
    const preview = redactBody(held.body.subarray(0, BODY_PREVIEW_BYTES), held.body.length <= BODY_PREVIEW_BYTES, held.body.length, 'application/json', {
      secretsResource: kube.resource === 'secrets',
    }).body;
    const approval: Approval = {
      id: newId('apr'),
      kind: 'request',
      status: 'pending',
      agentId: agent.id,
      agentName: agent.name,
      connection: connection.name,
      summary: describeRequest(held),
      reason: grant.reason,
      ...(grant.ticket ? { ticket: grant.ticket } : {}),
      rule: decision.reason,
      approvers: connection.policy.approvers,
      minApprovals: connection.policy.minApprovals,
      decisions: [],
      notified: [],
      createdAt: now,
      expiresAt: now + timeoutSeconds * 1000,
      timeoutSeconds,
      fingerprint,
      request: {
        method: held.method,
        path: kube.path,
        query: kube.query,
        bodySha256: held.bodySha256,
        ...(mediaType(held.contentType) ? { mediaType: mediaType(held.contentType) } : {}),
        ...(held.body.length ? { bodyPreview: typeof preview === 'string' ? preview : JSON.stringify(preview).slice(0, BODY_PREVIEW_BYTES) } : {}),
      },
      policyVersion: connection.policyVersion,
      // The window it is asked in: the only one whose requests can spend it.
      grantId: grant.id,
    };
    // The request is recorded (write-ahead) by the gateway as "held"; the approval itself is an audit event first.
    await this.recordEvent(approval, 'approval.requested', agent.name, { request: held.requestId, rule: decision.reason });
    await this.state.createApproval(approval);
    if (!(await this.state.bindFingerprint(fingerprint, approval.id, previousId, approval.expiresAt))) {
      // Someone else held the same request at the same moment: wait for theirs.
      const winner = await this.state.getApprovalIdForFingerprint(fingerprint);
      const existing = winner ? await this.state.getApproval(winner) : undefined;
      await this.state.updateApproval(approval.id, { status: ['pending'] }, { status: 'cancelled', cancelledAt: now, cancelReason: `the same request was held at the same moment as approval ${winner ?? '(unknown)'}` });
      if (existing) return existing;
      throw new AirlockError(409, 'approval_conflict', 'another approval for this exact request was just created; retry');
    }
    try {
      const executionArn = await this.workflows.startApproval(approval.id);
      await this.state.updateApproval(approval.id, { status: ['pending', 'approved', 'denied'] }, { executionArn });
    } catch {
      await this.state.updateApproval(approval.id, { status: ['pending'] }, { status: 'cancelled', cancelledAt: this.now(), cancelReason: 'the approval workflow could not be started' });
      throw new AirlockError(503, 'approvals_unavailable', 'this request needs approval, and the approval workflow cannot be started right now; nothing was forwarded');
    }
    return approval;
  }

  /** Recorded before anything else happens; 503 when it cannot be. */
  private recordEvent(approval: Approval, type: string, actor: string, detail: Record<string, string>): Promise<void> {
    return recordEvent(this.records, { time: this.now(), type, agent: approval.agentName, agentId: approval.agentId, connection: approval.connection, subject: approval.id, actor, detail });
  }
}

function describeRequest(held: HeldRequest): string {
  const { kube } = held;
  const resource = kube.subresource ? `${kube.resource}/${kube.subresource}` : kube.resource;
  const target = kube.name ? `${resource}/${kube.name}` : resource;
  return `${held.method} ${target}${kube.apiGroup ? `.${kube.apiGroup}` : ''}${kube.namespace ? ` in ${kube.namespace}` : ' (cluster-wide)'} (${kube.verb})`;
}

function held403(approval: Approval, state: string): AirlockError {
  return new AirlockError(
    403,
    'approval_required',
    `${approval.summary} needs a one-time human approval and ${state}: run \`airlock approvals wait ${approval.id}\`, then retry the same command (approval expires ${new Date(approval.expiresAt).toISOString()})`,
    { approvalId: approval.id },
  );
}
