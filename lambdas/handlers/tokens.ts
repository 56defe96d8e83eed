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
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { header, httpHandler, jsonBody, rawBody, router, type HttpResult, type RouteHandler } from '../runtime/http.ts';
import { OAuthError, authorizationServerMetadata, authorizeRefusal, protectedResourceMetadata, readTokenForm } from '../mcp/oauth.ts';
import type { CoreServices } from '../runtime/services.ts';
import { servicesFromEnvironment } from '../runtime/environment.ts';
import { createCoreServices } from '../runtime/core-services.ts';

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

/** POST /v1/mcp/token (OAuth client credentials, lambdas/mcp/oauth.ts): the agent's key or IAM principal -> an MCP token. */
async function mcpToken(services: CoreServices, event: APIGatewayProxyEvent): Promise<HttpResult> {
  const now = services.now();
  try {
    const type = (header(event, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') throw new OAuthError(400, 'invalid_request', 'send application/x-www-form-urlencoded (grant_type=client_credentials)');
    const raw = rawBody(event);
    if (raw.length > 8192) throw new OAuthError(400, 'invalid_request', 'request too large');
    const form = readTokenForm(raw.toString('utf8'));
    if (form.grantType !== 'client_credentials') throw new OAuthError(400, 'unsupported_grant_type', 'only grant_type=client_credentials is served');
    if (form.resource !== undefined && form.resource !== services.tokens.mcpResource) throw new OAuthError(400, 'invalid_target', `this server issues tokens for ${services.tokens.mcpResource} only`);
    // client_secret_post: the same check as HTTP Basic.
    let authEvent = event;
    if (form.clientId !== undefined || form.clientSecret !== undefined) {
      if (header(event, 'authorization')) throw new OAuthError(400, 'invalid_request', 'use one client authentication method');
      const basic = Buffer.from(`${form.clientId ?? ''}:${form.clientSecret ?? ''}`).toString('base64');
      authEvent = { ...event, headers: { ...event.headers, authorization: `Basic ${basic}` }, multiValueHeaders: { ...event.multiValueHeaders, authorization: [`Basic ${basic}`] } };
    }
    let agent;
    try {
      agent = await authenticateAgent(authEvent, services.state, now);
    } catch (error) {
      if (error instanceof AirlockError && (error.status === 401 || error.status === 403)) throw new OAuthError(401, 'invalid_client', error.message);
      throw error;
    }
    const issued = await services.tokens.issueMcp({ agentId: agent.id, agentName: agent.name });
    await recordEvent(services, {
      time: now,
      type: 'token.issued',
      agent: agent.name,
      agentId: agent.id,
      connection: '-',
      subject: issued.tokenId,
      actor: agent.name,
      detail: { audience: services.tokens.mcpResource, expiresAt: new Date(issued.expiresAt).toISOString() },
    });
    return { status: 200, body: { access_token: issued.token, token_type: 'Bearer', expires_in: Math.floor((issued.expiresAt - now) / 1000) } };
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    return { status: error.status, body: { error: error.error, error_description: error.description }, ...(error.status === 401 ? { headers: { 'www-authenticate': 'Basic realm="airlock"' } } : {}) };
  }
}

export function tokensRoutes(getServices: () => Promise<CoreServices>): RouteHandler {
  return router({
    'POST /v1/mcp/token': async (event) => mcpToken(await getServices(), event),
    'GET /.well-known/oauth-protected-resource': async () => {
      const services = await getServices();
      return { status: 200, body: protectedResourceMetadata(services.config.publicUrl, services.tokens.mcpResource) };
    },
    'GET /.well-known/oauth-protected-resource/mcp': async () => {
      const services = await getServices();
      return { status: 200, body: protectedResourceMetadata(services.config.publicUrl, services.tokens.mcpResource) };
    },
    'GET /.well-known/oauth-authorization-server': async () => {
      const services = await getServices();
      return { status: 200, body: authorizationServerMetadata(services.config.publicUrl) };
    },
    'GET /v1/mcp/authorize': () => Promise.resolve(authorizeRefusal()),
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

export const handler = httpHandler(tokensRoutes(servicesFromEnvironment(createCoreServices)));
