// The deadline Airlock forwards: a watch's timeoutSeconds, and any other
// request's `timeout`, never run past the window's end.
import { describe, expect, it } from 'vitest';
import { parseKubeRequest } from '../../lambdas/core/kube-request.ts';
import { AirlockError } from '../../lambdas/core/status.ts';
import { windowBoundQuery } from '../../lambdas/core/windows.ts';

const NOW = 1_800_000_000_000;
const WATCH = '/api/v1/namespaces/prod/configmaps';

function bound(path: string, query: Record<string, string[]>, secondsLeft: number, method = 'GET') {
  return windowBoundQuery(parseKubeRequest(method, path, query), NOW + secondsLeft * 1000, NOW);
}

function params(query: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of new URLSearchParams(query)) (out[name] ??= []).push(value);
  return out;
}

describe('windowBoundQuery: a watch', () => {
  it('caps an agent timeoutSeconds of 3600 to the whole seconds left', () => {
    const result = bound(WATCH, { watch: ['1'], timeoutSeconds: ['3600'] }, 90.7);
    expect(result).toEqual({ query: 'watch=1&timeoutSeconds=90', capped: true });
  });

  it('sets timeoutSeconds when absent, and when 0 (the server default of 30-60 min)', () => {
    expect(bound(WATCH, { watch: ['true'] }, 300)).toEqual({ query: 'watch=true&timeoutSeconds=300', capped: true });
    expect(params(bound(WATCH, { watch: ['true'], timeoutSeconds: ['0'] }, 300).query).timeoutSeconds).toEqual(['300']);
  });

  it('caps the legacy /watch/ path the same way', () => {
    expect(bound('/api/v1/watch/namespaces/prod/configmaps', {}, 45)).toEqual({ query: 'timeoutSeconds=45', capped: true });
  });

  it('keeps a shorter timeoutSeconds the agent asked for, unchanged', () => {
    expect(bound(WATCH, { watch: ['1'], timeoutSeconds: ['30'], labelSelector: ['a=b'] }, 300)).toEqual({ query: 'watch=1&timeoutSeconds=30&labelSelector=a%3Db', capped: false });
  });

  it('never forwards 0 (which would mean the default) when less than a second is left', () => {
    expect(params(bound(WATCH, { watch: ['1'] }, 0.4).query).timeoutSeconds).toEqual(['1']);
  });

  it.each([['-1'], ['+5'], ['1e3'], ['5s'], ['']])('refuses timeoutSeconds=%j (400 invalid_query): Airlock must read it as the API server does', (value) => {
    expect(() => bound(WATCH, { watch: ['1'], timeoutSeconds: [value] }, 300)).toThrow(AirlockError);
  });

  it('refuses two timeoutSeconds values', () => {
    expect(() => bound(WATCH, { watch: ['1'], timeoutSeconds: ['10', '3600'] }, 300)).toThrow(/more than one timeoutSeconds/);
  });
});

describe('windowBoundQuery: other requests', () => {
  it('leaves a request alone while the server default (60 s) ends before the window', () => {
    expect(bound(WATCH, {}, 600)).toEqual({ query: '', capped: false });
    expect(bound(WATCH, { timeout: ['30s'] }, 600)).toEqual({ query: 'timeout=30s', capped: false });
  });

  it('sets the API server deadline in the last minute of the window', () => {
    expect(bound(WATCH, { limit: ['500'] }, 20.5)).toEqual({ query: 'limit=500&timeout=20s', capped: true });
    expect(bound(`${WATCH}`, {}, 20, 'POST')).toEqual({ query: 'timeout=20s', capped: true });
  });

  it('caps a longer timeout the agent sent (Go duration syntax)', () => {
    expect(bound(WATCH, { timeout: ['1h0m0s'] }, 600).query).toBe('timeout=600s');
    expect(bound(WATCH, { timeout: ['90.5m'] }, 600).query).toBe('timeout=600s');
    expect(bound(WATCH, { timeout: ['500ms'] }, 600)).toEqual({ query: 'timeout=500ms', capped: false });
  });

  it('refuses a timeout that is not a duration', () => {
    expect(() => bound(WATCH, { timeout: ['forever'] }, 600)).toThrow(/not a duration/);
  });

  it('leaves pods/log and the proxy subresource alone (no deadline there; the proxy query belongs to the pod)', () => {
    expect(bound('/api/v1/namespaces/prod/pods/web-0/log', { follow: ['true'] }, 20)).toEqual({ query: 'follow=true', capped: false });
    expect(bound('/api/v1/namespaces/prod/pods/web-0/proxy', { timeout: ['1h'] }, 20)).toEqual({ query: 'timeout=1h', capped: false });
  });
});
