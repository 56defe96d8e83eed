// POST /v1/tokens {connection, window?} -> {token, expiresAt}
// Only a valid agent credential with an open window on that connection gets a
// token; the token never outlives the window.
import * as z from 'zod';
import type { Grant } from '../core/model.ts';
import { AirlockError } from '../core/status.ts';
import { NAME_PATTERN, isId } from '../core/ids.ts';
import { recordEvent } from '../core/events.ts';
import { assertWindowOpen } from '../core/windows.ts';
import { authenticateAgent } from '../runtime/auth.ts';
import { httpHandler, jsonBody, router, type RouteHandler } from '../runtime/http.ts';
import type { Services } from '../runtime/services.ts';
import { servicesFromEnvironment } from '../runtime/environment.ts';

const TokenRequest = z.strictObject({
  connection: z.string().regex(NAME_PATTERN, 'not a connection name'),
  window: z
    .string()
    .refine((value) => isId(value, 'gr'), 'not a window id')
    .optional(),
  /** A token for `airlock plan` / `airlock apply`: bound to this plan (in its window) in this mode. */
  plan: z
    .string()
    .refine((value) => isId(value, 'pln'), 'not a plan id')
    .optional(),
  mode: z.enum(['plan', 'apply']).optional(),
});

export function tokensRoutes(getServices: () => Promise<Services>): RouteHandler {
  return router({
    'POST /v1/tokens': async (event) => {
      const services = await getServices();
      const { state, tokens } = services;
      const now = services.now();
      const agent = await authenticateAgent(event, state, now);
      const input = jsonBody(event, TokenRequest);
      const connection = await state.getConnection(input.connection);
      if (!connection) throw new AirlockError(404, 'connection_not_found', `no connection named "${input.connection}"`);

      if ((input.plan === undefined) !== (input.mode === undefined)) throw new AirlockError(400, 'invalid_request', 'plan and mode go together');
      const plan = input.plan ? await state.getPlan(input.plan) : undefined;
      if (input.plan && (!plan || plan.agentId !== agent.id || plan.connection !== connection.name))
        throw new AirlockError(404, 'plan_not_found', `no plan ${input.plan} of this agent on "${connection.name}"`);
      // A plan token is only for what the plan is doing now; the gateway checks again on every request.
      if (plan && input.mode !== (plan.status === 'open' ? 'plan' : plan.status === 'applying' ? 'apply' : undefined)) {
        throw new AirlockError(403, 'plan_not_usable', `plan ${plan.id} is ${plan.status}: no ${input.mode} token for it`);
      }

      let grant: Grant | undefined;
      if (plan) {
        grant = await state.getGrant(plan.grantId);
      } else if (input.window) {
        grant = await state.getGrant(input.window);
      } else {
        // Newest open window; the caller may name one to avoid index lag.
        const grants = await state.listGrants({ agentId: agent.id });
        grant = grants
          .filter((candidate) => candidate.connection === connection.name && candidate.status === 'active' && (candidate.expiresAt ?? 0) > now)
          .sort((a, b) => (b.expiresAt ?? 0) - (a.expiresAt ?? 0))[0];
      }
      assertWindowOpen({ agent, connection, grant }, { agentId: agent.id, connection: connection.name }, now);

      const issued = await tokens.issue({
        agentId: agent.id,
        agentName: agent.name,
        connection: connection.name,
        grantId: grant!.id,
        windowExpiresAt: grant!.expiresAt!,
        ...(plan && input.mode ? { plan: { planId: plan.id, mode: input.mode } } : {}),
      });
      // Not returned unless its issue is on record.
      await recordEvent(services, {
        time: now,
        type: 'token.issued',
        agent: agent.name,
        agentId: agent.id,
        connection: connection.name,
        subject: issued.tokenId,
        actor: agent.name,
        detail: { window: grant!.id, ...(plan ? { plan: plan.id, mode: input.mode } : {}), expiresAt: new Date(issued.expiresAt).toISOString() },
      });
      return { status: 200, body: { token: issued.token, expiresAt: new Date(issued.expiresAt).toISOString(), window: grant!.id } };
    },
  });
}

export const handler = httpHandler(tokensRoutes(servicesFromEnvironment));
