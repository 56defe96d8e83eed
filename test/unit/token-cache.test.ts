// The exec plugin's token cache (cli/token-cache.ts) and its entry (cli/airlock-token.ts):
// private files, one per (endpoint, agent, connection, window, plan), never handed out
// within a minute of expiry, gone with logout; the entry answers from it without the CLI.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeProfile } from '../../cli/profile.ts';
import { execCredential, readCachedToken, removeCachedTokens, TOKEN_REUSE_MARGIN_MS, writeCachedToken, type TokenCacheKey } from '../../cli/token-cache.ts';

const fresh = () => mkdtempSync(join(tmpdir(), 'airlock-token-cache-'));
const NOW = Date.parse('2026-01-01T00:00:00Z');
const KEY: TokenCacheKey = { endpoint: 'https://airlock.example:8443', agent: 'agt_aaaaaaaaaaaaaaaaaaaaaa', connection: 'prod', window: 'gr_1' };
const inMinutes = (minutes: number) => new Date(NOW + minutes * 60_000).toISOString();

describe('token cache', () => {
  it('hands a stored token out again until shortly before it expires', () => {
    const dir = fresh();
    writeCachedToken(dir, KEY, { token: 'a.b.c', expiresAt: inMinutes(10) });
    expect(readCachedToken(dir, KEY, NOW)).toEqual({ token: 'a.b.c', expiresAt: inMinutes(10) });
    expect(readCachedToken(dir, KEY, NOW + 10 * 60_000 - TOKEN_REUSE_MARGIN_MS - 1)).toBeDefined();
    expect(readCachedToken(dir, KEY, NOW + 10 * 60_000 - TOKEN_REUSE_MARGIN_MS)).toBeUndefined();
  });

  it('keeps one private file per endpoint, agent, connection, window and plan', () => {
    const dir = fresh();
    writeCachedToken(dir, KEY, { token: 'a.b.c', expiresAt: inMinutes(10) });
    for (const other of [
      { ...KEY, window: 'gr_2' },
      { ...KEY, connection: 'staging' },
      { ...KEY, agent: 'agt_b' },
      { ...KEY, endpoint: 'https://other.example' },
      { ...KEY, plan: 'pl_1', mode: 'plan' },
    ]) {
      expect(readCachedToken(dir, other, NOW)).toBeUndefined();
    }
    expect(readCachedToken(dir, { ...KEY, endpoint: 'HTTPS://Airlock.Example:8443/' }, NOW)).toBeDefined();
    const [file] = readdirSync(join(dir, 'tokens'));
    expect(statSync(join(dir, 'tokens', file!)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'tokens')).mode & 0o777).toBe(0o700);
  });

  it("removes an agent's tokens (logout), and only that agent's", () => {
    const dir = fresh();
    const other = { ...KEY, agent: 'agt_b' };
    writeCachedToken(dir, KEY, { token: 'a.b.c', expiresAt: inMinutes(10) });
    writeCachedToken(dir, other, { token: 'd.e.f', expiresAt: inMinutes(10) });
    removeCachedTokens(dir, KEY);
    expect(readCachedToken(dir, KEY, NOW)).toBeUndefined();
    expect(readCachedToken(dir, other, NOW)).toBeDefined();
  });

  it('ignores a file it cannot read as a token', () => {
    const dir = fresh();
    writeCachedToken(dir, KEY, { token: 'a.b.c', expiresAt: inMinutes(10) });
    const [file] = readdirSync(join(dir, 'tokens'));
    writeFileSync(join(dir, 'tokens', file!), '{not json');
    expect(readCachedToken(dir, KEY, NOW)).toBeUndefined();
  });

  it('the exec entry answers from the cache for a logged-in agent without asking the gateway', () => {
    const dir = fresh();
    const endpoint = 'https://127.0.0.1:9'; // nothing listens: a request would fail
    writeProfile({ endpoint, agentId: KEY.agent, secret: 'alk_x', windows: { prod: 'gr_1' } }, dir, { makeCurrent: true });
    const expiresAt = new Date(Date.now() + 10 * 60_000).toISOString();
    writeCachedToken(dir, { ...KEY, endpoint }, { token: 'a.b.c', expiresAt });
    const out = execFileSync(process.execPath, ['cli/airlock-token.ts', '--endpoint', endpoint, '--agent-id', KEY.agent, '--profile-dir', dir, 'token', '--connection', 'prod'], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(JSON.parse(execCredential({ token: 'a.b.c', expiresAt })));
  });
});
