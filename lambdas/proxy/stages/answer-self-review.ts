// `kubectl auth whoami` and `kubectl auth can-i [--list]` are answered for the
// agent, not for the connection's identity (core/self-reviews.ts): whoami and a
// can-i the policy refuses or holds are answered here, without the cluster; a
// can-i the policy allows is the cluster's own answer (the normal path); a
// --list is the cluster's rules intersected with the policy. Recorded like any
// request: the record is written before this stage, and completed with the answer.
import { answerAccessReview, filterRulesReview, rulesReviewNamespace, subjectReview } from '../../core/self-reviews.ts';
import { AirlockError } from '../../core/status.ts';
import type { GatewayResult } from '../gateway.ts';
import { completeRecord } from './complete-record.ts';
import type { Recorded, ResolvedOptions } from './context.ts';
import { forward } from './forward.ts';

/** A rules review is a short JSON document; anything longer is not one. */
const MAX_RULES_REVIEW_BYTES = 1024 * 1024;

/** The answer to a self review, or undefined when the request takes the normal path. */
export async function answerSelfReview(recorded: Recorded, options: ResolvedOptions): Promise<GatewayResult | undefined> {
  const { selfReview, kube, agent, connection, grant, windowEndsAt, request } = recorded;
  if (selfReview === 'subject') {
    const identity = { agentName: agent.name, agentId: agent.id, connection: connection.name, grantId: grant.id, windowExpiresAt: windowEndsAt };
    return answer(recorded, options, 201, subjectReview(identity, kube.apiVersion || 'v1'), 'whoami answered by Airlock: the agent, its window and connection');
  }
  if (selfReview === 'access') {
    const access = answerAccessReview(connection.policy, request.body, request.headers['content-type']?.[0]);
    if (access.forward) return undefined;
    return answer(recorded, options, 201, access.review, `can-i answered by Airlock: no (${access.decision.reason})`);
  }
  if (selfReview === 'rules') {
    const namespace = rulesReviewNamespace(request.body, request.headers['content-type']?.[0]);
    const { upstream } = await forward(recorded, options);
    const body = await readWhole(upstream, MAX_RULES_REVIEW_BYTES);
    const status = upstream.statusCode ?? 502;
    if (status !== 201) return answer(recorded, options, status, parseOrText(body), 'can-i --list: the cluster refused the review');
    return answer(recorded, options, 201, filterRulesReview(connection.policy, namespace, parseOrText(body)), "can-i --list: the cluster's rules, kept where the policy allows");
  }
  return undefined;
}

function answer(recorded: Recorded, options: ResolvedOptions, status: number, document: unknown, reason: string): GatewayResult {
  const body = typeof document === 'string' ? document : JSON.stringify(document);
  const bytes = Buffer.from(body);
  const headers = { 'content-type': 'application/json', 'x-airlock-request-id': recorded.record.id, 'cache-control': 'no-store' };
  const done = completeRecord({ ...recorded.record, reason }, recorded.request, { status, headers, captured: bytes, complete: true, bytes: bytes.length, contentType: 'application/json' }, options);
  return { response: { statusCode: status, headers, body }, done };
}

async function readWhole(stream: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    length += chunk.length;
    if (length > limit) throw new AirlockError(502, 'upstream_unavailable', `the cluster's rules review is over ${limit} bytes; ask \`kubectl auth can-i VERB RESOURCE\` instead`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
