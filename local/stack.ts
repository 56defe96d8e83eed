// All of Airlock in one process, on embedded emulators: dynalite (DynamoDB),
// fauxqs (S3/SNS), the same handlers behind a local HTTPS server. State lives
// in AIRLOCK_HOME and survives restarts.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startFauxqs, type FauxqsServer } from 'fauxqs';
import { createLocalServer, type LocalHandlers } from './server.ts';
import { createCertificateAuthority, loadCertificateAuthority } from './tls.ts';
import { recordsTableDefinition, stateTableDefinition } from '../lambdas/adapters/dynamodb.ts';
import { generateSigningKey, type SigningKeySet } from '../lambdas/core/tokens.ts';
import { awsClientConfig, createServices, type AirlockConfig, type GatewaySecrets, type SecretSource, type Services } from '../lambdas/runtime/services.ts';
import { httpHandler } from '../lambdas/runtime/http.ts';
import { tokensRoutes } from '../lambdas/handlers/tokens.ts';
import { accessRoutes } from '../lambdas/handlers/access.ts';
import { adminRoutes } from '../lambdas/handlers/admin.ts';
import { healthRoutes } from '../lambdas/handlers/health.ts';
import { createProxyHandler } from '../lambdas/handlers/proxy.ts';

const require = createRequire(import.meta.url);
const dynalite = require('dynalite') as (options: { path?: string; createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => HttpServer;

export const LOCAL_CREDENTIALS = { accessKeyId: 'airlock-local', secretAccessKey: 'airlock-local-secret' };
export const LOCAL_REGION = 'us-east-1';

export interface LocalStackOptions {
  home?: string;
  port?: number;
  host?: string;
  /** Overrides for tests (e.g. a fake clock); merged into the configuration. */
  configure?: (config: AirlockConfig) => AirlockConfig;
}

export interface LocalStack {
  url: string;
  home: string;
  caFile: string;
  adminKeyFile: string;
  adminKey: string;
  outboxDir: string;
  endpoints: { dynamodb: string; s3: string };
  services: Services;
  fauxqs: FauxqsServer;
  stop(): Promise<void>;
}

export const TABLES = { state: 'airlock-state', records: 'airlock-records' };
export const TRANSCRIPT_BUCKET = 'airlock-transcripts';

function writeSecretFile(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Local CA and server certificate for 127.0.0.1/localhost, made once. */
async function ensureTls(home: string): Promise<{ certPem: string; keyPem: string; caFile: string }> {
  const caFile = join(home, 'ca.crt');
  const caKeyFile = join(home, 'ca.key');
  const certFile = join(home, 'server.crt');
  const keyFile = join(home, 'server.key');
  if (!existsSync(caFile) || !existsSync(caKeyFile)) {
    const ca = await createCertificateAuthority('Airlock local CA');
    writeFileSync(caFile, ca.certPem);
    writeSecretFile(caKeyFile, ca.keyPem);
  }
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    const ca = await loadCertificateAuthority({ certPem: readFileSync(caFile, 'utf8'), keyPem: readFileSync(caKeyFile, 'utf8') });
    const leaf = await ca.issue({ commonName: 'airlock-local', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
    writeFileSync(certFile, leaf.certPem);
    writeSecretFile(keyFile, leaf.keyPem);
  }
  return { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8'), caFile };
}

/** Token-signing key and approval-link key, in one 0600 file. */
class FileSecretSource implements SecretSource {
  private readonly file: string;

  constructor(file: string) {
    this.file = file;
  }

  async load(): Promise<GatewaySecrets> {
    if (!existsSync(this.file)) {
      const current = await generateSigningKey();
      writeSecretFile(this.file, JSON.stringify({ signingKeys: { current }, linkKey: randomBytes(32).toString('base64') }, null, 2));
    }
    const stored = JSON.parse(readFileSync(this.file, 'utf8')) as { signingKeys: SigningKeySet; linkKey: string };
    return { signingKeys: stored.signingKeys, linkKey: Buffer.from(stored.linkKey, 'base64') };
  }
}

function ensureAdminKey(home: string): { file: string; key: string } {
  const file = join(home, 'admin.key');
  if (!existsSync(file)) writeSecretFile(file, `${randomBytes(32).toString('base64url')}\n`);
  return { file, key: readFileSync(file, 'utf8').trim() };
}

function listen(server: { listen(port: number, host: string, cb: () => void): unknown; address(): AddressInfo | string | null; once(event: 'error', cb: (error: Error) => void): unknown }, port: number, host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolvePort((server.address() as AddressInfo).port));
  });
}

async function ensureTable(client: DynamoDBClient, definition: ReturnType<typeof stateTableDefinition>): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: definition.TableName }));
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException) && (error as { name?: string }).name !== 'ResourceNotFoundException') throw error;
    await client.send(new CreateTableCommand(definition));
  }
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const home = resolve(options.home ?? process.env.AIRLOCK_HOME ?? './.airlock');
  const host = options.host ?? '127.0.0.1';
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const outboxDir = join(home, 'outbox');
  mkdirSync(outboxDir, { recursive: true });

  const tls = await ensureTls(home);
  const admin = ensureAdminKey(home);

  // Emulators, both on loopback with ports chosen by the OS.
  mkdirSync(join(home, 'dynamodb'), { recursive: true });
  const dynamo = dynalite({ path: join(home, 'dynamodb'), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const dynamoPort = await listen(dynamo, 0, '127.0.0.1');
  mkdirSync(join(home, 'fauxqs'), { recursive: true });
  const fauxqs = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false, dataDir: join(home, 'fauxqs'), defaultRegion: LOCAL_REGION });
  const endpoints = { dynamodb: `http://127.0.0.1:${dynamoPort}`, s3: `http://127.0.0.1:${fauxqs.port}`, sns: `http://127.0.0.1:${fauxqs.port}` };

  const port = options.port ?? Number(process.env.AIRLOCK_PORT ?? 8787);
  let config: AirlockConfig = {
    region: LOCAL_REGION,
    stateTable: TABLES.state,
    recordsTable: TABLES.records,
    transcriptBucket: TRANSCRIPT_BUCKET,
    publicUrl: `https://${host}:${port}`, // fixed below once the port is known
    secrets: new FileSecretSource(join(home, 'keys.json')),
    admin: { mode: 'key', keySha256: createHash('sha256').update(admin.key).digest('hex') },
    endpoints,
    credentials: LOCAL_CREDENTIALS,
  };

  const dynamoClient = new DynamoDBClient(awsClientConfig(config, 'dynamodb'));
  await ensureTable(dynamoClient, stateTableDefinition(TABLES.state));
  await ensureTable(dynamoClient, recordsTableDefinition(TABLES.records));
  const s3 = new S3Client(awsClientConfig(config, 's3'));
  try {
    await s3.send(new CreateBucketCommand({ Bucket: TRANSCRIPT_BUCKET }));
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw error;
  }
  dynamoClient.destroy();
  s3.destroy();

  // Handlers are built before the services (the issuer needs the bound port).
  const ready: { services?: Services } = {};
  const getServices = async () => {
    if (!ready.services) throw new Error('local stack not started');
    return ready.services;
  };
  const handlers: LocalHandlers = {
    health: httpHandler(healthRoutes),
    tokens: httpHandler(tokensRoutes(getServices)),
    access: httpHandler(accessRoutes(getServices)),
    admin: httpHandler(adminRoutes(getServices)),
    approvals: httpHandler(async () => ({ status: 501, body: { error: { code: 'not_available', message: 'approvals are not available yet' } } })),
    proxy: createProxyHandler(getServices),
  };
  const server = createLocalServer({ certPem: tls.certPem, keyPem: tls.keyPem, handlers });
  const boundPort = await listen(server, port, host);
  const url = `https://${host === '0.0.0.0' ? '127.0.0.1' : host}:${boundPort}`;
  config = { ...config, publicUrl: url };
  if (options.configure) config = options.configure(config);
  const services = await createServices(config);
  ready.services = services;

  let stopped = false;
  return {
    url,
    home,
    caFile: tls.caFile,
    adminKeyFile: admin.file,
    adminKey: admin.key,
    outboxDir,
    endpoints,
    services,
    fauxqs,
    async stop() {
      if (stopped) return;
      stopped = true;
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
      services.forwarder.close();
      await fauxqs.stop();
      await new Promise<void>((done) => dynamo.close(() => done()));
    },
  };
}
