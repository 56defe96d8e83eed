// The real CDK CLI, offline: `cdk synth` must work in CI with no network (no
// notices, no telemetry, no version check) and pass the cdk-nag gate.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../infra/bundling.ts';

describe('cdk synth (CLI)', () => {
  it('synthesizes offline with --no-notices -q and writes a clean validation report', () => {
    const outdir = join(mkdtempSync(join(tmpdir(), 'airlock-cli-')), 'cdk.out');
    const result = spawnSync('npx', ['--no-install', 'cdk', 'synth', '--no-notices', '-q', '-o', outdir], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      timeout: 180_000,
      env: {
        ...process.env,
        CDK_DISABLE_VERSION_CHECK: '1',
        CDK_DISABLE_CLI_TELEMETRY: 'true',
        // No instance-metadata probing for a default account on machines without AWS credentials.
        AWS_EC2_METADATA_DISABLED: 'true',
        // Unroutable proxy: any attempt to reach the network fails fast instead of passing silently.
        HTTPS_PROXY: 'http://127.0.0.1:9',
        HTTP_PROXY: 'http://127.0.0.1:9',
        NO_PROXY: '',
      },
    });
    expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
    const manifest = JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8')) as { artifacts: Record<string, { type: string }> };
    const stacks = Object.entries(manifest.artifacts).filter(([, artifact]) => artifact.type === 'aws:cloudformation:stack');
    expect(stacks.length).toBe(1);
    expect(existsSync(join(outdir, `${stacks[0]![0]}.template.json`))).toBe(true);
    expect(result.stderr).not.toMatch(/AwsSolutions-/);
  }, 240_000);
});
