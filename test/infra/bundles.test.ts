// infra/bundling.ts: what each function's bundle carries, and what of it a
// container's init loads (the entry and the chunks it imports statically) as
// against the chunks loaded by import() on a rare path. Sizes and init times
// are benchmarks (`npm run bench -- size`); these are the structural facts that
// keep them down, checked on esbuild's metafile of the real build options.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { FUNCTION_NAMES, PROJECT_ROOT, bundleLayout, esbuildOptions, functionEntry, type AirlockFunctionName } from '../../infra/bundling.ts';

const outRoot = mkdtempSync(join(tmpdir(), 'airlock-bundles-'));
afterAll(() => rmSync(outRoot, { recursive: true, force: true }));

type Bytes = (pattern: RegExp) => number;

/** Bytes each package (or source file) contributes, after tree-shaking: to what init loads, and to all chunks. */
async function bundled(entry: string | { contents: string }, outdir: string): Promise<{ entry: string; init: Bytes; all: Bytes }> {
  const options = esbuildOptions(typeof entry === 'string' ? entry : 'stdin', outdir);
  // Source given as text resolves its imports from the project, as the functions' entries do.
  const result = await build(
    typeof entry === 'string' ? options : { ...options, entryPoints: undefined, entryNames: 'index', stdin: { contents: entry.contents, resolveDir: PROJECT_ROOT, loader: 'ts' } },
  );
  const layout = bundleLayout(result.metafile);
  const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.mjs'));
  const bytesIn =
    (files: string[]): Bytes =>
    (pattern) =>
      outputs
        .filter(([file]) => files.includes(resolve(file)))
        .flatMap(([, output]) => Object.entries(output.inputs))
        .filter(([path]) => pattern.test(path))
        .reduce((sum, [, input]) => sum + input.bytesInOutput, 0);
  return { entry: layout.entry, init: bytesIn(layout.init), all: bytesIn(layout.all) };
}

const fn = (name: AirlockFunctionName) => bundled(functionEntry(name), join(outRoot, name));

const CREDENTIAL_CHAIN =
  /node_modules\/@aws-sdk\/(credential-provider-(node|ini|sso|process|web-identity|http|login)|credential-providers|nested-clients|token-providers)\/|node_modules\/@smithy\/credential-provider-imds\//;
const S3 = /node_modules\/@aws-sdk\/client-s3\//;
const SFN_SNS = /node_modules\/@aws-sdk\/client-(sfn|sns)\//;
const YAML = /node_modules\/yaml\//;
const ZOD = /node_modules\/zod\//;
const WS = /node_modules\/ws\//;
const STS = /node_modules\/@aws-sdk\/client-sts\//;
const GATEWAY = /lambdas\/(proxy\/gateway|mcp\/endpoint)\.ts$/;
const MCP = /lambdas\/mcp\//;
const APPROVAL_GATE = /lambdas\/proxy\/(approval-gate|preview)\.ts$|lambdas\/core\/preview\.ts$/;

describe('function bundles', () => {
  it('keep only the environment link of the SDK credential chain, and it reads the environment', async () => {
    const { entry, all } = await bundled(
      { contents: "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';\nexport const credentials = () => new DynamoDBClient({ region: 'us-east-1' }).config.credentials();\n" },
      join(outRoot, 'credentials'),
    );
    expect(all(CREDENTIAL_CHAIN)).toBe(0);
    expect(all(/lambdas\/runtime\/lambda-credentials\.ts$/)).toBeGreaterThan(0);
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDBUNDLETEST', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'session' });
      const module = (await import(pathToFileURL(entry).href)) as { credentials: () => Promise<{ accessKeyId: string; sessionToken?: string }> };
      expect(await module.credentials()).toMatchObject({ accessKeyId: 'AKIDBUNDLETEST', sessionToken: 'session' });
      delete process.env.AWS_ACCESS_KEY_ID;
      await expect(module.credentials()).rejects.toThrow(/environment variable credentials/);
    } finally {
      process.env = saved;
    }
  });

  it('no chunk of any of the seven carries another link of the credential chain', async () => {
    for (const name of FUNCTION_NAMES) {
      const { all } = await fn(name);
      expect({ name, chain: all(CREDENTIAL_CHAIN) }).toEqual({ name, chain: 0 });
    }
  });

  it('tokens, access and workflow carry neither S3, YAML, STS nor the gateway; Step Functions and SNS load on first use', async () => {
    for (const name of ['tokens', 'access', 'workflow'] as const) {
      const { init, all } = await fn(name);
      expect({ name, s3: all(S3), yaml: all(YAML), sts: all(STS), gateway: all(GATEWAY), initSfnSns: init(SFN_SNS) }).toEqual({ name, s3: 0, yaml: 0, sts: 0, gateway: 0, initSfnSns: 0 });
      expect(all(SFN_SNS)).toBeGreaterThan(0);
    }
  });

  it('approvals and admin read transcripts from S3 loaded on first use; approvals carry no YAML, admin loads it with a policy file', async () => {
    const approvals = await fn('approvals');
    expect({ s3: approvals.init(S3), sfnSns: approvals.init(SFN_SNS), yaml: approvals.all(YAML), sts: approvals.all(STS), gateway: approvals.all(GATEWAY) }).toEqual({
      s3: 0,
      sfnSns: 0,
      yaml: 0,
      sts: 0,
      gateway: 0,
    });
    expect(approvals.all(S3)).toBeGreaterThan(0);
    const admin = await fn('admin');
    expect({ s3: admin.init(S3), yaml: admin.init(YAML), diff: admin.init(/node_modules\/diff\//), sts: admin.all(STS), gateway: admin.all(GATEWAY) }).toEqual({
      s3: 0,
      yaml: 0,
      diff: 0,
      sts: 0,
      gateway: 0,
    });
    expect({ s3: admin.all(S3) > 0, yaml: admin.all(YAML) > 0 }).toEqual({ s3: true, yaml: true });
  });

  it("the proxy's init carries the gateway and STS (EKS tokens), and none of its rare paths: YAML, approvals, exec, MCP, S3", async () => {
    const { init, all } = await fn('proxy');
    expect(init(/lambdas\/proxy\/gateway\.ts$/)).toBeGreaterThan(0);
    expect(init(STS)).toBeGreaterThan(0);
    const rare = { yaml: YAML, approvalGate: APPROVAL_GATE, execSchema: ZOD, execClient: WS, mcp: MCP, s3: S3, sfnSns: SFN_SNS };
    const inInit = Object.fromEntries(Object.entries(rare).map(([part, pattern]) => [part, init(pattern)]));
    expect(inInit).toEqual(Object.fromEntries(Object.keys(rare).map((part) => [part, 0])));
    // Each is in a chunk of the asset, loaded by its import() (lambdas/proxy/lazy.ts, runtime/*-services.ts).
    for (const [part, pattern] of Object.entries(rare)) expect({ part, loadable: all(pattern) > 0 }).toEqual({ part, loadable: true });
  });
});
