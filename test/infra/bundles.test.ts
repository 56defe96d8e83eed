// infra/bundling.ts: what each function's bundle carries. Sizes and init times
// are benchmarks (`npm run bench -- size`); these are the structural facts that
// keep them down, checked on esbuild's metafile of the real build options.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLE, PROJECT_ROOT, esbuildOptions, functionEntry, type AirlockFunctionName } from '../../infra/bundling.ts';

const outRoot = mkdtempSync(join(tmpdir(), 'airlock-bundles-'));
afterAll(() => rmSync(outRoot, { recursive: true, force: true }));

/** Bytes each package (or source file) contributes to the output, after tree-shaking. */
async function bundled(entry: string | { contents: string }, outdir: string): Promise<{ file: string; bytes: (pattern: RegExp) => number }> {
  const options = esbuildOptions(typeof entry === 'string' ? entry : 'stdin', outdir);
  // Source given as text resolves its imports from the project, as the functions' entries do.
  const result = await build(typeof entry === 'string' ? options : { ...options, entryPoints: undefined, stdin: { contents: entry.contents, resolveDir: PROJECT_ROOT, loader: 'ts' } });
  const inputs = Object.values((result.metafile as Metafile).outputs).flatMap((output) => Object.entries(output.inputs));
  return {
    file: join(outdir, BUNDLE.outfile),
    bytes: (pattern) => inputs.filter(([path]) => pattern.test(path)).reduce((sum, [, input]) => sum + input.bytesInOutput, 0),
  };
}

const fn = (name: AirlockFunctionName) => bundled(functionEntry(name), join(outRoot, name));

const CREDENTIAL_CHAIN =
  /node_modules\/@aws-sdk\/(credential-provider-(node|ini|sso|process|web-identity|http|login)|nested-clients|token-providers)\/|node_modules\/@smithy\/credential-provider-imds\//;
const S3 = /node_modules\/@aws-sdk\/client-s3\//;
const YAML = /node_modules\/yaml\//;
const STS = /node_modules\/@aws-sdk\/client-sts\//;
const GATEWAY = /lambdas\/(proxy\/gateway|mcp\/endpoint)\.ts$/;

describe('function bundles', () => {
  it('keep only the environment link of the SDK credential chain, and it reads the environment', async () => {
    const { file, bytes } = await bundled(
      { contents: "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';\nexport const credentials = () => new DynamoDBClient({ region: 'us-east-1' }).config.credentials();\n" },
      join(outRoot, 'credentials'),
    );
    expect(bytes(CREDENTIAL_CHAIN)).toBe(0);
    expect(bytes(/lambdas\/runtime\/lambda-credentials\.ts$/)).toBeGreaterThan(0);
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDBUNDLETEST', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'session' });
      const module = (await import(pathToFileURL(file).href)) as { credentials: () => Promise<{ accessKeyId: string; sessionToken?: string }> };
      expect(await module.credentials()).toMatchObject({ accessKeyId: 'AKIDBUNDLETEST', sessionToken: 'session' });
      delete process.env.AWS_ACCESS_KEY_ID;
      await expect(module.credentials()).rejects.toThrow(/environment variable credentials/);
    } finally {
      process.env = saved;
    }
  });

  it('tokens, access and workflow carry neither S3, YAML, STS nor the gateway', async () => {
    for (const name of ['tokens', 'access', 'workflow'] as const) {
      const { bytes } = await fn(name);
      expect({ name, s3: bytes(S3), yaml: bytes(YAML), sts: bytes(STS), gateway: bytes(GATEWAY) }).toEqual({ name, s3: 0, yaml: 0, sts: 0, gateway: 0 });
    }
  });

  it('approvals and admin carry S3 (transcripts) but not STS or the gateway; approvals no YAML', async () => {
    const approvals = await fn('approvals');
    expect(approvals.bytes(S3)).toBeGreaterThan(0);
    expect({ yaml: approvals.bytes(YAML), sts: approvals.bytes(STS), gateway: approvals.bytes(GATEWAY) }).toEqual({ yaml: 0, sts: 0, gateway: 0 });
    const admin = await fn('admin');
    expect(admin.bytes(S3)).toBeGreaterThan(0);
    expect({ sts: admin.bytes(STS), gateway: admin.bytes(GATEWAY) }).toEqual({ sts: 0, gateway: 0 });
  });

  it('the proxy carries the gateway and STS (EKS tokens)', async () => {
    const { bytes } = await fn('proxy');
    expect(bytes(GATEWAY)).toBeGreaterThan(0);
    expect(bytes(STS)).toBeGreaterThan(0);
    expect(bytes(CREDENTIAL_CHAIN)).toBe(0);
  });
});
