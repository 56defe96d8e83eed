// Agents asking for time: POST/GET /v1/access-requests, GET /v1/approvals/{id}; and plans (plans.ts).
import * as z from 'zod';
import { approvalView, grantView } from '../core/views.ts';
import { requestWindow, revokeWindow } from '../core/lifecycle.ts';
import { AirlockError } from '../core/status.ts';
import { NAME_PATTERN, isId } from '../core/ids.ts';
import { authenticateAgent } from '../runtime/auth.ts';
import { httpHandler, jsonBody, pathParameter, router, type RouteHandler } from '../runtime/http.ts';
import type { CoreServices } from '../runtime/services.ts';
import { servicesFromEnvironment } from '../runtime/environment.ts';
import { createCoreServices } from '../runtime/core-services.ts';
import { planRoutes } from './plans.ts';

const AccessRequest = z.strictObject({
  connection: z.string().regex(NAME_PATTERN, 'not a connection name'),
  duration: z.string().min(1).max(16),
  reason: z.string().trim().min(3, 'say why (at least 3 characters)').max(500),
  ticket: z.string().trim().min(1).max(128).optional(),
});

export function accessRoutes(getServices: () => Promise<CoreServices>): RouteHandler {
  /** The calling agent's own window; another agent's is reported exactly like a missing one. */
  const ownGrant = async (event: Parameters<RouteHandler>[0]) => {
    const services = await getServices();
    const agent = await authenticateAgent(event, services.state, services.now());
    const id = pathParameter(event, 'id');
    const grant = isId(id, 'gr') ? await services.state.getGrant(id) : undefined;
    if (!grant || grant.agentId !== agent.id) throw new AirlockError(404, 'window_not_found', `no access request ${id.slice(0, 64)}`);
    return { services, agent, grant };
  };

  return router({
    ...planRoutes(getServices),
    'POST /v1/access-requests': async (event) => {
      const services = await getServices();
      const now = services.now();
      const agent = await authenticateAgent(event, services.state, now);
      const input = jsonBody(event, AccessRequest);
      const connection = await services.state.getConnection(input.connection);
      if (!connection) throw new AirlockError(404, 'connection_not_found', `no connection named "${input.connection}"`);
      const started = await requestWindow(services, agent, connection, input);
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
      const { services, grant } = await ownGrant(event);
      return { status: 200, body: grantView(grant, services.now()) };
    },

    'POST /v1/access-requests/{id}/end': async (event) => {
      // An agent closing its own access early (done with the task): good hygiene, and part of `airlock verify`.
      const { services, agent, grant } = await ownGrant(event);
      await revokeWindow(services, grant, agent.name, 'ended by the agent');
      return { status: 200, body: grantView((await services.state.getGrant(grant.id))!, services.now()) };
    },

    'GET /v1/approvals/{id}': async (event) => {
      const services = await getServices();
      const now = services.now();
      const agent = await authenticateAgent(event, services.state, now);
      const id = pathParameter(event, 'id');
      const approval = isId(id, 'apr') ? await services.state.getApproval(id) : undefined;
      if (!approval || approval.agentId !== agent.id) throw new AirlockError(404, 'approval_not_found', `no approval ${id.slice(0, 64)}`);
      return { status: 200, body: approvalView(approval, now) };
    },
  });
}

export const handler = httpHandler(accessRoutes(servicesFromEnvironment(createCoreServices)));
