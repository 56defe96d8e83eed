// dynalite (DynamoDB) and fauxqs (S3/SNS/SQS), started in a worker thread of
// the local stack's process: their CPU work then runs beside the gateway's
// event loop instead of on it — as remote AWS services would. For measurements,
// AIRLOCK_EMULATORS=process runs them in a child process (the gateway's CPU is
// then its own), and `inline` on the caller's thread.
import { fork } from 'node:child_process';
import { Worker } from 'node:worker_threads';

export interface EmulatorEndpoints {
  /** One DynamoDB endpoint for every table (it routes each call to the emulator serving its table). */
  dynamodb: string;
  /** Each table group's own emulator, without the routing hop: what the stack's own clients use. */
  dynamodbDirect: { state: string; records: string };
  s3: string;
  sns: string;
  sqs: string;
}

export interface Emulators {
  endpoints: EmulatorEndpoints;
  /** CPU milliseconds the emulators used since they started (process mode only). */
  cpuMs?(): Promise<number>;
  stop(): Promise<void>;
}

type Message = { ready?: EmulatorEndpoints; error?: string; cpuMs?: number };

export async function startEmulators(home: string, region: string, mode = process.env.AIRLOCK_EMULATORS ?? 'worker'): Promise<Emulators> {
  if (mode === 'inline') {
    const { startEmulatorServers } = await import('./emulators-worker.ts');
    return startEmulatorServers(home, region);
  }
  if (mode === 'process') return startEmulatorProcess(home, region);
  const worker = new Worker(new URL('./emulators-worker.ts', import.meta.url), { workerData: { home, region, airlockEmulators: true } });
  const endpoints = await new Promise<EmulatorEndpoints>((resolve, reject) => {
    worker.once('message', (message: Message) => {
      if (message.ready) resolve(message.ready);
      else reject(new Error(`emulators failed to start: ${message.error}`));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`emulators exited with ${code}`)));
  });
  return {
    endpoints,
    async stop() {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage('stop');
      const timer = setTimeout(() => void worker.terminate(), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function startEmulatorProcess(home: string, region: string): Promise<Emulators> {
  const child = fork(new URL('./emulators-worker.ts', import.meta.url), [], {
    env: { ...process.env, AIRLOCK_EMULATORS_HOME: home, AIRLOCK_EMULATORS_REGION: region },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const endpoints = await new Promise<EmulatorEndpoints>((resolve, reject) => {
    child.once('message', (message: Message) => {
      if (message.ready) resolve(message.ready);
      else reject(new Error(`emulators failed to start: ${message.error}`));
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`emulators exited with ${code}`)));
  });
  // The emulators end with this process, however it ends.
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  return {
    endpoints,
    cpuMs: () =>
      new Promise((resolve) => {
        const answer = (message: Message) => {
          if (typeof message.cpuMs !== 'number') return;
          child.off('message', answer);
          resolve(message.cpuMs);
        };
        child.on('message', answer);
        child.send('cpu');
      }),
    async stop() {
      process.off('exit', kill);
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.send('stop');
      const timer = setTimeout(kill, 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
