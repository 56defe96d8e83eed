// Admin surface: agents, connections (+ policy), revocation, audit.
import { X509Certificate } from 'node:crypto';
import * as z from 'zod';
import type { Agent, Connection, ConnectionCredential } from '../core/model.ts';
import { ROLE_ARN_PATTERN, USER_OR_ROLE_ARN_PATTERN } from '../core/arns.ts';
import { AirlockError } from '../core/status.ts';
import { NAME_PATTERN, isId, newId } from '../core/ids.ts';
import { hashAgentKey, newAgentKey } from '../core/agent-keys.ts';
import { escalationWarnings } from '../core/policy.ts';
import { partOnFirstUse } from '../core/on-first-use.ts';
import { unspool } from '../core/transcripts.ts';
import { authenticateAdmin } from '../runtime/auth.ts';
import { recordEvent } from '../core/events.ts';
import { disableAgent, revokeAgent, revokeConnection } from '../core/lifecycle.ts';
import { httpHandler, jsonBody, pathParameter, queryParameter, router, type RouteHandler } from '../runtime/http.ts';
import type { TranscriptServices } from '../runtime/services.ts';
import { servicesFromEnvironment } from '../runtime/environment.ts';
import { createTranscriptServices } from '../runtime/transcript-services.ts';
import { auditRoutes, instantParameter } from './audit.ts';

const name = z.string().regex(NAME_PATTERN, 'use lowercase letters, digits and dashes (a DNS label, at most 63 characters)');

const CreateAgent = z.strictObject({
  name,
  principalArn: z.string().regex(USER_OR_ROLE_ARN_PATTERN, 'an IAM user or role ARN').optional(),
});

const ConnectionInput = z.strictObject({
  server: z
    .string()
    .max(2048)
    .refine((value) => {
      try {
        const url = new URL(value);
        return url.protocol === 'https:' && !url.username && !url.password && !url.search && !url.hash;
      } catch {
        return false;
      }
    }, 'an https:// URL without credentials, query or fragment'),
  caPem: z
    .string()
    .min(1, 'the CA bundle that signs the server certificate')
    .max(64 * 1024),
  token: z
    .string()
    .min(1)
    .max(16 * 1024)
    .optional(),
  eks: z
    .strictObject({
      clusterName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/, 'an EKS cluster name'),
      region: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'an AWS region'),
      roleArn: z.string().regex(ROLE_ARN_PATTERN, 'an IAM role ARN'),
    })
    .optional(),
  policy: z
    .string()
    .min(1, 'the policy file text (YAML or JSON)')
    .max(64 * 1024),
});

const CreateConnection = ConnectionInput.extend({ name });

const Revocation = z
  .strictObject({ agent: name.optional(), connection: name.optional() })
  .refine((value) => (value.agent === undefined) !== (value.connection === undefined), 'give exactly one of agent or connection');

function agentView(agent: Agent) {
  return {
    id: agent.id,
    name: agent.name,
    status: agent.status,
    createdAt: new Date(agent.createdAt).toISOString(),
    ...(agent.principalArn ? { principalArn: agent.principalArn } : {}),
    ...(agent.disabledAt ? { disabledAt: new Date(agent.disabledAt).toISOString() } : {}),
  };
}

function connectionView(connection: Connection, detailed: boolean) {
  const credential =
    connection.credential.type === 'token'
      ? { type: 'token' }
      : { type: 'eks', clusterName: connection.credential.clusterName, region: connection.credential.region, roleArn: connection.credential.roleArn };
  return {
    name: connection.name,
    server: connection.server,
    credential, // never the secret itself
    policyVersion: connection.policyVersion,
    createdAt: new Date(connection.createdAt).toISOString(),
    updatedAt: new Date(connection.updatedAt).toISOString(),
    ...(detailed ? { policy: connection.policy, caPem: connection.caPem } : {}),
  };
}

