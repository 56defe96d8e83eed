// npm run bench -- size [--runs N]
//   Bundles every function exactly as the CDK constructs do (the options and
//   the layout come from infra/bundling.ts, so they cannot drift) and prints,
//   per function: what a container's init loads (the entry and every chunk it
//   imports statically) and the total of all chunks; the module init time —
//   `await import()` of the entry in a fresh Node process, measured with
//   performance.now() around the import, median of N runs — and the CPU time
//   of that import (process.cpuUsage), which a loaded machine stretches far
//   less than the wall time. Then, for each chunk an import() names, what its
//   first use costs: in a fresh process, after the entry, the import() of that
//   chunk (what the first request on that path waits for).
//   Targets (issue 15), on what init loads: ≤ 500 KB, ≤ 100 ms. Returns 1 if a
//   bundle fails to build, a chunk fails to load, or a target is missed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { build } from 'esbuild';
import { BUNDLE, BUNDLE_NAMES, FUNCTION_NODE_OPTIONS, PROJECT_ROOT, bundleLayout, esbuildOptions, functionEntry, type BundleName } from '../infra/bundling.ts';

export const SIZE_TARGET_BYTES = 500 * 1024;
export const INIT_TARGET_MS = 100;

export interface LazyChunkCost {
  /** The module the import() names (a source file, or a package's). */
  module: string;
  /** The chunk and what it imports that init did not load. */
  bytes: number;
  medianMs: number;
  medianCpuMs: number;
}

export interface SizeResult {
  name: BundleName;
  /** What init loads: the entry and the chunks it imports statically. */
  initBytes: number;
  initFiles: number;
  /** Every chunk. */
  totalBytes: number;
  totalFiles: number;
  mapBytes: number;
  /** Deflated size of every file (chunks and maps): about what the deployment zip adds. */
  zippedBytes: number;
  initMs: number[];
  medianInitMs: number;
  /** CPU time (user + system) of the same imports. */
  initCpuMs: number[];
  medianInitCpuMs: number;
  /** The largest inputs of what init loads (package or source folder -> bytes). */
  largest: [string, number][];
  lazy: LazyChunkCost[];
}

/**
 * The module init of one bundle in a fresh process, and then (with `chunk`) the import() of that chunk.
 * Lambda's Node runtime provides the `awslambda` global (streaming handlers use it at import time);
 * a stand-in is installed before the clock starts.
 */
