// The `approve` stage of the path: a request that matches an `approve` rule passes only
// with a one-time approval of that exact request (fingerprint over agent,
// connection, method, canonical path+query, body SHA-256, its media type,
// policy version), asked in the same window (grant) as the request that spends
// it. Without one, it is held: an approval is created, its workflow notifies
// the approvers, and the agent gets a 403 naming the approval to wait for.
// The gate decides which of these applies; the transitions themselves are the
// lifecycle's (core/lifecycle.ts).
import type { Approval } from '../core/model.ts';
import type { ClusterReader, TranscriptStore, Workflows } from '../core/ports.ts';
import { keepPreview, previewKeyFor, workOutPreview } from './preview.ts';
import { mediaType, requestFingerprint } from '../core/approvals.ts';
import { cancelApproval, consumeApproval, holdRequest, newApproval, type LifecycleDeps } from '../core/lifecycle.ts';
import { commandLine, kubeTarget } from '../core/kube-request.ts';
import { AirlockError } from '../core/status.ts';
import { redactBody, redactCommandLine } from '../core/redaction.ts';
import type { HeldRequest, RequestApprovalGate } from './gateway.ts';

const BODY_PREVIEW_BYTES = 2048;

export interface ApprovalGateDeps extends LifecycleDeps {
  workflows: Workflows;
  /** Reads the cluster for the approver's preview (dry run, live object); without it a preview cannot show a change. */
  cluster?: ClusterReader;
  /** Where the whole preview is kept, under a key on the approval. Without it the preview cannot be shown. */
  transcripts?: TranscriptStore;
}

/** Lines of the preview an approval item keeps (the email's), bounded. */
const PREVIEW_LINES = 60;

export class RequestApprovals implements RequestApprovalGate {
  private readonly deps: ApprovalGateDeps;

  constructor(deps: ApprovalGateDeps) {
    this.deps = deps;
  }

  async authorize(held: HeldRequest): Promise<string> {
    const { agent, connection, kube } = held;
    const { state } = this.deps;
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
    const boundId = await state.getApprovalIdForFingerprint(fingerprint);
    let bound = boundId ? await state.getApproval(boundId) : undefined;
    const now = this.deps.now();
    if (bound && bound.fingerprint === fingerprint && bound.agentId === agent.id && bound.grantId !== held.grant.id && (bound.status === 'pending' || bound.status === 'approved')) {
      // Asked in another window: it is never spent here (even when the sweep at that window's end was missed).
      const reason = `it was asked in window ${bound.grantId ?? '(none recorded)'}, and the same request came again in window ${held.grant.id}, which needs its own approval`;
      bound = (await cancelApproval(this.deps, bound.id, reason, 'gateway')) ?? (await state.getApproval(bound.id));
    }
    if (bound && bound.fingerprint === fingerprint && bound.agentId === agent.id && bound.grantId === held.grant.id) {
      if (bound.status === 'approved' && bound.expiresAt > now) {
        // Single use: only one request can move it from approved to consumed.
        const consumed = await consumeApproval(this.deps, bound, held.requestId, agent.name);
        if (consumed) return consumed.id;
      }
      if (bound.status === 'pending' && bound.expiresAt > now) throw held403(bound, 'is waiting for approval');
    }
    const approval = await holdRequest(this.deps, await this.withPreview(held, this.approvalFor(held, fingerprint)), bound?.id, held.requestId);
    if (bound?.status === 'cancelled' && bound.agentId === agent.id && approval.id !== bound.id) {
      const why = bound.cancelReason ? ` (${bound.cancelReason})` : '';
      throw held403(approval, `was held again for a new approval, because approval ${bound.id} of this request was cancelled${why}; an approver has been emailed`);
    }
    throw held403(approval, 'was held for approval; an approver has been emailed');
  }

  /**
   * Works out what the request would do and keeps it for the approver. Whatever goes wrong is
   * a problem on the preview (the page then offers no Approve), never a reason to hide it.
   */
  private async withPreview(held: HeldRequest, approval: Approval & { fingerprint: string }): Promise<Approval & { fingerprint: string }> {
    const preview = await workOutPreview(held, { reader: this.deps.cluster, records: this.deps.records });
    return { ...approval, preview: await keepPreview(preview, previewKeyFor(approval.id), this.deps.transcripts, { lines: PREVIEW_LINES, lineChars: 300 }) };
  }

  /** The approval a held request asks for: the request line and a redacted preview of its body, for the approver. */
  private approvalFor(held: HeldRequest, fingerprint: string): Approval & { fingerprint: string } {
    const { kube } = held;
    const preview = redactBody(held.body.subarray(0, BODY_PREVIEW_BYTES), held.body.length <= BODY_PREVIEW_BYTES, held.body.length, 'application/json', {
      secretsResource: kube.resource === 'secrets',
    }).body;
    const approval = newApproval({
      kind: 'request',
      agent: held.agent,
      connection: held.connection,
      // The window it is asked in: the only one whose requests can spend it.
      grant: held.grant,
      summary: describeRequest(held),
      rule: held.decision.reason,
      now: this.deps.now(),
      fingerprint,
      request: {
        method: held.method,
        path: kube.path,
        query: kube.query,
        bodySha256: held.bodySha256,
        ...(mediaType(held.contentType) ? { mediaType: mediaType(held.contentType) } : {}),
        // An exec's body is its stdin, shown (as text, redacted) in the preview.
        ...(held.body.length && !kube.command ? { bodyPreview: typeof preview === 'string' ? preview : JSON.stringify(preview).slice(0, BODY_PREVIEW_BYTES) } : {}),
      },
    });
    return { ...approval, fingerprint };
  }
}

/** The approver's summary leads with the HTTP method: an approval binds that exact request, not only its verb. */
function describeRequest(held: HeldRequest): string {
  const { kube } = held;
  // An exec's approval is for that command: the summary names it (redacted like any command line shown).
  const command = kube.command ? `: ${redactCommandLine(commandLine(kube.command))}` : '';
  return `${held.method} ${kubeTarget(kube)}${kube.namespace ? ` in ${kube.namespace}` : ' (cluster-wide)'} (${kube.verb})${command}`;
}

function held403(approval: Approval, state: string): AirlockError {
  return new AirlockError(
    403,
    'approval_required',
    `${approval.summary} needs a one-time human approval and ${state}: run \`airlock approvals wait ${approval.id}\`, then retry the same command (approval expires ${new Date(approval.expiresAt).toISOString()})`,
    { approvalId: approval.id },
  );
}