function validateCa(pem: string): string {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) throw new AirlockError(400, 'invalid_request', 'caPem: no PEM certificate found');
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      throw new AirlockError(400, 'invalid_request', 'caPem: a certificate in the bundle cannot be parsed');
    }
  }
  return `${blocks.join('\n')}\n`;
}

function credentialOf(input: z.infer<typeof ConnectionInput>): ConnectionCredential {
  if ((input.token === undefined) === (input.eks === undefined)) {
    throw new AirlockError(400, 'invalid_request', 'give exactly one credential: token (a bearer token file) or eks (cluster, region, role)');
  }
  if (input.token !== undefined) {
    const token = input.token.trim();
    if (/\s/.test(token)) throw new AirlockError(400, 'invalid_request', 'token: must be a single bearer token');
    return { type: 'token', token };
  }
  return { type: 'eks', ...input.eks! };
}

/** A policy file (YAML, its schema) is read only when a connection is created or changed: loaded on first use. */
const loadPolicyFile = partOnFirstUse('admin_unavailable', 'the policy file reader', () => import('../core/policy-file.ts'));

export function adminRoutes(getServices: () => Promise<TranscriptServices>): RouteHandler {
  const admin = async (event: Parameters<RouteHandler>[0]) => {
    const services = await getServices();
    const actor = authenticateAdmin(event, services.config.admin);
    return { services, actor };
  };

  return router({
    ...auditRoutes(admin),
    'POST /v1/agents': async (event) => {
      const { services, actor } = await admin(event);
      const input = jsonBody(event, CreateAgent);
      const secret = input.principalArn ? undefined : newAgentKey();
      const agent: Agent = {
        id: newId('agt'),
        name: input.name,
        status: 'enabled',
        createdAt: services.now(),
        ...(secret ? { secretHash: await hashAgentKey(secret) } : {}),
        ...(input.principalArn ? { principalArn: input.principalArn } : {}),
      };
      await recordEvent(services, { time: agent.createdAt, type: 'agent.created', agent: agent.name, agentId: agent.id, subject: agent.id, actor });
      await services.state.createAgent(agent);
      return { status: 201, body: { id: agent.id, name: agent.name, ...(secret ? { secret } : { principalArn: agent.principalArn }) } };
    },

    'GET /v1/agents': async (event) => {
      const { services } = await admin(event);
      const agents = await services.state.listAgents();
      return { status: 200, body: { items: agents.sort((a, b) => a.name.localeCompare(b.name)).map(agentView) } };
    },

    'POST /v1/agents/{name}/disable': async (event) => {
      const { services, actor } = await admin(event);
      const agentName = pathParameter(event, 'name');
      const agent = NAME_PATTERN.test(agentName) ? await services.state.getAgentByName(agentName) : undefined;
      if (!agent) throw new AirlockError(404, 'agent_not_found', `no agent named "${agentName.slice(0, 64)}"`);
      const { agent: disabled, windowsRevoked, approvalsCancelled } = await disableAgent(services, agent, actor);
      return { status: 200, body: { ...agentView(disabled), windowsRevoked, approvalsCancelled } };
    },

    'POST /v1/agents/{name}/enable': async (event) => {
      // Lets a disabled agent ask for new windows; nothing from before comes back (windows stay revoked, approvals cancelled).
      const { services, actor } = await admin(event);
      const agentName = pathParameter(event, 'name');
      const agent = NAME_PATTERN.test(agentName) ? await services.state.getAgentByName(agentName) : undefined;
      if (!agent) throw new AirlockError(404, 'agent_not_found', `no agent named "${agentName.slice(0, 64)}"`);
      if (agent.status === 'enabled') throw new AirlockError(409, 'agent_enabled', `agent "${agent.name}" is already enabled; nothing was changed`);
      await recordEvent(services, { time: services.now(), type: 'agent.enabled', agent: agent.name, agentId: agent.id, subject: agent.id, actor });
      const enabled = await services.state.enableAgent(agent.id);
      if (!enabled) throw new AirlockError(409, 'agent_enabled', `agent "${agent.name}" is already enabled; nothing was changed`);
      return { status: 200, body: agentView(enabled) };
    },

    'POST /v1/connections': async (event) => {
      const { services, actor } = await admin(event);
      const input = jsonBody(event, CreateConnection);
      const parsed = (await loadPolicyFile()).parsePolicy(input.policy);
      const now = services.now();
      const connection: Connection = {
        name: input.name,
        server: input.server.replace(/\/$/, ''),
        caPem: validateCa(input.caPem),
        credential: credentialOf(input),
        policy: parsed.policy,
        policyVersion: parsed.version,
        createdAt: now,
        updatedAt: now,
      };
      await recordEvent(services, { time: now, type: 'connection.created', connection: connection.name, subject: connection.name, actor, detail: { policyVersion: parsed.version } });
      await services.state.putConnection(connection, 'create');
      return { status: 201, body: { ...connectionView(connection, true), warnings: escalationWarnings(parsed.policy) } };
    },

    'PUT /v1/connections/{name}': async (event) => {
      const { services, actor } = await admin(event);
      const connectionName = pathParameter(event, 'name');
      const existing = NAME_PATTERN.test(connectionName) ? await services.state.getConnection(connectionName) : undefined;
      if (!existing) throw new AirlockError(404, 'connection_not_found', `no connection named "${connectionName.slice(0, 64)}"`);
      const input = jsonBody(event, ConnectionInput);
      const parsed = (await loadPolicyFile()).parsePolicy(input.policy);
      const connection: Connection = {
        ...existing,
        server: input.server.replace(/\/$/, ''),
        caPem: validateCa(input.caPem),
        credential: credentialOf(input),
        policy: parsed.policy,
        policyVersion: parsed.version,
        updatedAt: services.now(),
      };
      await recordEvent(services, { time: connection.updatedAt, type: 'connection.updated', connection: connection.name, subject: connection.name, actor, detail: { policyVersion: parsed.version } });
      await services.state.putConnection(connection, 'replace');
      return { status: 200, body: { ...connectionView(connection, true), warnings: escalationWarnings(parsed.policy) } };
    },

    'GET /v1/connections': async (event) => {
      const { services } = await admin(event);
      const connections = await services.state.listConnections();
      return { status: 200, body: { items: connections.sort((a, b) => a.name.localeCompare(b.name)).map((connection) => connectionView(connection, false)) } };
    },

    'GET /v1/connections/{name}': async (event) => {
      const { services } = await admin(event);
      const connectionName = pathParameter(event, 'name');
      const connection = NAME_PATTERN.test(connectionName) ? await services.state.getConnection(connectionName) : undefined;
      if (!connection) throw new AirlockError(404, 'connection_not_found', `no connection named "${connectionName.slice(0, 64)}"`);
      return { status: 200, body: connectionView(connection, true) };
    },

    'POST /v1/revocations': async (event) => {
      const { services, actor } = await admin(event);
      const input = jsonBody(event, Revocation);
      if (input.agent) {
        const agent = await services.state.getAgentByName(input.agent);
        if (!agent) throw new AirlockError(404, 'agent_not_found', `no agent named "${input.agent}"`);
        const { windowsRevoked, approvalsCancelled, revokedBefore } = await revokeAgent(services, agent, actor);
        return { status: 200, body: { agent: agent.name, windowsRevoked, approvalsCancelled, revokedBefore: new Date(revokedBefore).toISOString() } };
      }
      const connection = await services.state.getConnection(input.connection!);
      if (!connection) throw new AirlockError(404, 'connection_not_found', `no connection named "${input.connection}"`);
      const { windowsRevoked, approvalsCancelled, revokedBefore } = await revokeConnection(services, connection, actor);
      return { status: 200, body: { connection: connection.name, windowsRevoked, approvalsCancelled, revokedBefore: new Date(revokedBefore).toISOString() } };
    },

    'GET /v1/audit': async (event) => {
      const { services } = await admin(event);
      const agent = queryParameter(event, 'agent');
      const connection = queryParameter(event, 'connection');
      const limitText = queryParameter(event, 'limit');
      const type = queryParameter(event, 'type') ?? 'requests';
      for (const [field, value] of [
        ['agent', agent],
        ['connection', connection],
      ] as const) {
        if (value !== undefined && !NAME_PATTERN.test(value)) throw new AirlockError(400, 'invalid_query', `${field}: not a name`);
      }
      const since = instantParameter(event, 'since', services.now());
      const limit = limitText === undefined ? 100 : Number(limitText);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new AirlockError(400, 'invalid_query', 'limit: 1..1000');
      const cursor = queryParameter(event, 'cursor');
      if (cursor !== undefined && !/^[A-Za-z0-9_-]{1,4096}$/.test(cursor)) throw new AirlockError(400, 'invalid_query', 'cursor: not a cursor from a previous page');
      const query = { agent, connection, since, limit, cursor };
      if (type === 'events') {
        const events = await services.records.queryEvents(query);
        return { status: 200, body: { items: events.items.map((e) => ({ ...e, time: new Date(e.time).toISOString() })), ...(events.cursor ? { cursor: events.cursor } : {}) } };
      }
      if (type !== 'requests') throw new AirlockError(400, 'invalid_query', 'type: requests or events');
      const page = await services.records.query(query);
      return {
        status: 200,
        body: {
          ...(page.cursor ? { cursor: page.cursor } : {}),
          items: page.items.map((record) => ({
            id: record.id,
            time: new Date(record.time).toISOString(),
            agent: record.agent,
            connection: record.connection,
            verb: record.verb,
            resource: record.resource ? (record.subresource ? `${record.resource}/${record.subresource}` : record.resource) : record.path,
            namespace: record.namespace,
            name: record.name,
            decision: record.decision,
            status: record.status ?? null,
            reason: record.reason,
            phase: record.phase,
            ...(record.approvalId ? { approvalId: record.approvalId } : {}),
            ...(record.streamEnd ? { streamEnd: record.streamEnd } : {}),
          })),
        },
      };
    },

    'GET /v1/audit/{id}': async (event) => {
      const { services } = await admin(event);
      const id = pathParameter(event, 'id');
      const record = isId(id, 'req') ? await services.records.get(id) : undefined;
      if (!record) throw new AirlockError(404, 'record_not_found', `no request ${id.slice(0, 64)}`);
      const stored = record.transcriptKey ? await services.transcripts.get(record.transcriptKey) : undefined;
      const transcript = stored ?? (record.transcriptSpool ? unspool(record.transcriptSpool) : undefined);
      const { transcriptSpool: _spool, ...shown } = record;
      return {
        status: 200,
        body: {
          record: { ...shown, time: new Date(record.time).toISOString(), ...(record.transcriptSpool ? { transcriptSpooled: true } : {}) },
          transcript: transcript ? (JSON.parse(transcript) as unknown) : null,
        },
      };
    },

    'POST /v1/audit/repair': async (event) => {
      const { services } = await admin(event);
      const spooled = await services.records.listSpooled(500);
      let moved = 0;
      const failed: string[] = [];
      for (const record of spooled) {
        try {
          // Already there (an earlier repair that could not mark the record) counts as stored.
          await services.transcripts.put(record.transcriptKey!, unspool(record.transcriptSpool!));
        } catch {
          failed.push(record.id);
          continue;
        }
        await services.records.markTranscriptStored(record.id);
        moved++;
      }
      return { status: failed.length ? 503 : 200, body: { moved, failed, remaining: spooled.length === 500 } };
    },
  });
}

export const handler = httpHandler(adminRoutes(servicesFromEnvironment(createTranscriptServices)));
