// EKS tokens and the per-agent upstream credential.
//
// (a) createEksToken against fixed credentials and a fixed clock: the exact
//     token the AWS CLI (botocore) prints for the same inputs, plus every piece
//     recomputed here independently (host, parameters, SigV4 signature).
// (b) EksCredentialProvider with a fake STS client (no STS emulator exists):
//     AssumeRole parameters, cache lifetime, single flight, no cached failures.
// (c) Conformance: tokens run through aws-iam-authenticator's own verifier
//     (test/eks-token, a Go program with a local STS stand-in that checks the
//     signature with aws-sdk-go-v2's signer). Needs Go; skipped without it
//     unless AIRLOCK_E2E=require.
import { spawnSync } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { STSClient, type AssumeRoleCommand, type AssumeRoleCommandOutput } from '@aws-sdk/client-sts';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { EKS_TOKEN_PREFIX, assertClusterName, assertRegion, createEksToken, stsHostFor } from '../../lambdas/adapters/eks-token.ts';
import { EksCredentialProvider, sessionNameFor, tagValueFor, type StsClientLike } from '../../lambdas/adapters/eks-credentials.ts';
import type { AgentSession, EksConnectionTarget } from '../../lambdas/core/ports.ts';

// Fixed test credentials (AWS's documentation example key; not a real secret).
const CREDS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'FwoGZXIvYXdzEXAMPLE/token+with=chars',
};
const FIXED_NOW = new Date('2025-01-02T03:04:05.678Z');
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * What `aws eks get-token --cluster-name C --region R` (aws-cli 1.45.11,
 * botocore 1.43.11) printed with CREDS in the environment and botocore's clock
 * fixed at 2025-01-02T03:04:05Z: an independent implementation's output.
 */
const AWS_CLI_TOKENS = [
  {
    region: 'eu-west-1',
    cluster: 'my-cluster',
    token:
      'k8s-aws-v1.aHR0cHM6Ly9zdHMuZXUtd2VzdC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BS0lERVhBTVBMRSUyRjIwMjUwMTAyJTJGZXUtd2VzdC0xJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNTAxMDJUMDMwNDA1WiZYLUFtei1FeHBpcmVzPTYwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCUzQngtazhzLWF3cy1pZCZYLUFtei1TZWN1cml0eS1Ub2tlbj1Gd29HWlhJdllYZHpFWEFNUExFJTJGdG9rZW4lMkJ3aXRoJTNEY2hhcnMmWC1BbXotU2lnbmF0dXJlPTdkMDA3YWJmMGFhYjYyNjYwNGMxMTEwODA5MmQ2YWEzMmU1MjJhMzUxODA4ZTAzNWI3ZThkZDUyZDBkMDg2NjQ',
  },
  {
    region: 'cn-north-1',
    cluster: 'prod_cluster-01',
    token:
      'k8s-aws-v1.aHR0cHM6Ly9zdHMuY24tbm9ydGgtMS5hbWF6b25hd3MuY29tLmNuLz9BY3Rpb249R2V0Q2FsbGVySWRlbnRpdHkmVmVyc2lvbj0yMDExLTA2LTE1JlgtQW16LUFsZ29yaXRobT1BV1M0LUhNQUMtU0hBMjU2JlgtQW16LUNyZWRlbnRpYWw9QUtJREVYQU1QTEUlMkYyMDI1MDEwMiUyRmNuLW5vcnRoLTElMkZzdHMlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDI1MDEwMlQwMzA0MDVaJlgtQW16LUV4cGlyZXM9NjAmWC1BbXotU2lnbmVkSGVhZGVycz1ob3N0JTNCeC1rOHMtYXdzLWlkJlgtQW16LVNlY3VyaXR5LVRva2VuPUZ3b0daWEl2WVhkekVYQU1QTEUlMkZ0b2tlbiUyQndpdGglM0RjaGFycyZYLUFtei1TaWduYXR1cmU9ZmM5YmMwMzdjMTkxNDFiMDMxMjkwY2UwMDk2YzllOWY4MTZkYWFmZDU1MDljODQyYTRkYmMzZDdhZmNjZDBiYg',
  },
  {
    region: 'us-gov-west-1',
    cluster: 'A',
    token:
      'k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtZ292LXdlc3QtMS5hbWF6b25hd3MuY29tLz9BY3Rpb249R2V0Q2FsbGVySWRlbnRpdHkmVmVyc2lvbj0yMDExLTA2LTE1JlgtQW16LUFsZ29yaXRobT1BV1M0LUhNQUMtU0hBMjU2JlgtQW16LUNyZWRlbnRpYWw9QUtJREVYQU1QTEUlMkYyMDI1MDEwMiUyRnVzLWdvdi13ZXN0LTElMkZzdHMlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDI1MDEwMlQwMzA0MDVaJlgtQW16LUV4cGlyZXM9NjAmWC1BbXotU2lnbmVkSGVhZGVycz1ob3N0JTNCeC1rOHMtYXdzLWlkJlgtQW16LVNlY3VyaXR5LVRva2VuPUZ3b0daWEl2WVhkekVYQU1QTEUlMkZ0b2tlbiUyQndpdGglM0RjaGFycyZYLUFtei1TaWduYXR1cmU9YmEyZGNhZWU0YjJlNmNlZTE4ODY3ZjU0OTI3MTZlM2QzMzYxYTEwMGFhMjA5ZDZjNjYyODlhZTllNjYyOGU3MA',
  },
] as const;

