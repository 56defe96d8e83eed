// The stream guard on its own, over a real local HTTP response that never ends
// by itself (a `logs -f` or a watch the API server keeps open): it ends at the
// window's end, on a recheck refusal, on a failed or hung state read, and a
// watch's final ERROR event never lands inside a cut event.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AirlockError } from '../../lambdas/core/status.ts';
import { guardStream, type StreamGuardOptions } from '../../lambdas/proxy/stream-guard.ts';

let server: Server;
let base: string;
/** What each test's upstream writes first, then it stays open. */
let firstBytes = '';
const open = new Set<ServerResponse>();

beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write(firstBytes);
    open.add(res);
    res.on('close', () => open.delete(res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const res of open) res.destroy();
  await new Promise((resolve) => server.close(resolve));
});

function upstream(): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => request(`${base}/`, resolve).on('error', reject).end());
}

async function guarded(overrides: Partial<StreamGuardOptions>, bytes = '{"type":"ADDED","object":{}}\n') {
  firstBytes = bytes;
  const output = new PassThrough();
  let text = '';
  output.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const started = Date.now();
  const outcome = await guardStream({
    upstream: await upstream(),
    output,
    jsonWatch: true,
    windowEndsAt: Date.now() + 60_000,
    capped: false,
    now: Date.now,
    recheck: async () => undefined,
    recheckMs: 50,
    recheckTimeoutMs: 200,
    windowEnded: () => new AirlockError(410, 'window_expired', 'the window ended'),
    ...overrides,
  });
  return { outcome, text, elapsed: Date.now() - started };
}

describe('guardStream', () => {
  it("ends a stream that never ends by itself at the window's end, with a final ERROR event", async () => {
    const { outcome, text, elapsed } = await guarded({ windowEndsAt: Date.now() + 300 });
    expect(outcome).toEqual({ how: 'window-ended', reason: 'the window ended' });
    expect(elapsed).toBeLessThan(1000);
    const lines = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; object: { reason?: string; code?: number } });
    expect(lines[0]!.type).toBe('ADDED');
    expect(lines.at(-1)).toMatchObject({ type: 'ERROR', object: { kind: 'Status', reason: 'Expired', code: 410, message: 'airlock: the window ended' } });
  });

  it('just ends a non-watch stream (logs -f): nothing is added to it', async () => {
    const { outcome, text } = await guarded({ jsonWatch: false, windowEndsAt: Date.now() + 200 }, 'log line 1\n');
    expect(outcome.how).toBe('window-ended');
    expect(text).toBe('log line 1\n');
  });

  it('ends the stream when a recheck finds the window revoked or the agent disabled', async () => {
    const revoked = await guarded({ recheck: async () => Promise.reject(new AirlockError(403, 'window_revoked', 'access window gr_1 was revoked')) });
    expect(revoked.outcome).toEqual({ how: 'revoked', reason: 'access window gr_1 was revoked (Airlock ended this stream)' });
    const disabled = await guarded({ recheck: async () => Promise.reject(new AirlockError(403, 'agent_disabled', 'agent "a" is disabled')) });
    expect(disabled.outcome.how).toBe('agent-disabled');
    expect(disabled.text).toContain('"reason":"agent_disabled"');
  });

  it('fails closed: a state read that fails, or hangs past its timeout, ends the stream', async () => {
    const failed = await guarded({ recheck: async () => Promise.reject(new Error('ECONNREFUSED')) });
    expect(failed.outcome.how).toBe('state-unavailable');
    expect(failed.text).toContain('"code":503');
    const hung = await guarded({ recheck: () => new Promise(() => undefined), recheckTimeoutMs: 100 });
    expect(hung.outcome.how).toBe('state-unavailable');
    expect(hung.elapsed).toBeLessThan(1000);
  });

  it('drops a cut event rather than write the ERROR event into it', async () => {
    const { text } = await guarded({ windowEndsAt: Date.now() + 200 }, '{"type":"ADDED","object":{}}\n{"type":"MODIFIED","obj');
    const lines = text.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.map((line) => (JSON.parse(line) as { type: string }).type)).toEqual(['ADDED', 'ERROR']);
  });
});
