// A forwarded stream lasts only as long as the access it was allowed under,
// driven through the whole gateway on in-memory ports: a watch the fake
// cluster keeps open ends at the window's end, on a revoke, a disable, or a
// state store that stops answering, and the record says how it ended.
// test/e2e/streams.test.ts proves the same against a real API server.
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { StreamEnd } from '../../lambdas/core/model.ts';
import { openWatch } from '../support/fake-upstream.ts';
import { startGateway, type Harness } from '../support/gateway-harness.ts';

const WATCH = { path: '/api/v1/namespaces/prod/configmaps', query: { watch: ['1'] } };
const EVENT = { type: 'ADDED', object: { kind: 'ConfigMap', metadata: { name: 'a' } } };

let world: Harness | undefined;
afterEach(async () => {
  await world?.stop();
  world = undefined;
});

async function openWatchOn(options: Parameters<typeof startGateway>[0]) {
  world = await startGateway({ ...options, gateway: { streamRecheckMs: 50, streamRecheckTimeoutMs: 200, ...options?.gateway } });
  world.upstream.answer = openWatch([EVENT]);
  const sent = await world.send(WATCH);
  expect(sent.status).toBe(200);
  return { world, sent };
}

async function endedWith(sent: Awaited<ReturnType<Harness['send']>>, how: StreamEnd, cause: string) {
  const lines = (await sent.text())
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; object: { code?: number; details?: { causes?: { reason: string }[] } } });
  expect(lines[0]).toEqual(EVENT);
  expect(lines.at(-1)).toMatchObject({ type: 'ERROR', object: { details: { causes: [{ reason: cause }] } } });
  expect(await sent.record()).toMatchObject({ decision: 'allowed', phase: 'complete', status: 200, streamEnd: how });
  expect(await sent.transcript()).toMatchObject({ streamEnd: { how } });
}

describe('a forwarded watch', () => {
  it("ends at the window's end with a final ERROR event; the record says window-ended", async () => {
    const { sent } = await openWatchOn({ windowSeconds: 2 });
    const started = Date.now();
    await endedWith(sent, 'window-ended', 'window_expired');
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('ends within a recheck of a revoke', async () => {
    const { world, sent } = await openWatchOn({});
    await world.state.transitionGrant(world.grant.id, ['active'], { status: 'revoked' });
    await endedWith(sent, 'revoked', 'window_revoked');
  });

  it.each([
    { what: 'revoke --agent', revoke: (w: Harness) => w.state.setAgentRevokedBefore(w.agent.id, Date.now()) },
    { what: 'revoke --connection', revoke: (w: Harness) => w.state.setConnectionRevokedBefore(w.connection.name, Date.now()) },
  ])('ends within a recheck of $what', async ({ revoke }) => {
    const { world, sent } = await openWatchOn({});
    await revoke(world);
    await endedWith(sent, 'revoked', 'window_revoked');
  });

  it('ends within a recheck of a disable', async () => {
    const { world, sent } = await openWatchOn({});
    await world.state.disableAgent(world.agent.id, Date.now());
    await endedWith(sent, 'agent-disabled', 'agent_disabled');
  });

  it('ends when the state store stops answering (fail closed), with a 503 Status', async () => {
    const { world, sent } = await openWatchOn({});
    world.state.faults.hang('getProxyContext');
    await endedWith(sent, 'state-unavailable', 'state_unavailable');
  });

  it('the agent hanging up ends it: the record says client-closed, and the cluster stops being read', async () => {
    const { world, sent } = await openWatchOn({});
    const body = sent.response.body as Readable;
    body.once('data', () => body.destroy());
    body.resume();
    await sent.done;
    expect(world.records.records.get(sent.requestId)).toMatchObject({ decision: 'allowed', phase: 'complete', streamEnd: 'client-closed' });
  });

  it('the cluster dropping the connection mid-stream: the record says upstream-closed', async () => {
    const { world, sent } = await openWatchOn({});
    const body = sent.response.body as Readable;
    body.once('data', () => world.upstream.closeOpen());
    body.resume();
    await sent.done;
    expect(world.records.records.get(sent.requestId)).toMatchObject({ decision: 'allowed', phase: 'complete', streamEnd: 'upstream-closed' });
  });

  it('that the cluster ends by itself completes; a response larger than the capture is counted whole and its transcript says so', async () => {
    world = await startGateway({ gateway: { transcriptCaptureBytes: 64 } });
    const big = { kind: 'List', apiVersion: 'v1', items: Array.from({ length: 50 }, (_, i) => ({ name: `item-${i}` })) };
    world.upstream.answer = (_forwarded, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(big));
    };
    const sent = await world.send({ path: '/api/v1/namespaces/prod/configmaps' });
    expect(JSON.parse(await sent.text())).toEqual(big);
    const record = await sent.record();
    expect(record).toMatchObject({ streamEnd: 'complete', responseBytes: JSON.stringify(big).length });
    expect(JSON.stringify((await sent.transcript())?.response)).not.toContain('item-49');
  });
});