function decodeToken(token: string): URL {
  expect(token.startsWith(EKS_TOKEN_PREFIX)).toBe(true);
  const body = token.slice(EKS_TOKEN_PREFIX.length);
  expect(body).toMatch(/^[A-Za-z0-9_-]+$/); // base64url, no padding
  return new URL(Buffer.from(body, 'base64url').toString('utf8'));
}

function encodeToken(url: string): string {
  return EKS_TOKEN_PREFIX + Buffer.from(url, 'utf8').toString('base64url');
}

// RFC 3986 as SigV4 wants it; written here from the spec, not taken from the code under test.
function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** The SigV4 query signature STS would expect for this presigned GetCallerIdentity URL. */
function expectedSignature(url: URL, cluster: string, secretAccessKey: string): string {
  const params = [...url.searchParams.entries()].filter(([key]) => key !== 'X-Amz-Signature');
  const canonicalQuery = params
    .map(([key, value]) => [rfc3986(key), rfc3986(value)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
  const canonicalRequest = ['GET', '/', canonicalQuery, `host:${url.host}\nx-k8s-aws-id:${cluster}\n`, 'host;x-k8s-aws-id', EMPTY_SHA256].join('\n');
  const amzDate = url.searchParams.get('X-Amz-Date')!;
  const [, date, region, service, terminator] = url.searchParams.get('X-Amz-Credential')!.split('/');
  const scope = [date, region, service, terminator].join('/');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest, 'utf8').digest('hex')].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date!), region!), service!), terminator!);
  return createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
}

// ============================================================== (a) token

