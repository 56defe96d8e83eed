// One agent, one connection and a clock over the in-memory ports: what the
// lifecycle and the approval gate need, without a cluster or an emulator.
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import type { Agent, Connection, Grant } from '../../lambdas/core/model.ts';
import { parseKubeRequest } from '../../lambdas/core/kube-request.ts';
import { AirlockError } from '../../lambdas/core/status.ts';
import type { Policy } from '../../lambdas/core/policy.ts';
import { RequestApprovals } from '../../lambdas/proxy/approval-gate.ts';
import type { HeldRequest } from '../../lambdas/proxy/gateway.ts';
import { MemoryLog, MemoryNotifier, MemoryRecordStore, MemoryStateStore, MemoryWorkflows } from './memory.ts';
import { policyOf } from './policies.ts';

export const T0 = Date.UTC(2026, 0, 1, 12);

export function lifecycleWorld(policy: Partial<Policy> = {}) {
  let time = T0;
  const state = new MemoryStateStore();
  const records = new MemoryRecordStore();
  const workflows = new MemoryWorkflows();
  const notifier = new MemoryNotifier();
  const log = new MemoryLog();
  const deps = { state, records, workflows, notifier, log, now: () => time };
  const agent: Agent = { id: 'agt_bot', name: 'bot', status: 'enabled', createdAt: T0 - 60_000 };
  const connection: Connection = {
    name: 'prod-cluster',
    server: 'https://k8s.example',
    caPem: '',
    credential: { type: 'token', token: 't' },
    policy: { ...policyOf([{ effect: 'approve', verbs: ['delete', 'patch'] }]), ...policy },
    policyVersion: 'v1',
    createdAt: T0 - 60_000,
    updatedAt: T0 - 60_000,
  };
  state.agents.set(agent.id, structuredClone(agent));
  state.connections.set(connection.name, structuredClone(connection));

  return {
    state,
    records,
    workflows,
    notifier,
    log,
    deps,
    agent,
    connection,
    gate: new RequestApprovals(deps),
    now: () => time,
    advance(ms: number) {
      time += ms;
    },
    /** Event types in the order they were written. */
    eventTypes: () => records.events.map((event) => event.type),
    /** An active window of the agent, stored. */
    activeWindow(id = 'gr_A', durationSeconds = 1800): Grant {
      const grant: Grant = {
        id,
        agentId: agent.id,
        agentName: agent.name,
        connection: connection.name,
        status: 'active',
        reason: 'fix the rollout',
        durationSeconds,
        requestedAt: time,
        activatedAt: time,
        expiresAt: time + durationSeconds * 1000,
        policyVersion: connection.policyVersion,
      };
      state.grants.set(id, structuredClone(grant));
      return grant;
    },
    /** A request the policy holds for approval, as the gateway hands it to the gate. */
    held(grant: Grant, options: { requestId?: string; method?: string; path?: string; body?: string; contentType?: string; policyVersion?: string } = {}): HeldRequest {
      const method = options.method ?? 'DELETE';
      const path = options.path ?? '/api/v1/namespaces/prod/pods/web';
      const body = Buffer.from(options.body ?? '');
      return {
        requestId: options.requestId ?? 'req_1',
        agent,
        connection: options.policyVersion ? { ...connection, policyVersion: options.policyVersion } : connection,
        grant,
        kube: parseKubeRequest(method, path, {}),
        method,
        body,
        bodySha256: createHash('sha256').update(body).digest('hex'),
        contentType: options.contentType,
        decision: { effect: 'approve', ruleIndex: 0, reason: 'rule 1: approve delete, patch' },
      };
    },
  };
}

export type LifecycleWorld = ReturnType<typeof lifecycleWorld>;

/** The AirlockError a promise is refused with (fails the test when it is not refused). */
export async function refusal(promise: Promise<unknown>): Promise<AirlockError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(AirlockError);
  return error as AirlockError;
}
