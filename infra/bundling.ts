// How every Lambda function is bundled: one description, two readers — the CDK
// construct (NodejsFunction, local esbuild, no Docker) and `npm run bench -- size`
// (esbuild's JS API) — so the bundle that is measured is the bundle that ships.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { BuildOptions } from 'esbuild';
import { OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';

/** The repository root (infra/..). */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The seven functions: one per concern, plus `workflow` for the state machines' tasks. */
export const FUNCTION_NAMES = ['health', 'tokens', 'access', 'admin', 'approvals', 'proxy', 'workflow'] as const;
export type AirlockFunctionName = (typeof FUNCTION_NAMES)[number];

/** The entry file of a function (each exports `handler`). */
export function functionEntry(name: AirlockFunctionName): string {
  return join(PROJECT_ROOT, 'lambdas', 'handlers', `${name}.ts`);
}

/**
 * Some CommonJS dependencies call `require()` for Node built-ins; an ESM bundle
 * has no `require`, so one is made from the module's own URL. The alias keeps
 * the banner's import from colliding with anything in the bundle.
 */
/**
 * Packages replaced inside the bundles. The SDK clients' default credential
 * chain becomes its environment link only (lambdas/runtime/lambda-credentials.ts
 * says why that is the same credential on Lambda).
 */
const BUNDLE_ALIAS: Record<string, string> = {
  '@aws-sdk/credential-provider-node': join(PROJECT_ROOT, 'lambdas', 'runtime', 'lambda-credentials.ts'),
};

const CREATE_REQUIRE_BANNER = "import { createRequire as __airlockCreateRequire } from 'node:module'; const require = __airlockCreateRequire(import.meta.url);";

/** The single description both readers derive from. */
export const BUNDLE = {
  format: 'esm',
  target: 'node24',
  platform: 'node',
  minify: true,
  /** External `.map` files, linked from the bundle; the functions run with `--enable-source-maps`. */
  sourceMap: true,
  /** The map carries positions, not a second copy of the sources (smaller assets). */
  sourcesContent: false,
  /** Without `module` first, the AWS SDK's CommonJS build is bundled and fails with `Dynamic require of "node:https"`. */
  mainFields: ['module', 'main'],
  banner: CREATE_REQUIRE_BANNER,
  /** Nothing is external: the AWS SDK is bundled, so the version that was tested is the version that runs. */
  external: [] as string[],
  alias: BUNDLE_ALIAS,
  /** The file name Lambda loads for an ESM bundle (`index.handler`). */
  outfile: 'index.mjs',
} as const;

/** NODE_OPTIONS for the functions: stack traces through the source maps. */
export const FUNCTION_NODE_OPTIONS = '--enable-source-maps';

/** `bundling` for aws-lambda-nodejs NodejsFunction (local esbuild; Docker is never used). */
export function nodejsBundling(): BundlingOptions {
  return {
    format: OutputFormat.ESM,
    target: BUNDLE.target,
    minify: BUNDLE.minify,
    sourceMap: BUNDLE.sourceMap,
    sourcesContent: BUNDLE.sourcesContent,
    mainFields: [...BUNDLE.mainFields],
    banner: BUNDLE.banner,
    externalModules: [...BUNDLE.external],
    bundleAwsSDK: true,
    esbuildArgs: { '--alias': Object.entries(BUNDLE.alias).map(([from, to]) => `${from}=${to}`) },
    forceDockerBundling: false,
  };
}

/** The same options for esbuild's JS API (`build()`), writing `<outdir>/index.mjs`. */
export function esbuildOptions(entry: string, outdir: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile: join(outdir, BUNDLE.outfile),
    bundle: true,
    platform: BUNDLE.platform,
    format: BUNDLE.format,
    target: BUNDLE.target,
    minify: BUNDLE.minify,
    sourcemap: BUNDLE.sourceMap,
    sourcesContent: BUNDLE.sourcesContent,
    mainFields: [...BUNDLE.mainFields],
    banner: { js: BUNDLE.banner },
    external: [...BUNDLE.external],
    alias: { ...BUNDLE.alias },
    logLevel: 'warning',
    metafile: true,
  };
}