describe('createEksToken', () => {
  it.each(AWS_CLI_TOKENS)('equals `aws eks get-token` byte for byte ($region, $cluster)', async ({ region, cluster, token }) => {
    const result = await createEksToken({ clusterName: cluster, region, credentials: CREDS, now: FIXED_NOW });
    expect(result.token).toBe(token);
  });

  it('presigns GetCallerIdentity at the regional endpoint with x-k8s-aws-id signed in', async () => {
    const { token, expiresAt } = await createEksToken({
      clusterName: 'my-cluster',
      region: 'eu-west-1',
      credentials: CREDS,
      now: FIXED_NOW,
    });
    expect(token.startsWith('k8s-aws-v1.')).toBe(true);
    expect(token).not.toMatch(/[=+/]/);
    const url = decodeToken(token);
    expect(url.protocol).toBe('https:');
    expect(url.host).toBe('sts.eu-west-1.amazonaws.com');
    expect(url.pathname).toBe('/');
    expect([...url.searchParams.keys()]).toEqual([
      'Action',
      'Version',
      'X-Amz-Algorithm',
      'X-Amz-Credential',
      'X-Amz-Date',
      'X-Amz-Expires',
      'X-Amz-SignedHeaders',
      'X-Amz-Security-Token',
      'X-Amz-Signature',
    ]);
    const p = Object.fromEntries(url.searchParams);
    expect(p).toMatchObject({
      Action: 'GetCallerIdentity',
      Version: '2011-06-15',
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': 'AKIDEXAMPLE/20250102/eu-west-1/sts/aws4_request',
      'X-Amz-Date': '20250102T030405Z',
      'X-Amz-Expires': '60',
      'X-Amz-SignedHeaders': 'host;x-k8s-aws-id',
      'X-Amz-Security-Token': CREDS.sessionToken,
    });
    expect(p['X-Amz-Signature']).toMatch(/^[0-9a-f]{64}$/);
    expect(p['X-Amz-Signature']).toBe(expectedSignature(url, 'my-cluster', CREDS.secretAccessKey));
    // Values are RFC 3986-encoded in the URL itself (as the CLI writes them).
    expect(url.search).toContain('X-Amz-SignedHeaders=host%3Bx-k8s-aws-id');
    expect(url.search).toContain('X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE%2Ftoken%2Bwith%3Dchars');
    // 15 minutes after X-Amz-Date (whole seconds), the server's rule.
    expect(expiresAt.toISOString()).toBe('2025-01-02T03:19:05.000Z');
  });

  it('binds the token to the cluster: another cluster name changes the signature', async () => {
    const a = decodeToken((await createEksToken({ clusterName: 'a', region: 'eu-west-1', credentials: CREDS, now: FIXED_NOW })).token);
    const b = decodeToken((await createEksToken({ clusterName: 'b', region: 'eu-west-1', credentials: CREDS, now: FIXED_NOW })).token);
    expect(a.searchParams.get('X-Amz-Signature')).not.toBe(b.searchParams.get('X-Amz-Signature'));
    expect(a.searchParams.get('X-Amz-Signature')).toBe(expectedSignature(a, 'a', CREDS.secretAccessKey));
  });

  it('signs correctly for any valid cluster, region and time (independent SigV4 recomputation)', async () => {
    const clusterName = fc.tuple(fc.constantFrom(...'abcXYZ019'), fc.string({ unit: fc.constantFrom(...'aZ9_-'), maxLength: 99 })).map(([first, rest]) => first + rest);
    const region = fc.constantFrom('us-east-1', 'eu-central-2', 'ap-southeast-4', 'cn-northwest-1', 'us-gov-east-1', 'il-central-1');
    const when = fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2035-01-01T00:00:00Z'), noInvalidDate: true });
    await fc.assert(
      fc.asyncProperty(clusterName, region, when, async (cluster, reg, now) => {
        const { token, expiresAt } = await createEksToken({ clusterName: cluster, region: reg, credentials: CREDS, now });
        const url = decodeToken(token);
        expect(url.host).toBe(reg.startsWith('cn-') ? `sts.${reg}.amazonaws.com.cn` : `sts.${reg}.amazonaws.com`);
        expect(url.searchParams.get('X-Amz-Signature')).toBe(expectedSignature(url, cluster, CREDS.secretAccessKey));
        expect(expiresAt.getTime()).toBe(Math.floor(now.getTime() / 1000) * 1000 + 15 * 60_000);
      }),
      { numRuns: 40 },
    );
  });

  it('omits X-Amz-Security-Token for long-term keys', async () => {
    const { accessKeyId, secretAccessKey } = CREDS;
    const { token } = await createEksToken({ clusterName: 'c', region: 'us-east-1', credentials: { accessKeyId, secretAccessKey }, now: FIXED_NOW });
    const url = decodeToken(token);
    expect(url.searchParams.has('X-Amz-Security-Token')).toBe(false);
    expect(url.searchParams.get('X-Amz-Signature')).toBe(expectedSignature(url, 'c', secretAccessKey));
  });

  it('uses the regional STS endpoint of each partition, never the global one', () => {
    expect(stsHostFor('us-east-1')).toBe('sts.us-east-1.amazonaws.com');
    expect(stsHostFor('cn-north-1')).toBe('sts.cn-north-1.amazonaws.com.cn');
    expect(stsHostFor('us-gov-west-1')).toBe('sts.us-gov-west-1.amazonaws.com');
  });

  it.each(['a', 'A', '0', 'my-cluster', 'prod_cluster-01', 'x'.repeat(100)])('accepts cluster name %j', (name) => {
    expect(() => assertClusterName(name)).not.toThrow();
  });

  it.each(['', '-leading-dash', '_leading', 'has space', 'dot.ted', 'ünï', 'a/b', 'x'.repeat(101)])('rejects cluster name %j', async (name) => {
    await expect(createEksToken({ clusterName: name, region: 'eu-west-1', credentials: CREDS })).rejects.toThrow(/invalid EKS cluster name/);
  });

  it.each(['us-east-1', 'eu-west-3', 'ap-northeast-2', 'cn-north-1', 'us-gov-west-1', 'me-central-1'])('accepts region %s', (region) => {
    expect(() => assertRegion(region)).not.toThrow();
  });

  it.each(['', 'US-EAST-1', 'us-east', 'useast1', 'us-east-10', 'us-iso-east-1', 'eu-west-1.evil.example', 'eu-west-1/', 'global'])('rejects region %j', async (region) => {
    await expect(createEksToken({ clusterName: 'c', region, credentials: CREDS })).rejects.toThrow(/invalid AWS region/);
  });

  it('rejects missing credentials and invalid dates', async () => {
    await expect(createEksToken({ clusterName: 'c', region: 'eu-west-1', credentials: { accessKeyId: '', secretAccessKey: 'x' } })).rejects.toThrow(/access key id/);
    await expect(createEksToken({ clusterName: 'c', region: 'eu-west-1', credentials: CREDS, now: new Date('nonsense') })).rejects.toThrow(/not a valid date/);
  });
});

