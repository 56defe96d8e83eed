// dynalite (DynamoDB) and fauxqs (S3/SNS/SQS), started in a worker thread of
// the local stack's process: their CPU work then runs beside the gateway's
// event loop instead of on it — as remote AWS services would.
import { Worker } from 'node:worker_threads';

export interface EmulatorEndpoints {
  dynamodb: string;
  s3: string;
  sns: string;
  sqs: string;
}

export interface Emulators {
  endpoints: EmulatorEndpoints;
  stop(): Promise<void>;
}

/** `inline` runs them on the caller's thread (AIRLOCK_EMULATORS=inline; for measurements). */
export async function startEmulators(home: string, region: string, mode = process.env.AIRLOCK_EMULATORS ?? 'worker'): Promise<Emulators> {
  if (mode === 'inline') {
    const { startEmulatorServers } = await import('./emulators-worker.ts');
    return startEmulatorServers(home, region);
  }
  const worker = new Worker(new URL('./emulators-worker.ts', import.meta.url), { workerData: { home, region, airlockEmulators: true } });
  const endpoints = await new Promise<EmulatorEndpoints>((resolve, reject) => {
    worker.once('message', (message: { ready?: EmulatorEndpoints; error?: string }) => {
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
