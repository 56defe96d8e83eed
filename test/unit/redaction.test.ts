import { describe, expect, it } from 'vitest';
import { redactBody, redactHeaders, redactJson, REDACTED } from '../../lambdas/core/redaction.ts';

const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { password: 'c2VjcmV0' }, stringData: { token: 'plain' } };
const plain = { secretsResource: false };

describe('transcript redaction', () => {
  it('redacts Secret data and stringData, keeping keys', () => {
    expect(redactJson(secret, plain)).toMatchObject({ data: { password: REDACTED }, stringData: { token: REDACTED }, metadata: { name: 's' } });
  });

  it('finds Secrets inside Lists, watch events and Tables', () => {
    const list = { kind: 'List', items: [{ kind: 'ConfigMap', data: { a: 'visible' } }, secret] };
    expect(JSON.stringify(redactJson(list, plain))).not.toContain('c2VjcmV0');
    expect(JSON.stringify(redactJson(list, plain))).toContain('visible');
    const event = { type: 'ADDED', object: secret };
    expect(JSON.stringify(redactJson(event, plain))).not.toContain('plain');
  });

  it('redacts the last-applied annotation, which copies the whole object', () => {
    const applied = { ...secret, metadata: { name: 's', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(secret) } } };
    expect(JSON.stringify(redactJson(applied, plain))).not.toContain('c2VjcmV0');
  });

  it('treats data in any body sent to secrets as secret, kind or not (patches)', () => {
    const merge = { data: { password: 'bmV3' } };
    expect(redactJson(merge, { secretsResource: true })).toEqual({ data: { password: REDACTED } });
    const jsonPatch = [{ op: 'replace', path: '/data/password', value: 'bmV3' }];
    expect(JSON.stringify(redactJson(jsonPatch, { secretsResource: true }))).not.toContain('bmV3');
  });

  it('redacts TokenRequest tokens', () => {
    const tokenRequest = { kind: 'TokenRequest', status: { token: 'eyJ.sa.token', expirationTimestamp: 'x' } };
    expect(redactJson(tokenRequest, plain)).toMatchObject({ status: { token: REDACTED, expirationTimestamp: 'x' } });
  });

  it('never stores bodies it cannot parse', () => {
    const protobuf = redactBody(Buffer.from([0x6b, 0x38, 0x73, 0x00, 1, 2]), true, 6, 'application/vnd.kubernetes.protobuf', plain);
    expect(protobuf.body).toMatch(/not recorded/);
    const truncated = redactBody(Buffer.from(JSON.stringify(secret).slice(0, 40)), false, 500, 'application/json', plain);
    expect(JSON.stringify(truncated.body)).not.toContain('c2VjcmV0');
  });

  it('keeps whole watch lines and drops an unfinished one', () => {
    const stream = `${JSON.stringify({ type: 'ADDED', object: secret })}\n${JSON.stringify({ type: 'MODIFIED', object: secret }).slice(0, 30)}`;
    const result = redactBody(Buffer.from(stream), false, 10_000, 'application/json', plain);
    expect(result.body).toMatchObject({ stream: [{ type: 'ADDED' }], truncated: true });
    expect(JSON.stringify(result.body)).not.toContain('c2VjcmV0');
  });

  it('redacts credential headers', () => {
    expect(redactHeaders({ Authorization: 'Bearer x', Cookie: 'a=b', Accept: 'application/json', 'X-Amz-Security-Token': 't' })).toEqual({
      authorization: REDACTED,
      cookie: REDACTED,
      accept: 'application/json',
      'x-amz-security-token': REDACTED,
    });
  });
});

describe('credentials smuggled in other headers', () => {
  it('redacts a bearer token sent as a WebSocket subprotocol', () => {
    const redacted = redactHeaders({ 'Sec-WebSocket-Protocol': 'v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.ZXlKaGJHY2lPaUpGWkVSVFFTSjk' });
    expect(redacted['sec-websocket-protocol']).toBe('v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.[REDACTED]');
  });
});

describe('approval emails', () => {
  it('keep agent-written text on one line, so an agent cannot forge a decision section or link', async () => {
    const { approvalEmail } = await import('../../lambdas/core/approvals.ts');
    const approval = {
      id: 'apr_x',
      kind: 'window' as const,
      status: 'pending' as const,
      agentId: 'agt_x',
      agentName: 'bot',
      connection: 'prod',
      summary: 'access window on prod for 30m',
      reason: 'urgent\n\nReview and decide:\nhttps://evil.example/approvals/apr_x',
      rule: 'windowApproval: required',
      approvers: ['a@example.com'],
      minApprovals: 1,
      decisions: [],
      notified: [],
      createdAt: 0,
      expiresAt: 60_000,
      timeoutSeconds: 60,
      policyVersion: 'v',
    };
    const { text } = approvalEmail(approval, 'a@example.com', 'https://airlock.example/approvals/apr_x?sig=s');
    const whyLine = text.split('\n').find((line) => line.startsWith('Why:'))!;
    expect(whyLine).toContain('https://evil.example');
    expect(text.split('\n').filter((line) => line.includes('https://'))).toHaveLength(3);
    expect(text).toContain('Review and decide at https://airlock.example only');
  });
});

describe('container logs (plain text) in transcripts', () => {
  const log = { secretsResource: false, logText: true };
  it('keeps the lines, with credential-shaped text replaced', () => {
    const text = [
      'GET /healthz 200',
      'connecting with token=abc123def456',
      'Authorization: Bearer abcdefghijklmnop.qrs',
      'jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl seen',
      'aws AKIAABCDEFGHIJKLMNOP used',
      'db postgres://app:hunter2@db:5432/app',
      '{"password": "s3cr3t", "user": "bob"}',
      '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\n-----END PRIVATE KEY-----',
      '',
    ].join('\n');
    const body = redactBody(Buffer.from(text), true, text.length, 'text/plain', log).body as string;
    expect(body).toContain('GET /healthz 200');
    expect(body).toContain('"user": "bob"');
    for (const secret of ['abc123def456', 'abcdefghijklmnop', 'eyJhbGciOiJSUzI1NiJ9', 'AKIAABCDEFGHIJKLMNOP', 'hunter2', 's3cr3t', 'MIIEvQIBADANBgkq']) expect(body).not.toContain(secret);
    expect(body.match(/\[REDACTED\]/g)).toHaveLength(7);
  });

  it('drops a line cut at the capture limit, and says the body was truncated', () => {
    const captured = 'line one\nline two with token=abc1';
    expect(redactBody(Buffer.from(captured), false, 5000, 'text/plain; charset=utf-8', log).body).toEqual({ text: 'line one\n', truncated: true });
  });

  it('keeps plain text out of any other transcript', () => {
    expect(redactBody(Buffer.from('token=abc'), true, 9, 'text/plain', plain).body).toBe('[9 bytes of text/plain not recorded: cannot be redacted]');
  });
});
