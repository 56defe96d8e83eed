// The emulator servers, and the worker-thread and child-process entries that run them (see emulators.ts).
//
// DynamoDB serves independent tables and operations at once; one dynalite serves one operation at a
// time (one thread). So each table group gets its own dynalite, in its own worker thread: the state
// table (and any other) in AIRLOCK_HOME/dynamodb, the records table in AIRLOCK_HOME/dynamodb-records,
// and fauxqs (S3/SNS/SQS) in a third. One DynamoDB endpoint in front routes each call by its table,
// so other clients (tests, the AWS CLI) see one endpoint as on AWS; the stack's own clients go to each
// emulator directly (no extra hop). The state read and the write-ahead record then overlap here as
// they do on DynamoDB.
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { createServer, request, Agent, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { errorText } from '../lambdas/core/errors.ts';

const require = createRequire(import.meta.url);

export interface EmulatorServers {
  endpoints: { dynamodb: string; dynamodbDirect: { state: string; records: string }; s3: string; sns: string; sqs: string };
  stop(): Promise<void>;
}

/** The table served by its own dynalite (the one written on every request beside the state read). */
const OWN_DYNALITE_TABLES = ['airlock-records'];

type Role = { kind: 'dynalite'; path: string } | { kind: 'fauxqs'; dataDir: string; region: string };

/** One server in one worker thread; resolves with its port. */
function startServerThread(role: Role): Promise<{ port: number; stop(): Promise<void> }> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { airlockEmulator: role } });
  return new Promise((resolve, reject) => {
    worker.once('message', (message: { port?: number; error?: string }) => {
      if (message.port === undefined) {
        reject(new Error(`${role.kind} failed to start: ${message.error}`));
        return;
      }
      resolve({
        port: message.port,
        async stop() {
          const exited = new Promise<void>((done) => worker.once('exit', () => done()));
          worker.postMessage('stop');
          const timer = setTimeout(() => void worker.terminate(), 10_000);
          await exited;
          clearTimeout(timer);
        },
      });
    });
    worker.once('error', reject);
  });
}

/** The table a DynamoDB JSON request names (TableName, or the first of RequestItems). */
function tableOf(body: Buffer): string | undefined {
  try {
    const input = JSON.parse(body.toString('utf8')) as { TableName?: unknown; RequestItems?: Record<string, unknown> };
    if (typeof input.TableName === 'string') return input.TableName;
    return input.RequestItems ? Object.keys(input.RequestItems)[0] : undefined;
  } catch {
    return undefined;
  }
}

/** One DynamoDB endpoint in front of several dynalites: each call goes to the one serving its table. */
function dynamoRouter(defaultPort: number, ports: Record<string, number>): Server {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const table = tableOf(body);
      const port = (table !== undefined ? ports[table] : undefined) ?? defaultPort;
      const upstream = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', (error) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: errorText(error) }));
      });
      upstream.end(body);
    });
  });
}

export async function startEmulatorServers(home: string, region: string): Promise<EmulatorServers> {
  const shared = join(home, 'dynamodb');
  const own = join(home, 'dynamodb-records');
  // Before the records table had its own dynalite, both tables lived in `dynamodb`: its copy keeps them.
  if (existsSync(shared) && !existsSync(own)) cpSync(shared, own, { recursive: true });
  for (const dir of [shared, own, join(home, 'fauxqs')]) mkdirSync(dir, { recursive: true });
  const [state, records, fauxqs] = await Promise.all([
    startServerThread({ kind: 'dynalite', path: shared }),
    startServerThread({ kind: 'dynalite', path: own }),
    startServerThread({ kind: 'fauxqs', dataDir: join(home, 'fauxqs'), region }),
  ]);
  const router = dynamoRouter(state.port, Object.fromEntries(OWN_DYNALITE_TABLES.map((table) => [table, records.port])));
  await new Promise<void>((resolve, reject) => {
    router.once('error', reject);
    router.listen(0, '127.0.0.1', () => resolve());
  });
  const aws = `http://127.0.0.1:${fauxqs.port}`;
  return {
    endpoints: {
      dynamodb: `http://127.0.0.1:${(router.address() as AddressInfo).port}`,
      dynamodbDirect: { state: `http://127.0.0.1:${state.port}`, records: `http://127.0.0.1:${records.port}` },
      s3: aws,
      sns: aws,
      sqs: aws,
    },
    async stop() {
      router.closeAllConnections();
      await new Promise<void>((resolve) => router.close(() => resolve()));
      await Promise.all([state.stop(), records.stop(), fauxqs.stop()]);
    },
  };
}

/** A worker thread serving one role (startServerThread). */
async function serveRole(role: Role): Promise<void> {
  let stop: () => Promise<void>;
  let port: number;
  if (role.kind === 'dynalite') {
    const dynalite = require('dynalite') as (options: { path?: string; createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => Server;
    const server = dynalite({ path: role.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    port = (server.address() as AddressInfo).port;
    stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
  } else {
    const { startFauxqs } = await import('fauxqs');
    const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false, dataDir: role.dataDir, defaultRegion: role.region });
    port = server.port;
    stop = () => server.stop();
  }
  parentPort!.postMessage({ port });
  parentPort!.on('message', async (message) => {
    if (message !== 'stop') return;
    await stop();
    process.exit(0);
  });
}

const data = workerData as { airlockEmulators?: boolean; airlockEmulator?: Role; home?: string; region?: string } | undefined;
if (!isMainThread && data?.airlockEmulator) {
  await serveRole(data.airlockEmulator).catch((error: unknown) => parentPort!.postMessage({ error: errorText(error, { name: false }) }));
} else if (!isMainThread && data?.airlockEmulators) {
  try {
    const servers = await startEmulatorServers(data.home!, data.region!);
    parentPort!.postMessage({ ready: servers.endpoints });
    parentPort!.on('message', async (message) => {
      if (message !== 'stop') return;
      await servers.stop();
      process.exit(0);
    });
  } catch (error) {
    parentPort!.postMessage({ error: errorText(error, { name: false }) });
  }
} else if (isMainThread && process.send && process.env.AIRLOCK_EMULATORS_HOME) {
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
