// Where a proxied request's time and CPU go, per stage — for `npm run bench`
// only (AIRLOCK_STAGE_TIMING=1 and an IPC channel to the bench). Nothing in the
// request path changes: the ports the gateway already calls (tokens, state,
// records, transcripts, forwarder) and the front door are timed from outside,
// each call tied to its request by AsyncLocalStorage.
//
//   front door    arrival at the HTTPS server -> the gateway starts (body read, event, middy)
//   token         tokens.verify
//   state read    state.getProxyContext (overlaps record begin)
//   record begin  records.begin (the write-ahead record)
//   policy+path   the gateway's own work before forwarding: handle's time not spent waiting on a port
//   upstream      forwarder.forward: request sent -> response head
//   streaming     response head -> the last byte written to the agent
//   transcript    transcripts.put
//   chain link    records.advanceChain (one per batch of a partition's completions, core/audit-chain.ts)
//   completion    records.complete
// CPU (sequential cases): the main thread's CPU (process.threadCpuUsage) between any two
// port-call starts or ends is shared evenly among the port calls open then, so the state
// read and the write-ahead record, which overlap, each carry their half, and the previous
// request's completion still running beside the next request's calls takes its share
// instead of being counted again in theirs; CPU while no port call is open is the
// gateway's own (front door, policy, streaming, TLS). Stage CPU + "outside" = the main
// thread's CPU. Per request: the process's CPU (all threads) / requests.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Server } from 'node:https';
import type { Services } from '../lambdas/runtime/services.ts';

export const STAGES = ['front door', 'token', 'state read', 'record begin', 'policy+path', 'upstream', 'streaming', 'transcript', 'chain link', 'completion'] as const;
export type StageName = (typeof STAGES)[number];

interface Span {
  start: number;
  end: number;
}

interface RequestTrace {
  arrived: number;
  handleStart?: number;
  handleEnd?: number;
  spans: { stage: StageName; span: Span }[];
}

export interface StageSummary {
  stage: StageName;
  count: number;
  p50Ms: number;
  p99Ms: number;
  /** Mean CPU share of the call (sequential cases; see the top of this file). */
  cpuMeanMs: number;
}

export interface StageReport {
  requests: number;
  /** This process's CPU since the last reset (all threads). */
  cpuMs: number;
  /** The main thread's CPU while no port call was open (sequential cases; the gateway's own work), per request. */
  outsideCpuMs: number;
  stages: StageSummary[];
}

/** A port call being timed, and its share of the main thread's CPU so far. */
interface OpenCall {
  cpuMs: number;
}

const current = new AsyncLocalStorage<RequestTrace>();

class Collector {
  readonly withCpu: boolean;
  wall = new Map<StageName, number[]>();
  cpu = new Map<StageName, number[]>();
  requests = 0;
  cpuStart = process.cpuUsage();
  /** Port calls open now; the main thread's CPU at the last start or end; CPU while none was open. */
  private readonly open = new Set<OpenCall>();
  private mark = threadCpuMs();
  private outsideMs = 0;

  constructor(withCpu: boolean) {
    this.withCpu = withCpu;
  }

  /** The main thread's CPU since the last start or end, shared among the calls open over it. */
  private share(): void {
    const now = threadCpuMs();
    const spent = now - this.mark;
    this.mark = now;
    if (this.open.size === 0) this.outsideMs += spent;
    else for (const call of this.open) call.cpuMs += spent / this.open.size;
  }

  start(): OpenCall | undefined {
    if (!this.withCpu) return undefined;
    this.share();
    const call = { cpuMs: 0 };
    this.open.add(call);
    return call;
  }

  end(call: OpenCall | undefined): number {
    if (!call) return 0;
    this.share();
    this.open.delete(call);
    return call.cpuMs;
  }

  add(stage: StageName, ms: number, cpuMs: number): void {
    (this.wall.get(stage) ?? this.wall.set(stage, []).get(stage)!).push(ms);
    (this.cpu.get(stage) ?? this.cpu.set(stage, []).get(stage)!).push(cpuMs);
  }

