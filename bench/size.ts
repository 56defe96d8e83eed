// npm run bench -- size [--runs N]
//   Bundles every function exactly as the CDK construct does (the options come
//   from infra/bundling.ts, so they cannot drift), prints each bundle's size
//   and its module init time — `await import()` of the bundle in a fresh Node
//   process, measured with performance.now() around the import, median of N
//   runs — and the CPU time of that import (process.cpuUsage), which a loaded
//   machine stretches far less than the wall time. Targets (issue 15): ≤ 500 KB per bundle, ≤ 100 ms init. Returns 1 if a bundle
//   fails to build or misses a target.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { build } from 'esbuild';
import { BUNDLE, FUNCTION_NAMES, FUNCTION_NODE_OPTIONS, esbuildOptions, functionEntry, type AirlockFunctionName } from '../infra/bundling.ts';

export const SIZE_TARGET_BYTES = 500 * 1024;
export const INIT_TARGET_MS = 100;

export interface SizeResult {
  name: AirlockFunctionName;
  bytes: number;
  mapBytes: number;
  /** Deflated size of bundle + map: about what the deployment zip adds. */
  zippedBytes: number;
  initMs: number[];
  medianInitMs: number;
  /** CPU time (user + system) of the same imports. */
  initCpuMs: number[];
  medianInitCpuMs: number;
  /** The largest inputs of the bundle (package or source folder -> bytes). */
  largest: [string, number][];
}

/**
 * The module init of one bundle in a fresh process. Lambda's Node runtime
 * provides the `awslambda` global (streaming handlers use it at import time);
 * a stand-in is installed before the clock starts.
 */
function measureInit(file: string): { wall: number; cpu: number } {
  const script = [
    'globalThis.awslambda ??= { streamifyResponse: (handler) => handler, HttpResponseStream: { from: (stream) => stream } };',
    'const cpu = process.cpuUsage();',
    'const started = performance.now();',
    `const module = await import(${JSON.stringify(pathToFileURL(file).href)});`,
    'const elapsed = performance.now() - started;',
    'const used = process.cpuUsage(cpu);',
    "if (typeof module.handler !== 'function') throw new Error('the bundle exports no handler');",
    'process.stdout.write(JSON.stringify({ wall: elapsed, cpu: (used.user + used.system) / 1000 }));',
  ].join('\n');
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_OPTIONS: FUNCTION_NODE_OPTIONS,
      AWS_REGION: 'us-east-1',
      POWERTOOLS_SERVICE_NAME: 'airlock',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    },
  });
  if (result.status !== 0) throw new Error(`importing ${file} failed:\n${result.stderr}`);
  return JSON.parse(result.stdout) as { wall: number; cpu: number };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

const kb = (bytes: number) => `${(bytes / 1024).toFixed(0)} KB`;

export async function measureBundles(runs = 5): Promise<SizeResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-size-'));
  try {
    const results: SizeResult[] = [];
    for (const name of FUNCTION_NAMES) {
      const outdir = join(dir, name);
      const built = await build(esbuildOptions(functionEntry(name), outdir));
      const file = join(outdir, BUNDLE.outfile);
      const bytes = statSync(file).size;
      const mapBytes = statSync(`${file}.map`).size;
      const zippedBytes = deflateRawSync(Buffer.concat([readFileSync(file), readFileSync(`${file}.map`)])).length;
      const inputs = new Map<string, number>();
      for (const output of Object.values(built.metafile?.outputs ?? {})) {
        for (const [path, input] of Object.entries(output.inputs)) {
          const match = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(path);
          const key = match ? match[1]! : path.split('/').slice(0, 2).join('/');
          inputs.set(key, (inputs.get(key) ?? 0) + input.bytesInOutput);
        }
      }
      const largest = [...inputs].sort((a, b) => b[1] - a[1]).slice(0, 3);
      const initMs: number[] = [];
      const initCpuMs: number[] = [];
      for (let run = 0; run < runs; run++) {
        const { wall, cpu } = measureInit(file);
        initMs.push(wall);
        initCpuMs.push(cpu);
      }
      results.push({ name, bytes, mapBytes, zippedBytes, initMs, medianInitMs: median(initMs), initCpuMs, medianInitCpuMs: median(initCpuMs), largest });
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runSizeBench(args: string[] = []): Promise<number> {
  const runsFlag = args.findIndex((arg) => arg === '--runs');
  const runs = runsFlag >= 0 ? Number(args[runsFlag + 1]) : 5;
  if (!Number.isInteger(runs) || runs < 1) {
    console.error('usage: npm run bench -- size [--runs N]');
    return 2;
  }
  let results: SizeResult[];
  try {
    results = await measureBundles(runs);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 1;
  }
  console.log(`Bundles as deployed (infra/bundling.ts: ESM, minified, ${BUNDLE.target}, AWS SDK bundled); init = median of ${runs} fresh-process imports`);
  console.log(
    `${'function'.padEnd(10)} ${'bundle'.padStart(9)} ${'map'.padStart(9)} ${'zip≈'.padStart(9)} ${'init ms'.padStart(8)} ${'(min-max)'.padStart(13)} ${'cpu ms'.padStart(7)}  largest inputs`,
  );
  let failed = 0;
  for (const result of results) {
    const sizeOk = result.bytes <= SIZE_TARGET_BYTES;
    const initOk = result.medianInitMs <= INIT_TARGET_MS;
    if (!sizeOk || !initOk) failed++;
    const range = `${Math.min(...result.initMs).toFixed(0)}-${Math.max(...result.initMs).toFixed(0)}`;
    console.log(
      `${result.name.padEnd(10)} ${kb(result.bytes).padStart(9)}${sizeOk ? ' ' : '!'}${kb(result.mapBytes).padStart(9)} ${kb(result.zippedBytes).padStart(9)} ${result.medianInitMs.toFixed(1).padStart(8)}${initOk ? ' ' : '!'}${`(${range})`.padStart(12)} ${result.medianInitCpuMs.toFixed(1).padStart(7)}  ${result.largest.map(([input, bytes]) => `${input} ${kb(bytes)}`).join(', ')}`,
    );
  }
  console.log(`targets: bundle ≤ ${kb(SIZE_TARGET_BYTES)}, init ≤ ${INIT_TARGET_MS} ms (! marks a miss; judged on wall time, cpu shown for a loaded machine)`);
  if (failed) console.log(`${failed} of ${results.length} functions miss a target`);
  return failed ? 1 : 0;
}
