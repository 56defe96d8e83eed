// All of Airlock in one process, on embedded emulators: dynalite (DynamoDB),
// fauxqs (S3/SNS) in a worker thread, the same handlers behind a local HTTPS server. State lives
// in AIRLOCK_HOME and survives restarts.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startEmulators, type EmulatorEndpoints } from './emulators.ts';
import { createLocalServer, type LocalHandlers } from './server.ts';
import { createCertificateAuthority, loadCertificateAuthority } from './tls.ts';
import { recordsTableDefinition, stateTableDefinition } from '../lambdas/adapters/dynamodb/tables.ts';
import { deriveGatewaySecrets } from '../lambdas/core/keys.ts';
import { awsClientConfig, createServices, type AirlockConfig, type GatewaySecrets, type SecretSource, type Services } from '../lambdas/runtime/services.ts';
import { httpHandler } from '../lambdas/runtime/http.ts';
import { approvalRoutes } from '../lambdas/handlers/approvals.ts';
import { createWorkflowHandler } from '../lambdas/handlers/workflow.ts';
import { LocalStepFunctions } from './stepfunctions.ts';
import { LocalMailRelay } from './mail.ts';
import { lambdaContextFor } from './server.ts';
import { tokensRoutes } from '../lambdas/handlers/tokens.ts';
import { accessRoutes } from '../lambdas/handlers/access.ts';
import { adminRoutes } from '../lambdas/handlers/admin.ts';
import { healthRoutes } from '../lambdas/handlers/health.ts';
import { createProxyHandler } from '../lambdas/handlers/proxy.ts';

export const LOCAL_CREDENTIALS = { accessKeyId: 'airlock-local', secretAccessKey: 'airlock-local-secret' };
export const LOCAL_REGION = 'us-east-1';

export interface LocalStackOptions {
  home?: string;
  port?: number;
  host?: string;
  /** Wait-state overrides in ms (tests shorten windows with `{ WaitUntilExpiry: 1500 }`). */
  waitOverrides?: Record<string, number>;
  /** Where console lines go (default: console.log). */
  log?: (line: string) => void;
  /** Overrides for tests (a fake clock, fault proxies in front of dependencies): maps the configuration. */
  configure?: (config: AirlockConfig) => AirlockConfig | Promise<AirlockConfig>;
}

export interface LocalStack {
  url: string;
  home: string;
  caFile: string;
  adminKeyFile: string;
  adminKey: string;
  outboxDir: string;
  endpoints: EmulatorEndpoints & { sfn: string };
  services: Services;
  stepFunctions: LocalStepFunctions;
  mail: LocalMailRelay;
  /** Workflows resumed at start-up (after a restart). */
  resumed: { windows: number; approvals: number };
  stop(): Promise<void>;
}

export const TABLES = { state: 'airlock-state', records: 'airlock-records' };
export const TRANSCRIPT_BUCKET = 'airlock-transcripts';
export const STATE_MACHINES = {
  window: fileURLToPath(new URL('../state-machines/access-window.asl.json', import.meta.url)),
  approval: fileURLToPath(new URL('../state-machines/approval.asl.json', import.meta.url)),
};

/**
 * After a restart nothing runs: Step Functions executions do not survive the
 * local process. DynamoDB is the truth, so every window still pending or
 * active, and every held request still pending, gets its workflow back; each
 * starts at its "prepare" step, which reads where things stand. Links already
 * emailed stay valid (they are signed, not tied to an execution); nobody is
 * emailed twice. A window never outlives expiresAt either way: the gateway
 * checks it on every request.
 */
async function resumeWorkflows(services: Services, log: (line: string) => void): Promise<{ windows: number; approvals: number }> {
  const resumed = { windows: 0, approvals: 0 };
  if (!services.workflows) return resumed;
  for (const connection of await services.state.listConnections()) {
    for (const grant of await services.state.listGrants({ connection: connection.name })) {
      if (grant.status !== 'pending' && grant.status !== 'active') continue;
      const executionArn = await services.workflows.startWindow(grant.id);
      await services.state.transitionGrant(grant.id, ['pending', 'active'], { executionArn });
      resumed.windows++;
    }
  }
  for (const agent of await services.state.listAgents()) {
    for (const approval of await services.state.listApprovals({ agentId: agent.id, status: 'pending' })) {
      if (approval.kind === 'window') continue; // window approvals resume with their window; request and plan approvals here
      const executionArn = await services.workflows.startApproval(approval.id);
      await services.state.updateApproval(approval.id, { status: ['pending'] }, { executionArn });
      resumed.approvals++;
    }
  }
  if (resumed.windows || resumed.approvals) log(`[airlock] resumed ${resumed.windows} window workflow(s) and ${resumed.approvals} approval workflow(s) from DynamoDB`);
  return resumed;
}

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

/** The master secret (token-signing and approval-link keys derive from it), in one 0600 file. */
class FileSecretSource implements SecretSource {
  private readonly file: string;

  constructor(file: string) {
    this.file = file;
  }

