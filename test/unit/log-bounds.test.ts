// core/log-bounds.ts: an agent's log read that names no bound gets Airlock's; one that names its own keeps it.
import { describe, expect, it } from 'vitest';
import { parseKubeRequest } from '../../lambdas/core/kube-request.ts';
import { boundLogRead, checkLogReadLimits, DEFAULT_LOG_READ_LIMITS, logBoundWarning } from '../../lambdas/core/log-bounds.ts';

const LIMITS = { limitBytes: 4096, tailLines: 4 };
const logRead = (query: Record<string, string[]> = {}) => parseKubeRequest('GET', '/api/v1/namespaces/prod/pods/web-0/log', query);

describe('boundLogRead', () => {
  it('adds both defaults to a log read that names neither, and says what it added', () => {
    const kube = logRead({ container: ['app'], follow: ['true'] });
    const bound = boundLogRead(kube, kube.query, LIMITS);
    expect(new URLSearchParams(bound.query).get('limitBytes')).toBe('4096');
    expect(new URLSearchParams(bound.query).get('tailLines')).toBe('4');
    expect(new URLSearchParams(bound.query).get('container')).toBe('app');
    expect(bound.added).toBe('limitBytes=4096, tailLines=4');
  });

  it("keeps the client's own bounds, larger ones too, and adds only what is missing", () => {
    const tail = logRead({ tailLines: ['100000'] });
    expect(boundLogRead(tail, tail.query, LIMITS)).toEqual({ query: `${tail.query}&limitBytes=4096`, added: 'limitBytes=4096' });
    const both = logRead({ tailLines: ['10'], limitBytes: ['99999999'] });
    expect(boundLogRead(both, both.query, LIMITS)).toEqual({ query: both.query, added: undefined });
  });

  it('leaves every other request alone: pods, other subresources, non-GET', () => {
    for (const kube of [
      parseKubeRequest('GET', '/api/v1/namespaces/prod/pods/web-0', {}),
      parseKubeRequest('GET', '/api/v1/namespaces/prod/pods', {}),
      parseKubeRequest('GET', '/api/v1/namespaces/prod/pods/web-0/status', {}),
      parseKubeRequest('GET', '/api/v1/namespaces/prod/pods/web-0/ephemeralcontainers', {}),
      parseKubeRequest('DELETE', '/api/v1/namespaces/prod/pods/web-0', {}),
    ]) {
      expect(boundLogRead(kube, kube.query, LIMITS)).toEqual({ query: kube.query, added: undefined });
    }
  });

  it('states the bound as a Warning kubectl prints', () => {
    expect(logBoundWarning('tailLines=4')).toBe('299 - "airlock: this log read is bounded to tailLines=4 (Airlock\'s defaults for agents); ask for more with --limit-bytes / --tail"');
  });
});

describe('checkLogReadLimits', () => {
  it('fills in the defaults and refuses anything but whole numbers of at least 1', () => {
    expect(checkLogReadLimits({})).toEqual(DEFAULT_LOG_READ_LIMITS);
    expect(checkLogReadLimits({ tailLines: 5 })).toEqual({ ...DEFAULT_LOG_READ_LIMITS, tailLines: 5 });
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => checkLogReadLimits({ limitBytes: bad })).toThrow(/limitBytes must be a whole number of at least 1/);
  });
});
