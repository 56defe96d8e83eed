// The gateway on in-memory ports (memory.ts), a real TokenService and a fake
// upstream (fake-upstream.ts): one agent with an active window on one
// connection, and a `send` that returns what the agent got and, once the
// request is done, its record and transcript. No emulator, no cluster.
import type { Readable } from 'node:stream';
import type { Agent, Connection, Grant, RequestRecord } from '../../lambdas/core/model.ts';
import type { PolicyRule } from '../../lambdas/core/policy.ts';
import { generateSigningKey, TokenService } from '../../lambdas/core/tokens.ts';
import { Gateway, type GatewayOptions, type GatewayResult, type ProxyRequest } from '../../lambdas/proxy/gateway.ts';
import { ConnectionUpstreamAuth } from '../../lambdas/proxy/upstream-auth.ts';
import { GatewayClusterReader } from '../../lambdas/proxy/cluster-reader.ts';
import { FakeUpstream } from './fake-upstream.ts';
import { MemoryLog, MemoryRecordStore, MemoryStateStore, MemoryTranscriptStore } from './memory.ts';
import { policyOf } from './policies.ts';

/** prod: read pods and configmaps, create configmaps and pods; secrets denied; deleting pods needs an approval. */
export const RULES: PolicyRule[] = [
  { effect: 'deny', resources: ['secrets'] },
  { effect: 'approve', verbs: ['delete', 'deletecollection'], resources: ['pods'], namespaces: ['prod'] },
  { effect: 'allow', verbs: ['get', 'list', 'watch'], resources: ['pods', 'pods/log', 'configmaps'], namespaces: ['prod'] },
  { effect: 'allow', verbs: ['create'], resources: ['configmaps', 'pods'], namespaces: ['prod'] },
  { effect: 'allow', verbs: ['exec'], resources: ['pods/exec'], namespaces: ['prod'] },
];

export interface Sent extends GatewayResult {
  status: number;
  requestId: string;
  /** The whole body (for a response that ends). */
  text(): Promise<string>;
  /** The record once the body is read and the request done (record and transcript written). */
  record(): Promise<RequestRecord | undefined>;
  /** The transcript once the request is done. */
  transcript(): Promise<Record<string, unknown> | undefined>;
}

export interface Harness {
  gateway: Gateway;
  state: MemoryStateStore;
  records: MemoryRecordStore;
  transcripts: MemoryTranscriptStore;
  upstream: FakeUpstream;
  log: MemoryLog;
  agent: Agent;
  connection: Connection;
  grant: Grant;
  token: string;
  /** The harness's token service: a test issues its own tokens (bound to a plan, ...). */
  tokens: TokenService;
  send(request: Partial<ProxyRequest> & { path: string }): Promise<Sent>;
  stop(): Promise<void>;
}

export async function startGateway(
  options: { rules?: PolicyRule[]; windowSeconds?: number; gateway?: Partial<GatewayOptions>; /** A recorded ClusterReader on the fake upstream, for previews. */ clusterReader?: boolean } = {},
): Promise<Harness> {
  const now = Date.now();
  const state = new MemoryStateStore();
  const records = new MemoryRecordStore();
  const transcripts = new MemoryTranscriptStore();
  const upstream = await FakeUpstream.start();
  const tokens = new TokenService({ current: await generateSigningKey() }, { issuer: 'airlock-unit' });
  const log = new MemoryLog();

  const agent: Agent = { id: 'agt_unit', name: 'unit-agent', status: 'enabled', createdAt: now - 60_000 };
  const connection: Connection = {
    name: 'prod',
    server: 'https://cluster.invalid',
    caPem: 'unused by the fake upstream',
    credential: { type: 'token', token: 'the-connection-credential' },
    policy: policyOf(options.rules ?? RULES),
    policyVersion: 'sha256:unit',
    createdAt: now - 60_000,
    updatedAt: now - 60_000,
  };
  const grant: Grant = {
    id: 'win_unit',
    agentId: agent.id,
    agentName: agent.name,
    connection: connection.name,
    status: 'active',
    reason: 'unit tests',
    durationSeconds: options.windowSeconds ?? 1800,
    requestedAt: now - 1000,
    activatedAt: now - 500,
    expiresAt: now + (options.windowSeconds ?? 1800) * 1000,
    policyVersion: connection.policyVersion,
  };
  await state.createAgent(agent);
  await state.putConnection(connection, 'create');
  await state.createGrant(grant);
  // The token may outlive a short test window: the window read per request is what ends access.
  const { token } = await tokens.issue({ agentId: agent.id, agentName: agent.name, connection: connection.name, grantId: grant.id, windowExpiresAt: now + 600_000 });

  const gateway = new Gateway({
    state,
    records,
    transcripts,
    tokens,
    upstreamAuth: new ConnectionUpstreamAuth(),
    forwarder: upstream.forwarder,
    log,
    ...(options.clusterReader ? { cluster: new GatewayClusterReader({ forwarder: upstream.forwarder, upstreamAuth: new ConnectionUpstreamAuth(), records, transcripts, now: Date.now }) } : {}),
    ...options.gateway,
  });

  async function send(request: Partial<ProxyRequest> & { path: string }): Promise<Sent> {
    const result = await gateway.handle({
      connection: connection.name,
      method: 'GET',
      query: {},
      body: Buffer.alloc(0),
      ...request,
      headers: { authorization: [`Bearer ${token}`], ...request.headers },
    });
    const { response, done } = result;
    const requestId = response.headers['x-airlock-request-id'] ?? '';
    // Read once: a streamed body must be read for the request to end.
    let text: Promise<string> | undefined;
    const read = () => (text ??= textOf(response.body));
    const finished = async () => {
      await read();
      await done;
    };
    return {
      ...result,
      status: response.statusCode,
      requestId,
      text: read,
      record: async () => {
        await finished();
        return records.get(requestId);
      },
      transcript: async () => {
        await finished();
        const record = records.records.get(requestId);
        const body = record?.transcriptKey ? transcripts.objects.get(record.transcriptKey) : undefined;
        return body === undefined ? undefined : (JSON.parse(body) as Record<string, unknown>);
      },
    };
  }

  return { gateway, state, records, transcripts, upstream, log, agent, connection, grant, token, tokens, send, stop: () => upstream.stop() };
}

async function textOf(body: Readable | string): Promise<string> {
  if (typeof body === 'string') return body;
  let text = '';
  for await (const chunk of body) text += (chunk as Buffer).toString('utf8');
  return text;
}

/** The Kubernetes Status a refusal answers with: its cause code. */
export function causeOf(text: string): string | undefined {
  return (JSON.parse(text) as { details?: { causes?: { reason: string }[] } }).details?.causes?.[0]?.reason;
}
