// Direct vs. through Airlock: GET one object and LIST, sequential and 16
// concurrent, in one run against the same kube-apiserver.
import { down, up } from '../test/cluster/harness.ts';
import { STAGES, type StageReport } from '../local/stage-timing.ts';
import { agentToken, createConnection, httpsClient, READ_PROD_POLICY, readText, startStackProcess, stats, type Stats, type Target } from './support.ts';

const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 400);
const CONCURRENT_WORKERS = 16;
const CONCURRENT_EACH = Number(process.env.BENCH_CONCURRENT_EACH ?? 60);
const WARMUP = 30;

const PATHS = {
  get: '/api/v1/namespaces/prod/configmaps/app-config',
  list: '/api/v1/namespaces/prod/pods',
};

async function sequential(target: Target, path: string): Promise<Stats> {
  const client = httpsClient(target);
  try {
    for (let i = 0; i < WARMUP; i++) await client.get(path);
    const samples: number[] = [];
    const started = performance.now();
    for (let i = 0; i < SEQUENTIAL; i++) {
      const { status, ms } = await client.get(path);
      if (status !== 200) throw new Error(`${path}: HTTP ${status}`);
      samples.push(ms);
    }
    return stats(samples, performance.now() - started);
  } finally {
    client.close();
  }
}

async function concurrent(target: Target, path: string): Promise<Stats> {
  const client = httpsClient(target, CONCURRENT_WORKERS);
  try {
    await Promise.all(Array.from({ length: CONCURRENT_WORKERS }, () => client.get(path)));
    const samples: number[] = [];
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENT_WORKERS }, async () => {
        for (let i = 0; i < CONCURRENT_EACH; i++) {
          const { status, ms } = await client.get(path);
          if (status !== 200) throw new Error(`${path}: HTTP ${status}`);
          samples.push(ms);
        }
      }),
    );
    return stats(samples, performance.now() - started);
  } finally {
    client.close();
  }
}

const f = (n: number) => n.toFixed(2).padStart(7);

interface CaseReport {
  name: string;
  report: StageReport;
  /** The emulators' CPU over the case (their own process). */
  emulatorCpuMs: number | undefined;
}

/** Per case: CPU per request of Airlock's process and of the emulators', then each stage's wall p50/p99 and mean CPU. */
function printStages(reports: CaseReport[]): void {
  console.log(
    "\nper stage (Airlock process; emulators in their own process) — wall p50/p99 ms, mean CPU ms of the call (sequential cases: the main thread's CPU shared among the calls open at the time)",
  );
  console.log(`${'stage'.padEnd(14)}${reports.map((r) => r.name.padStart(26)).join('')}`);
  const perRequest = (ms: number | undefined, r: CaseReport) => (ms === undefined || !r.report.requests ? '-' : (ms / r.report.requests).toFixed(2));
  console.log(`${'CPU/req airlk'.padEnd(14)}${reports.map((r) => `${perRequest(r.report.cpuMs, r)} ms`.padStart(26)).join('')}`);
  console.log(`${'CPU/req emul.'.padEnd(14)}${reports.map((r) => `${perRequest(r.emulatorCpuMs, r)} ms`.padStart(26)).join('')}`);
  // The main thread's CPU while no port call was open: front door, token, policy, streaming, TLS — the gateway's own work.
  console.log(`${'no call open'.padEnd(14)}${reports.map((r) => (r.report.outsideCpuMs ? `${r.report.outsideCpuMs.toFixed(2)} ms` : '-').padStart(26)).join('')}`);
  for (const stage of STAGES) {
    const cells = reports.map((r) => {
      const s = r.report.stages.find((item) => item.stage === stage);
      return (s && s.count ? `${s.p50Ms.toFixed(2)}/${s.p99Ms.toFixed(2)} ${s.cpuMeanMs ? s.cpuMeanMs.toFixed(2) : '-'}` : '-').padStart(26);
    });
    console.log(`${stage.padEnd(14)}${cells.join('')}`);
  }
}

