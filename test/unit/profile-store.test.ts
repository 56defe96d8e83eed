// The agent profile store: one profile per (endpoint, agent), a current one, and the
// single profile.json of earlier versions moved into it.
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findProfile, listProfiles, normalizeEndpoint, profileFile, readProfile, removeProfile, writeProfile } from '../../cli/profile.ts';

const fresh = () => mkdtempSync(join(tmpdir(), 'airlock-profiles-'));
const A = { endpoint: 'https://airlock.example:8443', agentId: 'agt_aaaaaaaaaaaaaaaaaaaaaa', secret: 'alk_a' };
const B = { endpoint: 'https://airlock.example:8443', agentId: 'agt_bbbbbbbbbbbbbbbbbbbbbb', secret: 'alk_b' };

describe('agent profile store', () => {
  it('keeps several agents logged in side by side; the last login is the default', () => {
    const dir = fresh();
    writeProfile(A, dir, { makeCurrent: true });
    writeProfile(B, dir, { makeCurrent: true });
    expect(findProfile(A.endpoint, A.agentId, dir)).toMatchObject({ secret: 'alk_a' });
    expect(findProfile(B.endpoint, B.agentId, dir)).toMatchObject({ secret: 'alk_b' });
    expect(readProfile(dir)).toMatchObject({ agentId: B.agentId });
    expect(listProfiles(dir)).toHaveLength(2);
  });

  it('keys a profile by endpoint as well as agent, whatever the spelling of the URL', () => {
    const dir = fresh();
    writeProfile(A, dir, { makeCurrent: true });
    expect(findProfile('HTTPS://Airlock.Example:8443/', A.agentId, dir)).toMatchObject({ secret: 'alk_a' });
    expect(findProfile('https://other.example:8443', A.agentId, dir)).toBeUndefined();
    expect(normalizeEndpoint('https://x.example:443/prod/')).toBe('https://x.example/prod');
  });

  it('updates a profile (windows) without changing the default', () => {
    const dir = fresh();
    writeProfile(A, dir, { makeCurrent: true });
    writeProfile(B, dir);
    writeProfile({ ...B, windows: { prod: 'gr_1' } }, dir);
    expect(readProfile(dir)).toMatchObject({ agentId: A.agentId });
    expect(findProfile(B.endpoint, B.agentId, dir)?.windows).toEqual({ prod: 'gr_1' });
  });

  it('logs one agent out, leaving the others; the default goes with it', () => {
    const dir = fresh();
    writeProfile(A, dir, { makeCurrent: true });
    writeProfile(B, dir, { makeCurrent: true });
    expect(removeProfile(B.endpoint, B.agentId, dir)).toBe(true);
    expect(removeProfile(B.endpoint, B.agentId, dir)).toBe(false);
    expect(findProfile(B.endpoint, B.agentId, dir)).toBeUndefined();
    expect(findProfile(A.endpoint, A.agentId, dir)).toBeDefined();
    expect(readProfile(dir)).toBeUndefined();
  });

  it('moves the single profile.json of earlier versions into the store, as the default', () => {
    const dir = fresh();
    writeFileSync(join(dir, 'profile.json'), JSON.stringify({ ...A, windows: { prod: 'gr_1' } }), { mode: 0o600 });
    expect(readProfile(dir)).toMatchObject({ agentId: A.agentId, windows: { prod: 'gr_1' } });
    expect(existsSync(join(dir, 'profile.json'))).toBe(false);
    expect(findProfile(A.endpoint, A.agentId, dir)).toMatchObject({ secret: 'alk_a' });
  });

  it('names files safely (no path from an agent id) and keeps them private', () => {
    const dir = fresh();
    const file = writeProfile({ ...A, agentId: '../../etc/passwd' }, dir, { makeCurrent: true });
    expect(file).toBe(profileFile(dir, A.endpoint, '../../etc/passwd'));
    expect(file.startsWith(join(dir, 'profiles'))).toBe(true);
    expect(readdirSync(join(dir, 'profiles'))).toHaveLength(1);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('stores an IAM login as agent "iam" at its endpoint', () => {
    const dir = fresh();
    writeProfile({ endpoint: 'https://abc.execute-api.eu-west-1.amazonaws.com/prod', iam: { region: 'eu-west-1' } }, dir, { makeCurrent: true });
    expect(findProfile('https://abc.execute-api.eu-west-1.amazonaws.com/prod', 'iam', dir)).toMatchObject({ iam: { region: 'eu-west-1' } });
  });
});
