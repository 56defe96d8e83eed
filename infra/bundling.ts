// How every Lambda function is bundled: one description, two readers — the CDK
// constructs (functionCode: esbuild run locally into the function's asset
// directory, never Docker) and `npm run bench -- size` — so the bundle that is
// measured is the bundle that ships. Each function is built with code
// splitting: its entry (index.mjs) and the chunks it imports statically are
// what a container's init loads; what the handlers load with import() on a
// rare path (lambdas/proxy/lazy.ts) is in chunks of its own, loaded on first use.
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { AssetHashType } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { buildSync, type BuildOptions, type Metafile } from 'esbuild';

/** The repository root (infra/..). */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The seven functions: one per concern, plus `workflow` for the state machines' tasks. */
export const FUNCTION_NAMES = ['health', 'tokens', 'access', 'admin', 'approvals', 'proxy', 'workflow'] as const;
export type AirlockFunctionName = (typeof FUNCTION_NAMES)[number];

/** Every bundle: the seven, and the optional scheduled export (infra/security-lake-export.ts). */
export const BUNDLE_NAMES = [...FUNCTION_NAMES, 'security-lake-export'] as const;
export type BundleName = (typeof BUNDLE_NAMES)[number];

/** The entry file of a function (each exports `handler`). */
export function functionEntry(name: BundleName): string {
  return join(PROJECT_ROOT, 'lambdas', 'handlers', `${name}.ts`);
}

/**
 * Packages replaced inside the bundles. The SDK clients' default credential
 * chain becomes its environment link only (lambdas/runtime/lambda-credentials.ts
 * says why that is the same credential on Lambda).
 */
const BUNDLE_ALIAS: Record<string, string> = {
  '@aws-sdk/credential-provider-node': join(PROJECT_ROOT, 'lambdas', 'runtime', 'lambda-credentials.ts'),
};

/**
 * Some CommonJS dependencies call `require()` for Node built-ins; an ESM bundle
 * has no `require`, so one is made from the module's own URL. The alias keeps
 * the banner's import from colliding with anything in the bundle.
 */
const CREATE_REQUIRE_BANNER = "import { createRequire as __airlockCreateRequire } from 'node:module'; const require = __airlockCreateRequire(import.meta.url);";

/** The single description both readers derive from. */
export const BUNDLE = {
  format: 'esm',
  target: 'node24',
  platform: 'node',
  minify: true,
  /** import() of a module becomes a chunk loaded when it runs; code shared by chunks is a chunk of its own. */
  splitting: true,
  /** External `.map` files, linked from each chunk; the functions run with `--enable-source-maps`. */
  sourceMap: true,
  /** The map carries positions, not a second copy of the sources (smaller assets). */
  sourcesContent: false,
  /** Without `module` first, the AWS SDK's CommonJS build is bundled and fails with `Dynamic require of "node:https"`. */
  mainFields: ['module', 'main'],
  /** In every chunk: a chunk that calls require() has it in its own scope. */
  banner: CREATE_REQUIRE_BANNER,
  /** Nothing is external: the AWS SDK is bundled, so the version that was tested is the version that runs. */
  external: [] as string[],
  alias: BUNDLE_ALIAS,
  /** The file Lambda loads for an ESM handler (`index.handler`); chunks sit beside it. `.mjs`: ESM without a package.json. */
  entryFile: 'index.mjs',
  chunkNames: 'chunk-[hash]',
} as const;

/** NODE_OPTIONS for the functions: stack traces through the source maps. */
export const FUNCTION_NODE_OPTIONS = '--enable-source-maps';

/** The options for esbuild's API: `<outdir>/index.mjs` and its chunks (the asset directory's whole content). */
export function esbuildOptions(entry: string, outdir: string): BuildOptions & { metafile: true } {
  return {
    entryPoints: { index: entry },
    outdir,
    bundle: true,
    splitting: BUNDLE.splitting,
    chunkNames: BUNDLE.chunkNames,
    outExtension: { '.js': '.mjs' },
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

/**
 * A function's code: the bundle built by esbuild on this machine into the asset directory when CDK
 * stages it (skipped, as for any asset, in stacks outside `aws:cdk:bundling-stacks`). Hashed by its
 * output. NodejsFunction cannot emit more than one file, hence this.
 */
export function functionCode(name: BundleName): lambda.Code {
  return lambda.Code.fromAsset(PROJECT_ROOT, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Required by the type, never run: tryBundle builds or throws, so CDK never falls back to Docker.
      image: lambda.Runtime.NODEJS_24_X.bundlingImage,
      local: {
        tryBundle(outputDir) {
          buildSync(esbuildOptions(functionEntry(name), outputDir));
          return true;
        },
      },
    },
  });
}

/** A built bundle's code files (absolute paths), by when they load. */
export interface BundleLayout {
  /** index.mjs. */
  entry: string;
  /** What a container's init loads: the entry and every chunk it imports statically, transitively. */
  init: string[];
  /** Each chunk an import() names (its module), and what loading it adds to what init loaded. */
  lazy: { file: string; module: string; adds: string[] }[];
  /** Every code file (the maps aside). */
  all: string[];
}

/** Reads the layout from esbuild's metafile of a build with esbuildOptions (paths there are relative to the working directory). */
export function bundleLayout(metafile: Metafile): BundleLayout {
  const outputs = metafile.outputs;
  const code = Object.keys(outputs).filter((file) => file.endsWith('.mjs'));
  const entry = code.find((file) => file.endsWith(`/${BUNDLE.entryFile}`) || file === BUNDLE.entryFile);
  if (!entry) throw new Error(`the build has no ${BUNDLE.entryFile}`);
  const staticClosure = (start: string): Set<string> => {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const imported of outputs[file]?.imports ?? []) if (imported.kind === 'import-statement' && !imported.external) visit(imported.path);
    };
    visit(start);
    return seen;
  };
  const init = staticClosure(entry);
  const named = new Set(code.flatMap((file) => outputs[file]!.imports.filter((imported) => imported.kind === 'dynamic-import' && !imported.external).map((imported) => imported.path)));
  const lazy = [...named].map((file) => ({
    file: resolve(file),
    module: outputs[file]?.entryPoint ?? file,
    adds: [...staticClosure(file)].filter((added) => !init.has(added)).map((added) => resolve(added)),
  }));
  return { entry: resolve(entry), init: [...init].map((file) => resolve(file)), lazy, all: code.map((file) => resolve(file)) };
}
