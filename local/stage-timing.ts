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
//   completion    records.complete
//   transcript    transcripts.put
// CPU: process.cpuUsage() over each port call (in sequential cases: that call's own work,
// plus whatever else this process did meanwhile); per request: the process's CPU / requests.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Server } from 'node:https';
import type { Services } from '../lambdas/runtime/services.ts';

export const STAGES = ['front door', 'token', 'state read', 'record begin', 'policy+path', 'upstream', 'streaming', 'completion', 'transcript'] as const;
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
  /** Mean CPU over the span (sequential cases only mean the span's own work). */
  cpuMeanMs: number;
}

export interface StageReport {
  requests: number;
  /** This process's CPU since the last reset. */
  cpuMs: number;
  stages: StageSummary[];
}

const current = new AsyncLocalStorage<RequestTrace>();

class Collector {
  readonly withCpu: boolean;
  wall = new Map<StageName, number[]>();
  cpu = new Map<StageName, number[]>();
  requests = 0;
  cpuStart = process.cpuUsage();

  constructor(withCpu: boolean) {
    this.withCpu = withCpu;
  }

  add(stage: StageName, ms: number, cpuMs: number): void {
    (this.wall.get(stage) ?? this.wall.set(stage, []).get(stage)!).push(ms);
    (this.cpu.get(stage) ?? this.cpu.set(stage, []).get(stage)!).push(cpuMs);
  }

  report(): StageReport {
    const used = process.cpuUsage(this.cpuStart);
    const at = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    return {
      requests: this.requests,
      cpuMs: (used.user + used.system) / 1000,
      stages: STAGES.map((stage) => {
        const samples = [...(this.wall.get(stage) ?? [])].sort((a, b) => a - b);
        const cpu = this.withCpu ? (this.cpu.get(stage) ?? []) : [];
        return { stage, count: samples.length, p50Ms: at(samples, 0.5), p99Ms: at(samples, 0.99), cpuMeanMs: cpu.length ? cpu.reduce((a, b) => a + b, 0) / cpu.length : 0 };
      }),
    };
  }
}

const cpuMsSince = (start: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
};

/** Replaces `object[method]` with a version that times each call as `stage` (the promise, or for forward the response head). */
function timeMethod<T extends object>(collector: () => Collector, object: T, method: keyof T & string, stage: StageName): void {
  const original = (object[method] as (...args: unknown[]) => Promise<unknown>).bind(object);
  (object as Record<string, unknown>)[method] = (...args: unknown[]) => {
    const trace = current.getStore();
    const start = performance.now();
    // getrusage per call costs CPU itself: only where it means something (sequential cases).
    const cpu = collector().withCpu ? process.cpuUsage() : undefined;
    const done = (): void => {
      const end = performance.now();
      collector().add(stage, end - start, cpu ? cpuMsSince(cpu) : 0);
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
          trace.spans.filter((span) => span.stage !== 'completion' && span.stage !== 'transcript').map((span) => span.span),
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
