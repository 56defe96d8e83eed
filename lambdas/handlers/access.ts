// Agents asking for time: POST/GET /v1/access-requests, GET /v1/approvals/{id}.
import { z } from 'zod';
import type { Agent, Grant } from '../core/model.ts';
import { AirlockError } from '../core/status.ts';
import { NAME_PATTERN, isId, newId } from '../core/ids.ts';
import { windowDurationSeconds } from '../core/windows.ts';
import { authenticateAgent } from '../runtime/auth.ts';
import { httpHandler, jsonBody, pathParameter, router, type RouteHandler } from '../runtime/http.ts';
import type { Services } from '../runtime/services.ts';
import { servicesFromEnvironment } from '../runtime/environment.ts';

const AccessRequest = z.strictObject({
  connection: z.string().regex(NAME_PATTERN, 'not a connection name'),
  duration: z.string().min(1).max(16),
  reason: z.string().trim().min(3, 'say why (at least 3 characters)').max(500),
  ticket: z.string().trim().min(1).max(128).optional(),
});

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

/** Starts a window: direct activation, or the access-window workflow (approval first). */
export interface WindowStarter {
  start(grant: Grant, agent: Agent, services: Services): Promise<Grant>;
}

/** Without workflows: only windows that need no approval can open. */
export const immediateWindows: WindowStarter = {
  async start(grant, _agent, services) {
    const connection = await services.state.getConnection(grant.connection);
    if (connection?.policy.windowApproval !== 'none') {
      throw new AirlockError(501, 'approval_unavailable', 'this connection requires window approval, and approvals are not configured on this gateway');
    }
    await services.state.createGrant(grant);
    const now = services.now();
    const active = await services.state.transitionGrant(grant.id, ['pending'], {
      status: 'active',
      activatedAt: now,
      expiresAt: now + grant.durationSeconds * 1000,
    });
    if (!active) throw new AirlockError(409, 'window_changed', 'the window changed while it was being opened');
    await services.records.putEvent({
      id: newId('evt'),
      time: now,
      type: 'window.activated',
      agent: grant.agentName,
      agentId: grant.agentId,
      connection: grant.connection,
      subject: grant.id,
      actor: 'policy (windowApproval: none)',
      detail: { expiresAt: new Date(active.expiresAt!).toISOString() },
    });
    return active;
  },
};

export function accessRoutes(getServices: () => Promise<Services>, windows: WindowStarter = immediateWindows): RouteHandler {
  return router({
    'POST /v1/access-requests': async (event) => {
      const services = await getServices();
      const now = services.now();
      const agent = await authenticateAgent(event, services.state, now);
      const input = jsonBody(event, AccessRequest);
      const connection = await services.state.getConnection(input.connection);
      if (!connection) throw new AirlockError(404, 'connection_not_found', `no connection named "${input.connection}"`);
      const durationSeconds = windowDurationSeconds(input.duration, connection.policy);
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
      await services.records.putEvent({
        id: newId('evt'),
        time: now,
        type: 'window.requested',
        agent: agent.name,
        agentId: agent.id,
        connection: connection.name,
        subject: grant.id,
        actor: agent.name,
        detail: { duration: input.duration, reason: input.reason, ...(input.ticket ? { ticket: input.ticket } : {}) },
      });
      const started = await windows.start(grant, agent, services);
      return { status: started.status === 'active' ? 201 : 202, body: grantView(started, services.now()) };
    },

    'GET /v1/access-requests': async (event) => {
      const services = await getServices();
      const now = services.now();
      const agent = await authenticateAgent(event, services.state, now);
      const grants = await services.state.listGrants({ agentId: agent.id });
      return { status: 200, body: { items: grants.slice(0, 50).map((grant) => grantView(grant, now)) } };
    },

    'GET /v1/access-requests/{id}': async (event) => {
      const services = await getServices();
      const now = services.now();
      const agent = await authenticateAgent(event, services.state, now);
      const id = pathParameter(event, 'id');
      const grant = isId(id, 'gr') ? await services.state.getGrant(id) : undefined;
      // Another agent's window is reported exactly like a missing one.
      if (!grant || grant.agentId !== agent.id) throw new AirlockError(404, 'window_not_found', `no access request ${id.slice(0, 64)}`);
      return { status: 200, body: grantView(grant, now) };
    },

    'GET /v1/approvals/{id}': async (event) => {
      const services = await getServices();
      const now = services.now();
      const agent = await authenticateAgent(event, services.state, now);
      const id = pathParameter(event, 'id');
      const approval = isId(id, 'apr') ? await services.state.getApproval(id) : undefined;
      if (!approval || approval.agentId !== agent.id) throw new AirlockError(404, 'approval_not_found', `no approval ${id.slice(0, 64)}`);
      const status = approval.status === 'pending' && approval.expiresAt <= now ? 'expired' : approval.status;
      return {
        status: 200,
        body: {
          id: approval.id,
          kind: approval.kind,
          status,
          summary: approval.summary,
          connection: approval.connection,
          approvals: approval.decisions.filter((decision) => decision.decision === 'approve').length,
          minApprovals: approval.minApprovals,
          expiresAt: new Date(approval.expiresAt).toISOString(),
          ...(approval.grantId ? { window: approval.grantId } : {}),
        },
      };
    },
  });
}

export const handler = httpHandler(accessRoutes(servicesFromEnvironment));
