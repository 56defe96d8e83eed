// infra/config.ts: the deployment's settings from airlock.config.json and/or CDK context.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../infra/bundling.ts';
import { loadConfig } from '../../infra/config.ts';

function dir(config?: unknown): string {
  const cwd = mkdtempSync(join(tmpdir(), 'airlock-config-'));
  if (config !== undefined) writeFileSync(join(cwd, 'airlock.config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return cwd;
}
const noContext = () => undefined;

describe('loadConfig', () => {
  it('defaults when there is neither a file nor context', () => {
    const { config, file } = loadConfig({ context: noContext, cwd: dir() });
    expect(file).toBeUndefined();
    expect(config).toMatchObject({
      stackName: 'AirlockStack',
      approverEmails: [],
      agentPrincipalArns: [],
      transcriptRetentionDays: 400,
      recordRetentionDays: 400,
      logRetentionDays: 365,
      stageName: 'prod',
      eksConnections: [],
    });
  });

  it('reads airlock.config.json; context keys override it one by one', () => {
    const cwd = dir({ approverEmails: ['a@example.com'], recordRetentionDays: 30, alarmEmail: 'ops@example.com' });
    const context: Record<string, unknown> = { approverEmails: 'b@example.com, c@example.com', recordRetentionDays: '90', objectLock: '{"mode":"GOVERNANCE","days":7}' };
    const { config, file } = loadConfig({ context: (key) => context[key], cwd });
    expect(file).toBe(join(cwd, 'airlock.config.json'));
    expect(config.approverEmails).toEqual(['b@example.com', 'c@example.com']);
    expect(config.recordRetentionDays).toBe(90);
    expect(config.objectLock).toEqual({ mode: 'GOVERNANCE', days: 7 });
    expect(config.alarmEmail).toBe('ops@example.com');
  });

  it('takes JSON arrays from context too, and a config file named by context', () => {
    const cwd = dir();
    writeFileSync(join(cwd, 'other.json'), JSON.stringify({ stackName: 'Other' }));
    const context: Record<string, unknown> = { config: 'other.json', agentPrincipalArns: '["arn:aws:iam::111122223333:role/a"]' };
    const { config } = loadConfig({ context: (key) => context[key], cwd });
    expect(config.stackName).toBe('Other');
    expect(config.agentPrincipalArns).toEqual(['arn:aws:iam::111122223333:role/a']);
    expect(() => loadConfig({ context: (key) => (key === 'config' ? 'missing.json' : undefined), cwd })).toThrow(/does not exist/);
  });

  it('names every invalid field, and refuses unknown keys', () => {
    const cwd = dir({ approverEmails: ['nope'], objectLock: { mode: 'FOREVER', days: 1 }, logRetentionDays: 42, eksConnections: [{ name: 'Prod', clusterName: 'x' }], surprise: true });
    let message = '';
    try {
      loadConfig({ context: noContext, cwd });
    } catch (error) {
      message = (error as Error).message;
    }
    for (const field of ['approverEmails.0', 'objectLock.mode', 'logRetentionDays', 'eksConnections.0.name', 'surprise']) expect(message).toContain(field);
  });

  it('refuses a config file that is not JSON', () => {
    expect(() => loadConfig({ context: noContext, cwd: dir('{ nope') })).toThrow(/not JSON/);
  });

  it('airlock.config.example.json is a valid configuration', () => {
    const { config } = loadConfig({ context: (key) => (key === 'config' ? 'airlock.config.example.json' : undefined), cwd: PROJECT_ROOT });
    expect(config.eksConnections.length).toBeGreaterThan(0);
    expect(config.approverEmails.length).toBeGreaterThan(0);
  });
});
