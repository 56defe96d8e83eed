// Plan, approve once, apply (agent routes, served by the access function):
//   POST /v1/plans {connection, reason, ticket?, command}  opens a plan in the open window
//   GET  /v1/plans/{id}                                    the plan, its changes and its approval
//   POST /v1/plans/{id}/close                              one approval of kind 'plan' for all its changes
//   POST /v1/plans/{id}/apply                              spends that approval; the changes pass once each
// Tokens bound to a plan come from POST /v1/tokens {connection, plan, mode}.
import * as z from 'zod';
import type { Approval, Plan } from '../core/model.ts';
import { closePlan, openPlan, startApply } from '../core/lifecycle.ts';
import { AirlockError } from '../core/status.ts';
import { NAME_PATTERN, isId } from '../core/ids.ts';
import { assertWindowOpen } from '../core/windows.ts';
import { windowActivity } from '../proxy/window-activity.ts';
import { authenticateAgent } from '../runtime/auth.ts';
import { jsonBody, pathParameter, type RouteHandler } from '../runtime/http.ts';
import type { CoreServices } from '../runtime/services.ts';

const PlanRequest = z.strictObject({
  connection: z.string().regex(NAME_PATTERN, 'not a connection name'),
  reason: z.string().trim().min(3, 'say why (at least 3 characters)').max(500),
  ticket: z.string().trim().min(1).max(128).optional(),
  command: z.string().min(1).max(1000),
});

/** What an agent sees of its plan (the changes as the approver sees them: redacted). */
export function planView(plan: Plan, approval: Approval | undefined, now: number) {
  const expired = plan.status === 'applying' && (plan.expiresAt ?? 0) <= now;
  return {
    id: plan.id,
    connection: plan.connection,
    window: plan.grantId,
    status: expired ? 'expired' : plan.status,
    command: plan.command,
    changes: plan.changes.map((change) => ({
      summary: change.summary,
      method: change.method,
      path: change.path,
      query: change.query,
      dryRunStatus: change.dryRun.status,
      held: change.held !== false,
      // What keeps the approver from seeing it (a held change with any: the plan cannot be approved).
      ...(change.preview?.problems.length ? { problems: change.preview.problems } : change.preview ? {} : { problems: ['no preview was worked out'] }),
    })),
    ...(plan.approvalId ? { approvalId: plan.approvalId } : {}),
    ...(approval ? { approvalStatus: approval.status === 'pending' && approval.expiresAt <= now ? 'expired' : approval.status, approvalExpiresAt: new Date(approval.expiresAt).toISOString() } : {}),
    ...(plan.expiresAt ? { expiresAt: new Date(plan.expiresAt).toISOString() } : {}),
    ...(plan.cancelReason ? { cancelReason: plan.cancelReason } : {}),
  };
}

export function planRoutes(getServices: () => Promise<CoreServices>): Record<string, RouteHandler> {
  /** The calling agent's own plan; another agent's is reported exactly like a missing one. */
  const ownPlan = async (event: Parameters<RouteHandler>[0]) => {
    const services = await getServices();
    const agent = await authenticateAgent(event, services.state, services.now());
    const id = pathParameter(event, 'id');
    const plan = isId(id, 'pln') ? await services.state.getPlan(id) : undefined;
    if (!plan || plan.agentId !== agent.id) throw new AirlockError(404, 'plan_not_found', `no plan ${id.slice(0, 64)}`);
    return { services, agent, plan };
  };
  const approvalOf = (services: CoreServices, plan: Plan) => (plan.approvalId ? services.state.getApproval(plan.approvalId) : Promise.resolve(undefined));

  return {
    'POST /v1/plans': async (event) => {
      const services = await getServices();
      const now = services.now();
      const agent = await authenticateAgent(event, services.state, now);
      const input = jsonBody(event, PlanRequest);
      const connection = await services.state.getConnection(input.connection);
      if (!connection) throw new AirlockError(404, 'connection_not_found', `no connection named "${input.connection}"`);
      const grant = (await services.state.listGrants({ agentId: agent.id }))
        .filter((candidate) => candidate.connection === connection.name && candidate.status === 'active' && (candidate.expiresAt ?? 0) > now)
        .sort((a, b) => (b.expiresAt ?? 0) - (a.expiresAt ?? 0))[0];
      assertWindowOpen({ agent, connection, grant }, { agentId: agent.id, connection: connection.name }, now);
      const plan = await openPlan(services, { agent, connection, grant: grant!, reason: input.reason, ...(input.ticket ? { ticket: input.ticket } : {}), command: input.command });
      return { status: 201, body: planView(plan, undefined, now) };
    },

    'GET /v1/plans/{id}': async (event) => {
      const { services, plan } = await ownPlan(event);
      return { status: 200, body: planView(plan, await approvalOf(services, plan), services.now()) };
    },

    'POST /v1/plans/{id}/close': async (event) => {
      const { services, agent, plan } = await ownPlan(event);
      if (!services.workflows) throw new AirlockError(503, 'approvals_unavailable', 'approvals are not configured on this gateway, so a plan cannot be approved');
      const connection = await services.state.getConnection(plan.connection);
      const grant = await services.state.getGrant(plan.grantId);
      assertWindowOpen({ agent, connection, grant }, { agentId: agent.id, connection: plan.connection }, services.now());
      // The approver sees what the agent has done in the window; a read that fails leaves it out, and stops nothing.
      const window = await windowActivity({ agentName: plan.agentName, connection: plan.connection, grant: grant! }, services.records).catch(() => undefined);
      const closed = await closePlan({ ...services, workflows: services.workflows }, plan, connection!, grant!, window);
      return { status: 200, body: planView(closed.plan, closed.approval, services.now()) };
    },

    'POST /v1/plans/{id}/apply': async (event) => {
      const { services, agent, plan } = await ownPlan(event);
      const connection = await services.state.getConnection(plan.connection);
      assertWindowOpen({ agent, connection, grant: await services.state.getGrant(plan.grantId) }, { agentId: agent.id, connection: plan.connection }, services.now());
      const applying = await startApply(services, plan);
      return { status: 200, body: planView(applying, await approvalOf(services, applying), services.now()) };
    },
  };
}