describe('sessionNameFor', () => {
  const stsName = /^[\w+=,.@-]{2,64}$/;

  it('prefixes a name that already fits', () => {
    expect(sessionNameFor('ci-bot')).toBe('airlock-ci-bot');
    expect(sessionNameFor('Deploy.Agent@team+1,x')).toBe('airlock-Deploy.Agent@team+1,x');
    expect(sessionNameFor('x')).toBe('airlock-x');
    const longest = 'a'.repeat(56);
    expect(sessionNameFor(longest)).toBe(`airlock-${longest}`);
  });

  it('sanitises, truncates and appends a hash of the original otherwise', () => {
    const hash = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 12);
    expect(sessionNameFor('Claude Code / agent#1')).toBe(`airlock-Claude-Code---agent-1=${hash('Claude Code / agent#1')}`);
    expect(sessionNameFor('k=v')).toBe(`airlock-k-v=${hash('k=v')}`);
    expect(sessionNameFor('агент')).toBe(`airlock------=${hash('агент')}`);
    const long = 'a'.repeat(57);
    const name = sessionNameFor(long);
    expect(name).toBe(`airlock-${'a'.repeat(43)}=${hash(long)}`);
    expect(name).toHaveLength(64);
  });

  it('keeps names apart that differ only after the cut or only in replaced characters', () => {
    const base = 'agent-'.repeat(10);
    expect(sessionNameFor(base + 'one')).not.toBe(sessionNameFor(base + 'two'));
    expect(sessionNameFor('a b')).not.toBe(sessionNameFor('a/b'));
    // A plain name can never equal a hashed one: plain names contain no '='.
    const hashed = sessionNameFor('a b');
    expect(sessionNameFor(hashed.slice('airlock-'.length))).not.toBe(hashed);
  });

  it('is deterministic, always valid for STS, and injective on random names', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 200, unit: 'grapheme' }), (name) => {
        const result = sessionNameFor(name);
        expect(result).toMatch(stsName);
        expect(result.startsWith('airlock-')).toBe(true);
        expect(sessionNameFor(name)).toBe(result);
      }),
    );
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 90 }), fc.string({ minLength: 1, maxLength: 90 }), (a, b) => {
        fc.pre(a !== b);
        expect(sessionNameFor(a)).not.toBe(sessionNameFor(b));
      }),
    );
  });

  it('refuses an empty name', () => {
    expect(() => sessionNameFor('')).toThrow(/empty/);
  });
});

describe('tagValueFor', () => {
  it('keeps values STS accepts, including letters of any script and spaces', () => {
    for (const value of ['ci-bot', 'gr_0123456789abcdefABCDEF', 'Agent Ölund 7', 'a:b/c=d+e-f@g.h', 'x'.repeat(256)]) {
      expect(tagValueFor(value)).toBe(value);
    }
  });

  it('replaces what STS refuses and marks the change with a hash', () => {
    const result = tagValueFor('bot#1 (prod)');
    expect(result).toMatch(/^bot_1 _prod_=[0-9a-f]{12}$/);
    const long = tagValueFor('y'.repeat(300));
    expect(Array.from(long)).toHaveLength(256);
    expect(long).toMatch(/^y{243}=[0-9a-f]{12}$/);
  });
});

// ============================================================== (b) provider

interface FakeSts extends StsClientLike {
  calls: AssumeRoleCommand['input'][];
  regions: string[];
}

const T0 = Date.parse('2025-01-02T03:04:05Z');
const MIN = 60_000;

function fakeSts(respond: (input: AssumeRoleCommand['input'], call: number) => Promise<AssumeRoleCommandOutput> | AssumeRoleCommandOutput): {
  factory: (region: string) => StsClientLike;
  sts: FakeSts;
} {
  const sts: FakeSts = {
    calls: [],
    regions: [],
    async send(command) {
      sts.calls.push(structuredClone(command.input));
      return respond(command.input, sts.calls.length);
    },
  };
  return {
    sts,
    factory: (region) => {
      sts.regions.push(region);
      return sts;
    },
  };
}

function assumed(clock: () => number, call: number, lifetimeMs = 15 * MIN): AssumeRoleCommandOutput {
  return {
    $metadata: {},
    Credentials: {
      AccessKeyId: `ASIAFAKE${String(call).padStart(4, '0')}`,
      SecretAccessKey: `secret-${call}`,
      SessionToken: `session-token-${call}`,
      Expiration: new Date(clock() + lifetimeMs),
    },
  };
}