  report(): StageReport {
    const used = process.cpuUsage(this.cpuStart);
    const at = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    if (this.withCpu) this.share();
    return {
      requests: this.requests,
      cpuMs: (used.user + used.system) / 1000,
      outsideCpuMs: this.withCpu && this.requests ? this.outsideMs / this.requests : 0,
      stages: STAGES.map((stage) => {
        const samples = [...(this.wall.get(stage) ?? [])].sort((a, b) => a - b);
        const cpu = this.withCpu ? (this.cpu.get(stage) ?? []) : [];
        return { stage, count: samples.length, p50Ms: at(samples, 0.5), p99Ms: at(samples, 0.99), cpuMeanMs: cpu.length ? cpu.reduce((a, b) => a + b, 0) / cpu.length : 0 };
      }),
    };
  }
}

function threadCpuMs(): number {
  const used = process.threadCpuUsage();
  return (used.user + used.system) / 1000;
}

/** Replaces `object[method]` with a version that times each call as `stage` (the promise, or for forward the response head). */
function timeMethod<T extends object>(collector: () => Collector, object: T, method: keyof T & string, stage: StageName): void {
  const original = (object[method] as (...args: unknown[]) => Promise<unknown>).bind(object);
  (object as Record<string, unknown>)[method] = (...args: unknown[]) => {
    const trace = current.getStore();
    const start = performance.now();
    // getrusage per call costs CPU itself: only where it means something (sequential cases).
    const timing = collector();
    const call = timing.start();
    const done = (): void => {
      const end = performance.now();
      timing.add(stage, end - start, timing.end(call));
      trace?.spans.push({ stage, span: { start, end } });
    };
    return original(...args).finally(done);
  };
}

/** Milliseconds of `total` covered by none of `spans` (the gateway's own work between its waits). */
function uncovered(total: Span, spans: Span[]): number {
  const sorted = spans.map((span) => ({ start: Math.max(span.start, total.start), end: Math.min(span.end, total.end) })).filter((span) => span.end > span.start);
  sorted.sort((a, b) => a.start - b.start);
  let covered = 0;
  let reach = total.start;
  for (const span of sorted) {
    if (span.end <= reach) continue;
    covered += span.end - Math.max(span.start, reach);
    reach = span.end;
  }
  return total.end - total.start - covered;
}

/**
 * Instruments the stack's services and HTTPS server, and answers the bench over
 * IPC: "stage-reset" starts a new case ("stage-reset-cpu": also CPU per port call, which costs a
 * getrusage each), "stage-report" sends the StageReport.
 * `extra` adds to each report (the emulators' CPU).
 */
export function instrumentStages(services: Services, server: Server, extra: () => Promise<Record<string, unknown>> = async () => ({})): void {
  let collector = new Collector(false);
  const get = () => collector;
  timeMethod(get, services.tokens, 'verify', 'token');
  timeMethod(get, services.state, 'getProxyContext', 'state read');
  timeMethod(get, services.records, 'begin', 'record begin');
  timeMethod(get, services.records, 'complete', 'completion');
  timeMethod(get, services.transcripts, 'put', 'transcript');
  timeMethod(get, services.records, 'advanceChain', 'chain link');
  timeMethod(get, services.forwarder, 'forward', 'upstream');

  const gateway = services.gateway;
  const handle = gateway.handle.bind(gateway);
  gateway.handle = async (request) => {
    const trace = current.getStore();
    if (trace) trace.handleStart = performance.now();
    try {
      return await handle(request);
    } finally {
      if (trace) trace.handleEnd = performance.now();
    }
  };

  // Runs before the server's own listener, in the same emit: the trace is the request's from here on.
  server.prependListener('request', (req, res) => {
    if (!req.url?.startsWith('/k8s/')) return;
    const trace: RequestTrace = { arrived: performance.now(), spans: [] };
    current.enterWith(trace);
    res.once('finish', () => {
      const end = performance.now();
      collector.requests++;
      if (trace.handleStart === undefined || trace.handleEnd === undefined) return;
      collector.add('front door', trace.handleStart - trace.arrived, 0);
      collector.add(
        'policy+path',
        uncovered(
          { start: trace.handleStart, end: trace.handleEnd },
          trace.spans.filter((span) => span.stage !== 'completion' && span.stage !== 'transcript' && span.stage !== 'chain link').map((span) => span.span),
        ),
        0,
      );
      collector.add('streaming', end - trace.handleEnd, 0);
    });
  });

  process.on('message', (message: unknown) => {
    if (message === 'stage-reset' || message === 'stage-reset-cpu') {
      collector = new Collector(message === 'stage-reset-cpu');
      process.send?.({ stageReset: true });
    } else if (message === 'stage-report') {
      void extra().then((more) => process.send?.({ stageReport: { ...collector.report(), ...more } }));
    }
  });
}
