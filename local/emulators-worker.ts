// The emulator servers, and the worker-thread and child-process entries that run them (see emulators.ts).
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { startFauxqs } from 'fauxqs';
import { errorText } from '../lambdas/core/errors.ts';

const require = createRequire(import.meta.url);
const dynalite = require('dynalite') as (options: { path?: string; createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => Server;

export interface EmulatorServers {
  endpoints: { dynamodb: string; s3: string; sns: string; sqs: string };
  stop(): Promise<void>;
}

export async function startEmulatorServers(home: string, region: string): Promise<EmulatorServers> {
  mkdirSync(join(home, 'dynamodb'), { recursive: true });
  mkdirSync(join(home, 'fauxqs'), { recursive: true });
  const dynamo = dynalite({ path: join(home, 'dynamodb'), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    dynamo.once('error', reject);
    dynamo.listen(0, '127.0.0.1', () => resolve());
  });
  const fauxqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false, dataDir: join(home, 'fauxqs'), defaultRegion: region });
  const aws = `http://127.0.0.1:${fauxqs.port}`;
  return {
    endpoints: { dynamodb: `http://127.0.0.1:${(dynamo.address() as AddressInfo).port}`, s3: aws, sns: aws, sqs: aws },
    async stop() {
      await fauxqs.stop();
      await new Promise<void>((resolve) => dynamo.close(() => resolve()));
    },
  };
}

if (!isMainThread && (workerData as { airlockEmulators?: boolean })?.airlockEmulators) {
  const { home, region } = workerData as { home: string; region: string };
  try {
    const servers = await startEmulatorServers(home, region);
    parentPort!.postMessage({ ready: servers.endpoints });
    parentPort!.on('message', async (message) => {
      if (message !== 'stop') return;
      await servers.stop();
      process.exit(0);
    });
  } catch (error) {
    parentPort!.postMessage({ error: errorText(error, { name: false }) });
  }
}

if (isMainThread && process.send && process.env.AIRLOCK_EMULATORS_HOME) {
  try {
    const servers = await startEmulatorServers(process.env.AIRLOCK_EMULATORS_HOME, process.env.AIRLOCK_EMULATORS_REGION ?? 'us-east-1');
    process.send({ ready: servers.endpoints });
    process.on('message', async (message) => {
      if (message === 'cpu') {
        const used = process.cpuUsage();
        process.send!({ cpuMs: (used.user + used.system) / 1000 });
      } else if (message === 'stop') {
        await servers.stop();
        process.exit(0);
      }
    });
    // The parent gone: nothing is left to serve.
    process.on('disconnect', () => process.exit(0));
  } catch (error) {
    process.send({ error: errorText(error, { name: false }) });
    process.exit(1);
  }
}
