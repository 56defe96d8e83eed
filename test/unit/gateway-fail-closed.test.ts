// Fail closed, without a cluster: each dependency of the path made to fail (or
// hang) through the in-memory ports' faults, and what the agent gets, what the
// cluster gets (nothing, unless the record exists) and what the record says.
// The e2e tier (test/e2e/fail-closed.test.ts) proves the same rows against
// DynamoDB/S3/Step Functions emulators and a real API server.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { unspool } from '../../lambdas/core/transcripts.ts';
import { AirlockError } from '../../lambdas/core/status.ts';
import { causeOf, startGateway, type Harness } from '../support/gateway-harness.ts';

const PODS = '/api/v1/namespaces/prod/pods';
const CONFIGMAPS = '/api/v1/namespaces/prod/configmaps';
const create = { path: CONFIGMAPS, method: 'POST', headers: { 'content-type': ['application/json'] }, body: Buffer.from('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fc"}}') };

let world: Harness;
beforeEach(async () => {
  world = await startGateway();
});
afterEach(async () => {
  await world.stop();
});

describe('the write-ahead rule', () => {
  it('nothing is forwarded before the record is written: with the begin hanging, the state is read but forward is never called', async () => {
    world.records.faults.hang('begin');
    const read = vi.spyOn(world.state, 'getProxyContext');
    const handled = world.send({ path: PODS });
    const outcome = await Promise.race([handled.then(() => 'answered'), sleep(200, 'waiting')]);
    expect(outcome).toBe('waiting');
    // The record went out beside the state read, and the two overlap.
    expect(read).toHaveBeenCalledTimes(1);
    expect(world.upstream.forwarded).toEqual([]);
  });

  it('the record begins before the state read answers: with the state read hanging, the record is already there (pending)', async () => {
    world.state.faults.hang('getProxyContext');
    const begin = vi.spyOn(world.records, 'begin');
    void world.send({ path: PODS });
    await vi.waitFor(() => expect(begin).toHaveBeenCalledTimes(1));
    const [record] = [...world.records.records.values()];
    expect(record).toMatchObject({ decision: 'pending', reason: 'checking', phase: 'started', verb: 'list', agent: 'unit-agent' });
    expect(world.upstream.forwarded).toEqual([]);
  });

  it('when the forwarder is called, the record already holds the window-capped timeoutSeconds it forwards', async () => {
    const short = await startGateway({ windowSeconds: 120 });
    try {
      let recordedAtForward: string | undefined;
      short.upstream.onForward = (forwarded) => (recordedAtForward = short.records.records.get(forwarded.headers['audit-id'] ?? '')?.query);
      short.upstream.answer = (_forwarded, response) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{"type":"ADDED","object":{}}\n');
      };
      const sent = await short.send({ path: PODS, query: { watch: ['1'], timeoutSeconds: ['3600'] } });
      await sent.text();
      const forwardedQuery = short.upstream.forwarded[0]?.pathAndQuery.split('?')[1];
      const seconds = Number(new URLSearchParams(forwardedQuery).get('timeoutSeconds'));
      expect(seconds).toBeGreaterThan(100);
      expect(seconds).toBeLessThanOrEqual(120);
      expect(recordedAtForward).toBe(forwardedQuery);
      expect((await sent.record())?.query).toBe(forwardedQuery);
    } finally {
      await short.stop();
    }
  });

  it('a record that cannot be updated with the forwarded query refuses (503), nothing forwarded', async () => {
    world.records.faults.fail('complete');
    const sent = await world.send({ path: PODS, query: { watch: ['1'] } });
    expect(sent.status).toBe(503);
    expect(causeOf(await sent.text())).toBe('recorder_unavailable');
    expect(world.upstream.forwarded).toEqual([]);
    // The record begun beside the state read stays: started, not forwarded.
    expect(await sent.record()).toMatchObject({ phase: 'started', decision: 'pending' });
  });
});