const SESSION: AgentSession = { agentId: 'agt_0001', agentName: 'ci-bot', grantId: 'gr_window1' };
const TARGET: EksConnectionTarget = {
  connectionName: 'prod',
  clusterName: 'prod-cluster',
  region: 'eu-west-1',
  roleArn: 'arn:aws:iam::111122223333:role/airlock/prod-eks',
};

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('EksCredentialProvider', () => {
  it('assumes the connection role as the agent and mints a token with those credentials', async () => {
    const clock = () => T0;
    const { factory, sts } = fakeSts((_input, call) => assumed(clock, call));
    const provider = new EksCredentialProvider({ sts: factory, now: clock });
    expect(sts.regions).toEqual([]); // clients are created lazily

    const credential = await provider.credentialFor(SESSION, TARGET);
    expect(sts.regions).toEqual(['eu-west-1']);
    expect(sts.calls).toEqual([
      {
        RoleArn: 'arn:aws:iam::111122223333:role/airlock/prod-eks',
        RoleSessionName: 'airlock-ci-bot',
        SourceIdentity: 'airlock-ci-bot',
        DurationSeconds: 900,
        Tags: [
          { Key: 'airlock:agent', Value: 'ci-bot' },
          { Key: 'airlock:window', Value: 'gr_window1' },
        ],
      },
    ]);
    expect(sts.calls[0]).not.toHaveProperty('TransitiveTagKeys');
    expect(sts.calls[0]).not.toHaveProperty('ExternalId');

    expect(credential.authorization.startsWith('Bearer k8s-aws-v1.')).toBe(true);
    const url = decodeToken(credential.authorization.slice('Bearer '.length));
    expect(url.host).toBe('sts.eu-west-1.amazonaws.com');
    expect(url.searchParams.get('X-Amz-Credential')).toBe('ASIAFAKE0001/20250102/eu-west-1/sts/aws4_request');
    expect(url.searchParams.get('X-Amz-Security-Token')).toBe('session-token-1');
    expect(url.searchParams.get('X-Amz-Date')).toBe('20250102T030405Z');
    expect(url.searchParams.get('X-Amz-Signature')).toBe(expectedSignature(url, 'prod-cluster', 'secret-1'));
    // One minute before the token's 15 minutes end.
    expect(credential.expiresAt).toBe(T0 + 14 * MIN);
  });

  it('sends the external id when configured, and sanitised names and tags', async () => {
    const clock = () => T0;
    const { factory, sts } = fakeSts((_input, call) => assumed(clock, call));
    const provider = new EksCredentialProvider({ sts: factory, now: clock, externalId: 'ext-123' });
    await provider.credentialFor({ agentId: 'agt_2', agentName: 'Claude #2', grantId: 'gr_2' }, TARGET);
    const input = sts.calls[0]!;
    expect(input.ExternalId).toBe('ext-123');
    expect(input.RoleSessionName).toBe(sessionNameFor('Claude #2'));
    expect(input.SourceIdentity).toBe(input.RoleSessionName);
    expect(input.Tags).toEqual([
      { Key: 'airlock:agent', Value: tagValueFor('Claude #2') },
      { Key: 'airlock:window', Value: 'gr_2' },
    ]);
  });

  it('reuses the credential within its validity and refreshes one minute before the 15 minutes end', async () => {
    let now = T0;
    const clock = () => now;
    const { factory, sts } = fakeSts((_input, call) => assumed(clock, call));
    const provider = new EksCredentialProvider({ sts: factory, now: clock });

    const first = await provider.credentialFor(SESSION, TARGET);
    now = T0 + 14 * MIN - 1;
    expect(await provider.credentialFor(SESSION, TARGET)).toBe(first);
    expect(sts.calls).toHaveLength(1);

    now = T0 + 14 * MIN;
    const second = await provider.credentialFor(SESSION, TARGET);
    expect(second).not.toBe(first);
    expect(sts.calls).toHaveLength(2);
    expect(second.expiresAt).toBe(now + 14 * MIN);
    expect(decodeToken(second.authorization.slice(7)).searchParams.get('X-Amz-Date')).toBe('20250102T031805Z');
    expect(sts.regions).toEqual(['eu-west-1']); // one client per region
  });

  it('never uses a credential past the assumed credentials’ expiry minus one minute', async () => {
    let now = T0;
    const clock = () => now;
    const { factory, sts } = fakeSts((_input, call) => assumed(clock, call, 10 * MIN));
    const provider = new EksCredentialProvider({ sts: factory, now: clock });
    const first = await provider.credentialFor(SESSION, TARGET);
    expect(first.expiresAt).toBe(T0 + 9 * MIN);
    now = T0 + 9 * MIN - 1;
    expect(await provider.credentialFor(SESSION, TARGET)).toBe(first);
    now = T0 + 9 * MIN;
    expect(await provider.credentialFor(SESSION, TARGET)).not.toBe(first);
    expect(sts.calls).toHaveLength(2);
  });

  it('keeps separate credentials per agent, connection, role, cluster and window', async () => {
    const clock = () => T0;
    const { factory, sts } = fakeSts((_input, call) => assumed(clock, call));
    const provider = new EksCredentialProvider({ sts: factory, now: clock });
    const base = await provider.credentialFor(SESSION, TARGET);
    const variants: [AgentSession, EksConnectionTarget][] = [
      [{ ...SESSION, agentId: 'agt_0002', agentName: 'other-bot' }, TARGET],
      [SESSION, { ...TARGET, connectionName: 'prod-2' }],
      [SESSION, { ...TARGET, roleArn: 'arn:aws:iam::111122223333:role/other' }],
      [SESSION, { ...TARGET, clusterName: 'other-cluster' }],
      [{ ...SESSION, grantId: 'gr_window2' }, TARGET],
    ];
    for (const [session, target] of variants) {
      expect(await provider.credentialFor(session, target)).not.toBe(base);
    }
    expect(sts.calls).toHaveLength(1 + variants.length);
    expect(sts.calls.at(-1)!.Tags).toContainEqual({ Key: 'airlock:window', Value: 'gr_window2' });
  });

  it('shares one STS call among concurrent requests for the same key', async () => {
    const clock = () => T0;
    const gate = deferred<void>();
    const { factory, sts } = fakeSts(async (_input, call) => {
      await gate.promise;
      return assumed(clock, call);
    });
    const provider = new EksCredentialProvider({ sts: factory, now: clock });
    const pending = Array.from({ length: 5 }, () => provider.credentialFor(SESSION, TARGET));
    await Promise.resolve();
    expect(sts.calls).toHaveLength(1);
    gate.resolve();
    const results = await Promise.all(pending);
    expect(new Set(results).size).toBe(1);
    expect(sts.calls).toHaveLength(1);
  });

  it('does not cache failures (single flight included)', async () => {
    const clock = () => T0;
    const gate = deferred<void>();
    const { factory, sts } = fakeSts(async (_input, call) => {
      if (call === 1) {
        await gate.promise;
        throw Object.assign(new Error('User is not authorized to perform: sts:TagSession'), { name: 'AccessDenied' });
      }
      return assumed(clock, call);
    });
    const provider = new EksCredentialProvider({ sts: factory, now: clock });
    const concurrent = [provider.credentialFor(SESSION, TARGET), provider.credentialFor(SESSION, TARGET)];
    gate.resolve();
    for (const attempt of concurrent) {
      await expect(attempt).rejects.toThrow('sts:AssumeRole on arn:aws:iam::111122223333:role/airlock/prod-eks for agent ci-bot (connection prod) failed: AccessDenied: User is not authorized');
    }
    expect(sts.calls).toHaveLength(1);
    const error = await concurrent[0]!.catch((e: unknown) => e);
    expect((error as Error).cause).toMatchObject({ name: 'AccessDenied' });

    const retried = await provider.credentialFor(SESSION, TARGET);
    expect(retried.authorization).toMatch(/^Bearer k8s-aws-v1\./);
    expect(sts.calls).toHaveLength(2);
  });

  it('rejects incomplete STS answers without caching them', async () => {
    const clock = () => T0;
    const { factory, sts } = fakeSts((_input, call) => (call === 1 ? { $metadata: {}, Credentials: undefined } : assumed(clock, call)));
    const provider = new EksCredentialProvider({ sts: factory, now: clock });
    await expect(provider.credentialFor(SESSION, TARGET)).rejects.toThrow(/no complete credentials/);
    await expect(provider.credentialFor(SESSION, TARGET)).resolves.toMatchObject({ expiresAt: T0 + 14 * MIN });
    expect(sts.calls).toHaveLength(2);
  });

  it('validates the target before calling STS', async () => {
    const { factory, sts } = fakeSts((_input, call) => assumed(() => T0, call));
    const provider = new EksCredentialProvider({ sts: factory, now: () => T0 });
    await expect(provider.credentialFor(SESSION, { ...TARGET, clusterName: 'bad name' })).rejects.toThrow(/cluster name/);
    await expect(provider.credentialFor(SESSION, { ...TARGET, region: 'sts.amazonaws.com' })).rejects.toThrow(/region/);
    await expect(provider.credentialFor(SESSION, { ...TARGET, roleArn: 'arn:aws:iam::1:role/x' })).rejects.toThrow(/role ARN/);
    await expect(provider.credentialFor(SESSION, { ...TARGET, region: 'cn-north-1' })).rejects.toThrow(/partition aws does not match/);
    await expect(provider.credentialFor({ ...SESSION, grantId: '' }, TARGET)).rejects.toThrow(/grantId/);
    expect(sts.calls).toHaveLength(0);
  });

  it('forgets an agent’s credentials on invalidate', async () => {
    const clock = () => T0;
    const { factory, sts } = fakeSts((_input, call) => assumed(clock, call));
    const provider = new EksCredentialProvider({ sts: factory, now: clock });
    const other: AgentSession = { agentId: 'agt_9', agentName: 'other', grantId: 'gr_9' };
    const mine = await provider.credentialFor(SESSION, TARGET);
    const theirs = await provider.credentialFor(other, TARGET);
    provider.invalidate(SESSION.agentId);
    expect(await provider.credentialFor(other, TARGET)).toBe(theirs);
    expect(await provider.credentialFor(SESSION, TARGET)).not.toBe(mine);
    expect(sts.calls).toHaveLength(3);
  });

  it('never shows the token when the credential is serialised or inspected', async () => {
    const clock = () => T0;
    const { factory } = fakeSts((_input, call) => assumed(clock, call));
    const credential = await new EksCredentialProvider({ sts: factory, now: clock }).credentialFor(SESSION, TARGET);
    expect(JSON.stringify({ credential })).not.toContain('k8s-aws-v1');
    expect(inspect(credential)).not.toContain('k8s-aws-v1');
    expect(`${JSON.stringify(credential)} ${inspect({ nested: credential })}`).toContain('[redacted]');
    expect(Object.isFrozen(credential)).toBe(true);
  });

  it('accepts a real STSClient factory (type-level; never called here)', () => {
    const provider = new EksCredentialProvider({ sts: (region) => new STSClient({ region }) });
    expect(provider).toBeInstanceOf(EksCredentialProvider);
  });
});