export async function runProxyBench(): Promise<number> {
  const cluster = await up({ ownerPid: process.pid });
  const stack = await startStackProcess();
  try {
    await createConnection(stack, cluster.info, 'bench', READ_PROD_POLICY);
    const token = await agentToken(stack, 'bench', 'bench-agent');
    const direct: Target = { base: cluster.info.server, ca: cluster.info.caPem, token: cluster.info.connectionToken };
    const proxied: Target = { base: `${stack.url}/k8s/bench`, ca: readText(`${stack.home}/ca.crt`), token };

    console.log(`Airlock proxy benchmark — ${SEQUENTIAL} sequential, ${CONCURRENT_WORKERS}×${CONCURRENT_EACH} concurrent, per case; recording on`);
    console.log('case                      direct p50   p99    rps | airlock p50   p99    rps | added p50   p99 | rps ratio');
    let proxiedRequests = WARMUP * 2 + CONCURRENT_WORKERS * 2;
    const results: Record<string, { direct: Stats; airlock: Stats }> = {};
    const reports: CaseReport[] = [];
    for (const [name, path] of Object.entries(PATHS)) {
      for (const mode of ['sequential', 'concurrent'] as const) {
        const run = mode === 'sequential' ? sequential : concurrent;
        const directStats = await run(direct, path);
        // CPU per stage only for sequential cases: there a stage's span is (mostly) its own work.
        await stack.stages.reset(mode === 'sequential');
        const emulatorCpuBefore = (await stack.stages.report()).emulatorCpuMs;
        const airlockStats = await run(proxied, path);
        // Completion and transcript of the last requests settle after their responses.
        await new Promise((resolve) => setTimeout(resolve, 300));
        const report = await stack.stages.report();
        proxiedRequests += airlockStats.count;
        results[`${name} ${mode}`] = { direct: directStats, airlock: airlockStats };
        reports.push({
          name: `${name.toUpperCase()} ${mode}`,
          report,
          emulatorCpuMs: report.emulatorCpuMs !== undefined && emulatorCpuBefore !== undefined ? report.emulatorCpuMs - emulatorCpuBefore : undefined,
        });
        console.log(
          `${`${name.toUpperCase()} ${mode}`.padEnd(22)} ${f(directStats.p50)} ${f(directStats.p99)} ${directStats.rps.toFixed(0).padStart(6)} | ${f(airlockStats.p50)} ${f(airlockStats.p99)} ${airlockStats.rps.toFixed(0).padStart(6)} | ${f(airlockStats.p50 - directStats.p50)} ${f(airlockStats.p99 - directStats.p99)} | ${(airlockStats.rps / directStats.rps).toFixed(2)}`,
        );
      }
    }
    printStages(reports);

    // Every proxied request has exactly one completed record. Completions (transcript, chain link) run after
    // the answers, so the last ones may still be settling: wait for them (at most 60 s), and say how long it took.
    const settleStarted = performance.now();
    let items: { id: string; status: number; decision: string }[] = [];
    for (;;) {
      const audit = await stack.cli(['--json', 'audit', 'list', '--agent', 'bench-agent', '--limit', '1000', '--all']);
      items = (JSON.parse(audit.stdout) as { items: typeof items }).items;
      const settled = items.filter((item) => item.status === 200 && item.decision === 'allowed').length >= proxiedRequests;
      if (settled || performance.now() - settleStarted > 60_000) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const ids = new Set(items.map((item) => item.id));
    const complete = items.filter((item) => item.status === 200 && item.decision === 'allowed').length;
    const ok = items.length === proxiedRequests && ids.size === items.length && complete === proxiedRequests;
    console.log(
      `records: ${items.length} for ${proxiedRequests} proxied requests, ${ids.size} distinct, ${complete} complete with status 200 (settled ${((performance.now() - settleStarted) / 1000).toFixed(1)} s after the last answer) — ${ok ? 'OK' : 'MISMATCH'}`,
    );
    const seq = results['get sequential']!;
    console.log(
      `targets: added p50 ≤ 3 ms (GET: ${(seq.airlock.p50 - seq.direct.p50).toFixed(2)} ms), added p99 ≤ 10 ms (GET: ${(seq.airlock.p99 - seq.direct.p99).toFixed(2)} ms), ≥ 300 proxied req/s (best: ${Math.max(...Object.values(results).map((r) => r.airlock.rps)).toFixed(0)})`,
    );
    return ok ? 0 : 1;
  } finally {
    await stack.stop();
    if (cluster.started) await down({ quiet: true });
  }
}