describe('a dependency down', () => {
  it('state store down: 503 state_unavailable for allowed, refused and risky requests alike; nothing forwarded; the begun record says error', async () => {
    world.state.faults.fail('getProxyContext');
    for (const request of [create, { path: '/api/v1/namespaces/prod/secrets' }, { path: `${PODS}/web-0`, method: 'DELETE' }]) {
      const sent = await world.send(request);
      expect(sent.status).toBe(503);
      expect(causeOf(await sent.text())).toBe('state_unavailable');
      expect(await sent.record()).toMatchObject({ decision: 'error', status: 503, phase: 'complete', reason: expect.stringMatching(/^state_unavailable: /) });
    }
    expect(world.upstream.forwarded).toEqual([]);
    expect(world.log.lines.some((line) => line.message === 'state store unavailable; refusing')).toBe(true);
    world.state.faults.clear();
    expect((await world.send(create)).status).toBe(200);
  });

  it('recorder down (begin fails): 503 recorder_unavailable, nothing forwarded; refusals stay what they are', async () => {
    world.records.faults.fail('begin');
    const allowed = await world.send(create);
    expect(allowed.status).toBe(503);
    expect(causeOf(await allowed.text())).toBe('recorder_unavailable');
    await allowed.done;
    const refused = await world.send({ path: '/api/v1/namespaces/prod/secrets' });
    expect(refused.status).toBe(403);
    expect(causeOf(await refused.text())).toBe('forbidden_by_policy');
    await refused.done;
    expect(world.upstream.forwarded).toEqual([]);
    // The refusal could not be recorded either: it is logged, and nothing is left half-written.
    expect(world.records.records.size).toBe(0);
    expect(world.log.lines.filter((line) => line.message === 'could not record a refusal')).toHaveLength(2);
    world.records.faults.clear();
    expect((await world.send(create)).status).toBe(200);
  });

  it('recorder down for a risky request: refused (503), never held or forwarded', async () => {
    const authorize = vi.fn(async () => 'apr_never');
    const gated = await startGateway({ gateway: { approvals: { authorize } } });
    try {
      gated.records.faults.fail('begin');
      const sent = await gated.send({ path: `${PODS}/web-0`, method: 'DELETE', query: { dryRun: ['All'] } });
      expect(sent.status).toBe(503);
      expect(causeOf(await sent.text())).toBe('recorder_unavailable');
      expect(gated.upstream.forwarded).toEqual([]);
    } finally {
      await gated.stop();
    }
  });

  it('record completion fails: the response is still streamed whole; the record stays started (never unrecorded)', async () => {
    world.records.faults.fail('complete');
    const sent = await world.send({ path: PODS });
    expect(sent.status).toBe(200);
    expect(JSON.parse(await sent.text())).toMatchObject({ kind: 'List' });
    expect(world.upstream.forwarded).toHaveLength(1);
    await sent.done;
    expect(world.records.records.get(sent.requestId)).toMatchObject({ phase: 'started', decision: 'pending' });
    expect(world.log.lines.some((line) => line.message === 'could not complete the record')).toBe(true);
  });

  it('transcript store down: forwarded, the write tried 3 times, then the transcript kept in the record, marked incomplete', async () => {
    world.transcripts.faults.fail('put');
    const put = vi.spyOn(world.transcripts, 'put');
    const sent = await world.send(create);
    expect(sent.status).toBe(200);
    const record = await sent.record();
    expect(put).toHaveBeenCalledTimes(3);
    expect(record).toMatchObject({ decision: 'allowed', status: 200, phase: 'incomplete', transcriptError: expect.stringContaining('transcript not written') });
    expect(JSON.parse(unspool(record?.transcriptSpool ?? ''))).toMatchObject({ id: sent.requestId, agent: 'unit-agent', request: { method: 'POST', body: { metadata: { name: 'fc' } } } });
    expect(world.upstream.forwarded).toHaveLength(1);
  });

  it('transcript store down for refusals too: refused as usual, the refusal recorded incomplete with its transcript spooled', async () => {
    world.transcripts.faults.fail('put');
    const sent = await world.send({ path: '/api/v1/namespaces/prod/secrets' });
    expect(sent.status).toBe(403);
    expect(await sent.record()).toMatchObject({ decision: 'denied', phase: 'incomplete', transcriptSpool: expect.any(String) });
  });

  it('a transcript write that landed but answered with an error: the retry is answered as written, and the record is complete', async () => {
    const store = world.transcripts;
    const put = store.put.bind(store);
    let calls = 0;
    vi.spyOn(store, 'put').mockImplementation(async (key, body) => {
      calls += 1;
      await put(key, body);
      if (calls === 1) throw new Error('connection reset after the write');
    });
    const sent = await world.send({ path: PODS });
    expect(await sent.record()).toMatchObject({ phase: 'complete' });
    expect(calls).toBe(2);
  });

  it('approvals not configured: a risky request is refused 403 approval_required, recorded held, never forwarded', async () => {
    const sent = await world.send({ path: `${PODS}/web-0`, method: 'DELETE', query: { dryRun: ['All'] } });
    expect(sent.status).toBe(403);
    expect(causeOf(await sent.text())).toBe('approval_required');
    expect(await sent.record()).toMatchObject({ decision: 'held', status: 403 });
    expect(world.upstream.forwarded).toEqual([]);
  });

  it('the approval workflow down: the gate refuses (503), recorded as error, never forwarded', async () => {
    const gated = await startGateway({
      gateway: {
        approvals: {
          authorize: async () => {
            throw new AirlockError(503, 'approvals_unavailable', 'the approval could not be started');
          },
        },
      },
    });
    try {
      const sent = await gated.send({ path: `${PODS}/web-0`, method: 'DELETE' });
      expect(sent.status).toBe(503);
      expect(causeOf(await sent.text())).toBe('approvals_unavailable');
      expect(await sent.record()).toMatchObject({ decision: 'error', status: 503 });
      expect(gated.upstream.forwarded).toEqual([]);
    } finally {
      await gated.stop();
    }
  });

  it('an unexpected error in a stage: 500 internal, nothing forwarded, recorded as error, logged', async () => {
    const broken = await startGateway({
      gateway: {
        approvals: {
          authorize: async () => {
            throw new TypeError('a bug');
          },
        },
      },
    });
    try {
      const sent = await broken.send({ path: `${PODS}/web-0`, method: 'DELETE' });
      expect(sent.status).toBe(500);
      expect(causeOf(await sent.text())).toBe('internal');
      expect(await sent.record()).toMatchObject({ decision: 'error', status: 500 });
      expect(broken.log.lines.some((line) => line.message === 'unexpected error in the proxy path')).toBe(true);
      expect(broken.upstream.forwarded).toEqual([]);
    } finally {
      await broken.stop();
    }
  });

  it('cluster unreachable: 502 upstream_unavailable, recorded as the allowed request it was, complete with status 502', async () => {
    world.upstream.down();
    const sent = await world.send(create);
    expect(sent.status).toBe(502);
    expect(causeOf(await sent.text())).toBe('upstream_unavailable');
    expect(await sent.record()).toMatchObject({ decision: 'allowed', status: 502, phase: 'complete' });
    expect(await sent.transcript()).toMatchObject({ decision: 'allowed', note: expect.stringContaining('could not be reached'), response: { status: 502 } });
    // Refusals need no cluster.
    const refused = await world.send({ path: '/api/v1/namespaces/prod/secrets' });
    expect(refused.status).toBe(403);
    world.upstream.up();
    expect((await world.send(create)).status).toBe(200);
  });
});
