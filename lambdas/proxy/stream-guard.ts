// A forwarded response streams only while the access it was allowed under
// lasts. The gateway checked the window when the request started; a watch or
// `logs -f` can stay open much longer, so while it is open this guard ends it
// at the window's end (a timer), and within one recheck interval of a revoke
// or a disable (the same state read and check as at the start, repeated). A
// state read that fails or hangs ends the stream too (fail closed). A JSON
// watch ends with a final ERROR event carrying a Kubernetes Status, so kubectl
// prints why; other streams just end.
import { Transform, type TransformCallback } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { StreamEnd } from '../core/model.ts';
import { AirlockError, kubernetesStatus } from '../core/status.ts';

export interface StreamGuardOptions {
  upstream: IncomingMessage;
  /** The stream the client reads (it ends when the guard ends it). */
  output: Transform;
  /** A JSON watch (or exec's framing): only whole lines pass, and Airlock's end is a final line (a watch ERROR event unless endLine says otherwise). */
  jsonWatch: boolean;
  /** The final line's object when Airlock ends a framed stream (default: a watch ERROR event). */
  endLine?: (error: AirlockError) => unknown;
  windowEndsAt: number;
  /** A watch whose forwarded timeoutSeconds was the window's: its upstream ending at the window's end is the window ending. */
  capped: boolean;
  now: () => number;
  /** Resolves while access is still open; throws the refusal (AirlockError) when it is not, anything else when the state cannot be read. */
  recheck: () => Promise<void>;
  recheckMs: number;
  /** A recheck that takes longer than this counts as a failed read. */
  recheckTimeoutMs: number;
  /** The refusal the window's end gives. */
  windowEnded: () => AirlockError;
}

export interface StreamOutcome {
  how: StreamEnd;
  reason: string;
}

/** The upstream's own end within this long of the window's end, with the window's deadline forwarded, is the window ending (timeoutSeconds is whole seconds). */
const CAPPED_END_SLACK_MS = 2000;
// setTimeout's largest delay; windows are far shorter, this only keeps a bad expiresAt from firing at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Wires upstream -> output under the guard; resolves once the output has ended, saying how and why. */
export function guardStream(options: StreamGuardOptions): Promise<StreamOutcome> {
  const { upstream, output, now } = options;
  const framer = new EventFramer(options.jsonWatch);
  upstream.pipe(framer, { end: false });
  framer.pipe(output);

  let outcome: StreamOutcome | undefined;
  const timers: NodeJS.Timeout[] = [];
  const clear = () => timers.forEach((timer) => clearTimeout(timer));

  /** Airlock ends the stream: stop reading the cluster, then end the client's response cleanly. */
  const stop = (how: StreamEnd, error: AirlockError) => {
    if (outcome) return;
    outcome = { how, reason: error.message };
    clear();
    upstream.unpipe(framer);
    upstream.destroy();
    framer.discardPartial();
    const last = options.endLine ? options.endLine(error) : { type: 'ERROR', object: kubernetesStatus(error) };
    framer.end(options.jsonWatch ? Buffer.from(`${JSON.stringify(last)}\n`) : undefined);
  };

  upstream.once('end', () => {
    if (outcome) return;
    if (options.capped && now() >= options.windowEndsAt - CAPPED_END_SLACK_MS) {
      stop('window-ended', options.windowEnded());
      return;
    }
    outcome = { how: 'complete', reason: 'the cluster ended the response' };
    clear();
    framer.end();
  });
  // A destroyed response may also emit 'error'; 'close' says it ended without its end.
  upstream.on('error', () => undefined);
  upstream.once('close', () => {
    if (outcome || upstream.complete) return;
    outcome = { how: 'upstream-closed', reason: 'the connection to the cluster closed before the response ended' };
    clear();
    output.destroy();
  });
  output.once('close', () => {
    if (!output.writableFinished && !outcome) {
      outcome = { how: 'client-closed', reason: 'the client closed the connection' };
      clear();
    }
    // A complete response leaves its keep-alive connection alone.
    if (!upstream.complete) upstream.destroy();
  });

  timers.push(setTimeout(() => stop('window-ended', options.windowEnded()), Math.min(Math.max(0, options.windowEndsAt - now()), MAX_TIMER_MS)));
  let checking = false;
  const recheck = async () => {
    if (checking || outcome) return;
    checking = true;
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([options.recheck(), new Promise((_, reject) => (timeout = setTimeout(() => reject(new Error('state read timed out')), options.recheckTimeoutMs)))]);
    } catch (error) {
      const { how, refusal } = streamEndFor(error);
      stop(how, refusal);
    } finally {
      clearTimeout(timeout);
      checking = false;
    }
  };
  const interval = setInterval(() => void recheck(), options.recheckMs);
  timers.push(interval);

  return new Promise<StreamOutcome>((resolve) => {
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      clear();
      clearInterval(interval);
      resolve(outcome ?? { how: 'client-closed', reason: 'the client closed the connection' });
    };
    output.once('end', settle);
    output.once('close', settle);
    output.once('error', settle);
  });
}

/** What a failed recheck means for the stream, and the Status the agent is sent. */
export function streamEndFor(error: unknown): { how: StreamEnd; refusal: AirlockError } {
  if (!(error instanceof AirlockError)) {
    return { how: 'state-unavailable', refusal: new AirlockError(503, 'state_unavailable', 'the window could not be re-checked, so Airlock ended this stream; retry shortly') };
  }
  const ended = `${error.message} (Airlock ended this stream)`;
  if (error.code === 'agent_disabled' || error.code === 'agent_unknown') return { how: 'agent-disabled', refusal: new AirlockError(410, error.code, ended) };
  if (error.code === 'window_expired') return { how: 'window-ended', refusal: new AirlockError(410, error.code, ended) };
  return { how: 'revoked', refusal: new AirlockError(410, error.code, ended) };
}

/** Passes bytes through; for a JSON watch only whole newline-ended events, so a final event never lands inside a cut one. */
class EventFramer extends Transform {
  private readonly framed: boolean;
  private pending: Buffer[] = [];

  constructor(framed: boolean) {
    super();
    this.framed = framed;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.framed) {
      callback(null, chunk);
      return;
    }
    const last = chunk.lastIndexOf(10);
    if (last < 0) {
      this.pending.push(chunk);
      callback();
      return;
    }
    const whole = Buffer.concat([...this.pending, chunk.subarray(0, last + 1)]);
    this.pending = last + 1 < chunk.length ? [chunk.subarray(last + 1)] : [];
    callback(null, whole);
  }

  override _flush(callback: TransformCallback): void {
    callback(null, this.pending.length ? Buffer.concat(this.pending) : undefined);
  }

  /** Drops a cut event (the upstream was stopped mid-event). */
  discardPartial(): void {
    this.pending = [];
  }
}