  async load(): Promise<GatewaySecrets> {
    if (!existsSync(this.file)) writeSecretFile(this.file, `${JSON.stringify({ current: randomBytes(48).toString('base64url') }, null, 2)}\n`);
    const stored = JSON.parse(readFileSync(this.file, 'utf8')) as { current: string; previous?: string };
    return deriveGatewaySecrets(stored.current, stored.previous);
  }
}

function ensureAdminKey(home: string): { file: string; key: string } {
  const file = join(home, 'admin.key');
  if (!existsSync(file)) writeSecretFile(file, `${randomBytes(32).toString('base64url')}\n`);
  return { file, key: readFileSync(file, 'utf8').trim() };
}

function listen(
  server: { listen(port: number, host: string, cb: () => void): unknown; address(): AddressInfo | string | null; once(event: 'error', cb: (error: Error) => void): unknown },
  port: number,
  host: string,
): Promise<number> {
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

  // Emulators on loopback, ports chosen by the OS, in their own thread.
  const emulators = await startEmulators(home, LOCAL_REGION);
  const log = options.log ?? ((line: string) => console.log(line));
  const mail = new LocalMailRelay({ endpoint: emulators.endpoints.sns, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, outboxDir, log });
  const approvalTopicArn = await mail.start();

  // The state machines run here, their tasks calling the same workflow handler the Lambda runs.
  const ready: { services?: Services } = {};
  const getServices = async () => {
    if (!ready.services) throw new Error('local stack not started');
    return ready.services;
  };
  const workflowHandler = createWorkflowHandler(getServices);
  const workflowFunctionArn = `arn:aws:lambda:${LOCAL_REGION}:000000000000:function:airlock-workflow`;
  const stepFunctions = new LocalStepFunctions({
    region: LOCAL_REGION,
    accountId: '000000000000',
    definitions: { 'airlock-access-window': STATE_MACHINES.window, 'airlock-approval': STATE_MACHINES.approval },
    substitutions: { WorkflowFunctionArn: workflowFunctionArn },
    functions: { [workflowFunctionArn]: (payload) => workflowHandler(payload, lambdaContextFor('workflow')) },
    waitOverrides: options.waitOverrides,
  });
  const endpoints = { ...emulators.endpoints, sfn: await stepFunctions.listen() };

  const port = options.port ?? Number(process.env.AIRLOCK_PORT ?? 8787);
  let config: AirlockConfig = {
    region: LOCAL_REGION,
    stateTable: TABLES.state,
    recordsTable: TABLES.records,
    transcriptBucket: TRANSCRIPT_BUCKET,
    publicUrl: `https://${host}:${port}`, // fixed below once the port is known
    secrets: new FileSecretSource(join(home, 'secret.json')),
    admin: { mode: 'key', keySha256: createHash('sha256').update(admin.key).digest('hex') },
    // The stack's own clients reach each table's emulator directly (local/emulators-worker.ts).
    endpoints: { ...endpoints, dynamodb: endpoints.dynamodbDirect.state, dynamodbRecords: endpoints.dynamodbDirect.records },
    credentials: LOCAL_CREDENTIALS,
    workflows: {
      windowStateMachineArn: stepFunctions.stateMachineArn('airlock-access-window'),
      approvalStateMachineArn: stepFunctions.stateMachineArn('airlock-approval'),
      approvalTopicArn,
    },
  };

  // Through the routing endpoint: each table is created where it is served.
  const dynamoClient = new DynamoDBClient({ ...awsClientConfig(config, 'dynamodb'), endpoint: endpoints.dynamodb });
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
  const handlers: LocalHandlers = {
    health: httpHandler(healthRoutes),
    tokens: httpHandler(tokensRoutes(getServices)),
    access: httpHandler(accessRoutes(getServices)),
    admin: httpHandler(adminRoutes(getServices)),
    approvals: httpHandler(approvalRoutes(getServices)),
    proxy: createProxyHandler(getServices),
  };
  const { server, drain } = createLocalServer({ certPem: tls.certPem, keyPem: tls.keyPem, handlers });
  const boundPort = await listen(server, port, host);
  const url = `https://${host === '0.0.0.0' ? '127.0.0.1' : host}:${boundPort}`;
  config = { ...config, publicUrl: url };
  if (options.configure) config = await options.configure(config);
  const services = await createServices(config);
  if (services.notifier) services.notifier = mail.wrap(services.notifier);
  ready.services = services;
  if (process.env.AIRLOCK_STAGE_TIMING === '1' && process.send) {
    // `npm run bench`: per-stage time and CPU, reported over IPC (stage-timing.ts).
    const { instrumentStages } = await import('./stage-timing.ts');
    instrumentStages(services, server, async () => (emulators.cpuMs ? { emulatorCpuMs: await emulators.cpuMs() } : {}));
  }
  const resumed = await resumeWorkflows(services, log);

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
    stepFunctions,
    mail,
    resumed,
    async stop() {
      if (stopped) return;
      stopped = true;
      // Stop taking requests, let running ones finish their records and transcripts, then stop the rest.
      const closed = new Promise<void>((done) => server.close(() => done()));
      server.closeIdleConnections();
      await drain();
      server.closeAllConnections();
      await closed;
      services.forwarder.close();
      await stepFunctions.stop();
      mail.stop();
      await emulators.stop();
    },
  };
}