// ============================================================== (c) conformance

const moduleDir = resolve(dirname(fileURLToPath(import.meta.url)), '../eks-token');
const requireConformance = process.env.AIRLOCK_E2E === 'require';

function goVersion(): string | undefined {
  const result = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' });
  return result.error || result.status !== 0 ? undefined : result.stdout.trim();
}

function cacheRoot(): string {
  return process.env.AIRLOCK_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'airlock');
}

/** Builds test/eks-token once per content hash into ~/.cache/airlock/eks-token/<hash>/verifier. */
function ensureVerifier(version: string): string {
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'main.go']) hash.update(readFileSync(join(moduleDir, file)));
  hash.update(version);
  const binary = join(cacheRoot(), 'eks-token', hash.digest('hex').slice(0, 16), 'verifier');
  if (existsSync(binary)) return binary;
  mkdirSync(dirname(binary), { recursive: true });
  const partial = `${binary}.partial-${process.pid}`;
  const started = Date.now();
  const result = spawnSync('go', ['build', '-trimpath', '-o', partial, '.'], {
    cwd: moduleDir,
    encoding: 'utf8',
    env: { ...process.env, GOFLAGS: '-mod=readonly', CGO_ENABLED: '0' },
    timeout: 600_000,
  });
  if (result.status !== 0) {
    rmSync(partial, { force: true });
    throw new Error(`go build of test/eks-token failed (${result.status ?? result.signal}):\n${result.stderr}`);
  }
  renameSync(partial, binary);
  console.log(`[eks-token] built the reference verifier with ${version} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${binary}`);
  return binary;
}