function measureImport(entry: string, chunk?: string): { wall: number; cpu: number } {
  const timed = (file: string) => [
    'cpu = process.cpuUsage();',
    'started = performance.now();',
    `module = await import(${JSON.stringify(pathToFileURL(file).href)});`,
    'elapsed = performance.now() - started;',
    'used = process.cpuUsage(cpu);',
  ];
  const script = [
    'globalThis.awslambda ??= { streamifyResponse: (handler) => handler, HttpResponseStream: { from: (stream) => stream } };',
    'let cpu, started, module, elapsed, used;',
    ...timed(entry),
    "if (typeof module.handler !== 'function') throw new Error('the bundle exports no handler');",
    ...(chunk ? timed(chunk) : []),
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
  if (result.status !== 0) throw new Error(`importing ${chunk ?? entry} failed:\n${result.stderr}`);
  return JSON.parse(result.stdout) as { wall: number; cpu: number };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

const kb = (bytes: number) => `${(bytes / 1024).toFixed(0)} KB`;

const sizeOf = (files: string[]) => files.reduce((sum, file) => sum + statSync(file).size, 0);

function measured(runs: number, entry: string, chunk?: string): { wall: number[]; cpu: number[] } {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let run = 0; run < runs; run++) {
    const once = measureImport(entry, chunk);
    wall.push(once.wall);
    cpu.push(once.cpu);
  }
  return { wall, cpu };
}

export async function measureBundles(runs = 5): Promise<SizeResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-size-'));
  try {
    const results: SizeResult[] = [];
    for (const name of BUNDLE_NAMES) {
      const outdir = join(dir, name);
      const built = await build(esbuildOptions(functionEntry(name), outdir));
      const layout = bundleLayout(built.metafile);
      const maps = layout.all.map((file) => `${file}.map`);
      const zippedBytes = deflateRawSync(Buffer.concat([...layout.all, ...maps].map((file) => readFileSync(file)))).length;
      const inputs = new Map<string, number>();
      for (const [file, output] of Object.entries(built.metafile.outputs)) {
        if (!layout.init.includes(join(process.cwd(), file))) continue;
        for (const [path, input] of Object.entries(output.inputs)) {
          const match = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(path);
          const key = match ? match[1]! : path.split('/').slice(0, 2).join('/');
          inputs.set(key, (inputs.get(key) ?? 0) + input.bytesInOutput);
        }
      }
      const largest = [...inputs].sort((a, b) => b[1] - a[1]).slice(0, 3);
      const init = measured(runs, layout.entry);
      const lazy = layout.lazy.map((chunk) => {
        const first = measured(runs, layout.entry, chunk.file);
        const module = chunk.module.includes('node_modules/')
          ? chunk.module.slice(chunk.module.lastIndexOf('node_modules/') + 'node_modules/'.length)
          : relative(PROJECT_ROOT, join(process.cwd(), chunk.module));
        return { module, bytes: sizeOf(chunk.adds), medianMs: median(first.wall), medianCpuMs: median(first.cpu) };
      });
      results.push({
        name,
        initBytes: sizeOf(layout.init),
        initFiles: layout.init.length,
        totalBytes: sizeOf(layout.all),
        totalFiles: layout.all.length,
        mapBytes: sizeOf(maps),
        zippedBytes,
        initMs: init.wall,
        medianInitMs: median(init.wall),
        initCpuMs: init.cpu,
        medianInitCpuMs: median(init.cpu),
        largest,
        lazy,
      });
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
  console.log(
    `Bundles as deployed (infra/bundling.ts: ESM, minified, ${BUNDLE.target}, AWS SDK bundled, code splitting); init = what a container's start loads (the entry and the chunks it imports statically), timed as the median of ${runs} fresh-process imports`,
  );
  console.log(
    `${'function'.padEnd(20)} ${'init'.padStart(9)} ${'all chunks'.padStart(14)} ${'maps'.padStart(8)} ${'zip≈'.padStart(8)} ${'init ms'.padStart(8)} ${'(min-max)'.padStart(11)} ${'cpu ms'.padStart(7)}  largest inputs of init`,
  );
  let failed = 0;
  for (const result of results) {
    const sizeOk = result.initBytes <= SIZE_TARGET_BYTES;
    const initOk = result.medianInitMs <= INIT_TARGET_MS;
    if (!sizeOk || !initOk) failed++;
    const range = `${Math.min(...result.initMs).toFixed(0)}-${Math.max(...result.initMs).toFixed(0)}`;
    console.log(
      `${result.name.padEnd(20)} ${kb(result.initBytes).padStart(9)}${sizeOk ? ' ' : '!'}${`${kb(result.totalBytes)} /${result.totalFiles}`.padStart(13)} ${kb(result.mapBytes).padStart(8)} ${kb(result.zippedBytes).padStart(8)} ${result.medianInitMs.toFixed(1).padStart(8)}${initOk ? ' ' : '!'}${`(${range})`.padStart(10)} ${result.medianInitCpuMs.toFixed(1).padStart(7)}  ${result.largest.map(([input, bytes]) => `${input} ${kb(bytes)}`).join(', ')}`,
    );
  }
  console.log(`targets, on what init loads: ≤ ${kb(SIZE_TARGET_BYTES)}, init ≤ ${INIT_TARGET_MS} ms (! marks a miss; judged on wall time, cpu shown for a loaded machine)`);
  console.log('');
  console.log(`First use of a chunk loaded by import() (in a fresh process after init; median of ${runs}): what the first request on that path waits for`);
  console.log(`${'function'.padEnd(20)} ${'module the import() names'.padEnd(58)} ${'adds'.padStart(8)} ${'ms'.padStart(7)} ${'cpu ms'.padStart(7)}`);
  for (const result of results) {
    for (const chunk of result.lazy) {
      console.log(`${result.name.padEnd(20)} ${chunk.module.padEnd(58)} ${kb(chunk.bytes).padStart(8)} ${chunk.medianMs.toFixed(1).padStart(7)} ${chunk.medianCpuMs.toFixed(1).padStart(7)}`);
    }
  }
  if (failed) console.log(`${failed} of ${results.length} functions miss a target`);
  return failed ? 1 : 0;
}