interface VerifierResult {
  ok: boolean;
  verifier: string;
  error?: string;
  identity?: { arn: string; canonicalArn: string; sessionName: string; accountId: string; userId: string; accessKeyId: string; stsEndpoint: string };
  standIn: { requests: number; signatureOk: boolean; signedHeaders?: string; clusterHeader?: string; failures?: string[] };
}

interface VerifyOptions {
  cluster: string;
  region: string;
  sessionName: string;
  secretKey?: string;
}

const ROLE_ARN = 'arn:aws:iam::111122223333:role/airlock/prod-eks';
const partitionOfRegion = (region: string) => (region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws');

const go = goVersion();
const conformanceSkip = go ? '' : 'Go is not installed (needed to build the aws-iam-authenticator verifier)';
if (conformanceSkip && !requireConformance) console.log(`eks-token conformance skipped: ${conformanceSkip}`);

describe.skipIf(!go && !requireConformance)('EKS token conformance (aws-iam-authenticator verifier + STS stand-in)', () => {
  let binary = '';
  // Reported by every test (not by the hook), so a missing verifier counts as failed tests, not skipped ones.
  let unavailable: unknown;

  beforeAll(() => {
    try {
      if (!go) throw new Error(`AIRLOCK_E2E=require, but ${conformanceSkip}`);
      binary = ensureVerifier(go);
    } catch (error) {
      unavailable = error;
    }
  }, 600_000);

  function verify(token: string, options: VerifyOptions): { code: number | null; result: VerifierResult } {
    if (unavailable) throw unavailable;
    const args = [
      '-cluster',
      options.cluster,
      '-region',
      options.region,
      '-access-key',
      CREDS.accessKeyId,
      '-secret-key',
      options.secretKey ?? CREDS.secretAccessKey,
      '-session-token',
      CREDS.sessionToken,
      '-role-arn',
      ROLE_ARN.replace('arn:aws:', `arn:${partitionOfRegion(options.region)}:`),
      '-session-name',
      options.sessionName,
    ];
    const run = spawnSync(binary, args, { input: token, encoding: 'utf8', timeout: 30_000 });
    const line = run.stdout.trim().split('\n').at(-1) ?? '';
    let result: VerifierResult;
    try {
      result = JSON.parse(line) as VerifierResult;
    } catch {
      throw new Error(`verifier printed no JSON (exit ${run.status}): ${run.stdout}\n${run.stderr}`);
    }
    return { code: run.status, result };
  }

  it.each([
    ['eu-west-1', 'prod-cluster'],
    ['cn-north-1', 'cn_cluster-1'],
    ['us-gov-west-1', 'G'],
  ])('accepts a token from createEksToken (%s, %s) and reports the session identity', async (region, cluster) => {
    const { token } = await createEksToken({ clusterName: cluster, region, credentials: CREDS, now: new Date() });
    const sessionName = sessionNameFor('ci-bot');
    const { code, result } = verify(token, { cluster, region, sessionName });
    expect(result.error).toBeUndefined();
    expect(code).toBe(0);
    expect(result.ok).toBe(true);
    expect(result.verifier).toBe('sigs.k8s.io/aws-iam-authenticator v0.7.10');
    const partition = partitionOfRegion(region);
    expect(result.identity).toEqual({
      arn: `arn:${partition}:sts::111122223333:assumed-role/prod-eks/airlock-ci-bot`,
      canonicalArn: `arn:${partition}:iam::111122223333:role/prod-eks`,
      sessionName: 'airlock-ci-bot',
      accountId: '111122223333',
      userId: 'AROAEXAMPLEROLEID0001',
      accessKeyId: CREDS.accessKeyId,
      stsEndpoint: stsHostFor(region),
    });
    expect(result.standIn).toMatchObject({ requests: 1, signatureOk: true, signedHeaders: 'host;x-k8s-aws-id', clusterHeader: cluster });
  });

  it('accepts the token the provider mints for an agent (fake STS hands out the test credentials)', async () => {
    const { factory } = fakeSts(() => ({
      $metadata: {},
      Credentials: { ...toStsCredentials(), Expiration: new Date(Date.now() + 15 * MIN) },
    }));
    const agent: AgentSession = { agentId: 'agt_c', agentName: 'Claude Code #7', grantId: 'gr_c' };
    const credential = await new EksCredentialProvider({ sts: factory }).credentialFor(agent, TARGET);
    const sessionName = sessionNameFor(agent.agentName);
    const { code, result } = verify(credential.authorization.replace(/^Bearer /, ''), {
      cluster: TARGET.clusterName,
      region: TARGET.region,
      sessionName,
    });
    expect(result.error).toBeUndefined();
    expect(code).toBe(0);
    expect(result.identity?.sessionName).toBe(sessionName);
    expect(result.identity?.arn).toBe(`arn:aws:sts::111122223333:assumed-role/prod-eks/${sessionName}`);
  });

  // The negative cases show the check is not vacuous.
  it('rejects a token for another cluster (the stand-in’s signature check fails)', async () => {
    const { token } = await createEksToken({ clusterName: 'cluster-a', region: 'eu-west-1', credentials: CREDS });
    const { code, result } = verify(token, { cluster: 'cluster-b', region: 'eu-west-1', sessionName: 'airlock-x' });
    expect(code).not.toBe(0);
    expect(result.ok).toBe(false);
    expect(result.standIn.failures?.join(' ')).toMatch(/x-k8s-aws-id header|X-Amz-Signature does not match/);
  });

  it('rejects a token signed with another secret key', async () => {
    const { token } = await createEksToken({ clusterName: 'c', region: 'eu-west-1', credentials: { ...CREDS, secretAccessKey: 'not-the-key' } });
    const { code, result } = verify(token, { cluster: 'c', region: 'eu-west-1', sessionName: 'airlock-x' });
    expect(code).not.toBe(0);
    expect(result.standIn.failures).toEqual(['X-Amz-Signature does not match the signature recomputed with the test credentials']);
  });

  it('rejects an expired token (signed 16 minutes ago) in the reference verifier itself', async () => {
    const { token } = await createEksToken({ clusterName: 'c', region: 'eu-west-1', credentials: CREDS, now: new Date(Date.now() - 16 * MIN) });
    const { code, result } = verify(token, { cluster: 'c', region: 'eu-west-1', sessionName: 'airlock-x' });
    expect(code).not.toBe(0);
    expect(result.error).toMatch(/X-Amz-Date parameter is expired/);
    expect(result.standIn.requests).toBe(0);
  });

  it('rejects tampering: padding, a re-dated token, an extra parameter, an unsigned cluster header', async () => {
    const signedAt = new Date(Date.now() - 10 * MIN);
    const { token } = await createEksToken({ clusterName: 'c', region: 'eu-west-1', credentials: CREDS, now: signedAt });
    const url = decodeToken(token);
    const redated = new URL(url);
    redated.searchParams.set('X-Amz-Date', new Date().toISOString().replace(/[-:]|\.\d{3}/g, ''));
    expect(redated.searchParams.get('X-Amz-Date')).not.toBe(url.searchParams.get('X-Amz-Date'));
    const text = url.toString();
    const cases: [string, RegExp][] = [
      [`${token}==`, /illegal base64/],
      [encodeToken(redated.toString()), /SignatureDoesNotMatch/],
      [encodeToken(`${text}&X-Amz-Extra=1`), /non-whitelisted query parameter/],
      [encodeToken(text.replace('host%3Bx-k8s-aws-id', 'host')), /did not sign the x-k8s-aws-id header/],
    ];
    for (const [tampered, message] of cases) {
      const { code, result } = verify(tampered, { cluster: 'c', region: 'eu-west-1', sessionName: 'airlock-x' });
      expect(code, tampered).not.toBe(0);
      expect(result.error).toMatch(message);
    }
  });
});

function toStsCredentials() {
  return { AccessKeyId: CREDS.accessKeyId, SecretAccessKey: CREDS.secretAccessKey, SessionToken: CREDS.sessionToken };
}
