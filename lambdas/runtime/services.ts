// Wiring: one configuration -> the adapters and core services every handler
// uses. Lambda builds the configuration from its environment; the local stack
// builds it with endpoint overrides pointing at the embedded emulators. Same
// classes, same SDK calls.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import type { AwsCredentialIdentity } from '@smithy/types';
import { DynamoRecordStore } from '../adapters/dynamodb/record-store.ts';
import { DynamoStateStore } from '../adapters/dynamodb/state-store.ts';
import { S3TranscriptStore } from '../adapters/s3.ts';
import type { EksCredentialSource, Log, Notifier, RecordStore, StateStore, TranscriptStore, Workflows } from '../core/ports.ts';
import { ApprovalLinks } from '../core/approvals.ts';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { StepFunctionsWorkflows } from '../adapters/sfn.ts';
import { SnsNotifier } from '../adapters/sns.ts';
import { RequestApprovals } from '../proxy/approval-gate.ts';
import { TokenService } from '../core/tokens.ts';
import type { GatewaySecrets } from '../core/keys.ts';
import { Forwarder } from '../proxy/forwarder.ts';
import { ExecClient } from '../proxy/exec-client.ts';
import { GatewayClusterReader } from '../proxy/cluster-reader.ts';
import { Gateway, type RequestApprovalGate } from '../proxy/gateway.ts';
import { ConnectionUpstreamAuth } from '../proxy/upstream-auth.ts';
import { logger } from './logger.ts';
import { McpEndpoint } from '../mcp/endpoint.ts';
import type { LogReadLimits } from '../core/log-bounds.ts';

export type { GatewaySecrets };

export interface SecretSource {
  load(): Promise<GatewaySecrets>;
}

export type AdminAuthConfig =
  /** Local: a bearer key; only its SHA-256 is held. */
  | { mode: 'key'; keySha256: string }
  /** AWS: API Gateway has already enforced IAM on admin routes. */
  | { mode: 'iam' };

export interface AirlockConfig {
  region: string;
  stateTable: string;
  recordsTable: string;
  transcriptBucket: string;
  /** Token issuer, and base of links in emails. */
  publicUrl: string;
  secrets: SecretSource;
  admin: AdminAuthConfig;
  /** Endpoint overrides for the local emulators. */
  endpoints?: {
    dynamodb?: string;
    /** The local records table's own emulator (local/emulators-worker.ts); on AWS one endpoint serves both tables. */
    dynamodbRecords?: string;
    s3?: string;
    sfn?: string;
    sns?: string;
  };
  credentials?: AwsCredentialIdentity;
  recordRetentionDays?: number;
  maxRequestBodyBytes?: number;
  /** Bounds added to an agent's log read that names none (core/log-bounds.ts). */
  logReadLimits?: Partial<LogReadLimits>;
  /** EKS token source (AWS only). */
  eks?: EksCredentialSource;
  /** Step Functions state machines and the approval topic (absent: windows that need approval are refused). */
  workflows?: { windowStateMachineArn?: string; approvalStateMachineArn?: string; approvalTopicArn?: string };
  now?: () => number;
}

export interface Services {
  config: AirlockConfig;
  /** Step Functions; absent when not configured (windows needing approval are then refused). */
  workflows?: Workflows;
  notifier?: Notifier;
  links: ApprovalLinks;
  state: StateStore;
  records: RecordStore;
  transcripts: TranscriptStore;
  tokens: TokenService;
  secrets: GatewaySecrets;
  forwarder: Forwarder;
  gateway: Gateway;
  /** POST /mcp: tool calls through `gateway`, in-process. */
  mcp: McpEndpoint;
  now: () => number;
  log: Log;
  /** The one-time approval step for risky requests (wired with the workflows). */
  approvals?: RequestApprovalGate;
}

export function awsClientConfig(config: AirlockConfig, service: keyof NonNullable<AirlockConfig['endpoints']>) {
  const endpoint = config.endpoints?.[service];
  return {
    region: config.region,
    ...(endpoint ? { endpoint } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
    ...(service === 's3' && endpoint ? { forcePathStyle: true } : {}),
    maxAttempts: 2,
  };
}

export async function createServices(config: AirlockConfig): Promise<Services> {
  const dynamodb = new DynamoDBClient(awsClientConfig(config, 'dynamodb'));
  const s3 = new S3Client(awsClientConfig(config, 's3'));
  const state = new DynamoStateStore(dynamodb, config.stateTable);
  const recordsDynamodb = config.endpoints?.dynamodbRecords ? new DynamoDBClient(awsClientConfig(config, 'dynamodbRecords')) : dynamodb;
  const records = new DynamoRecordStore(recordsDynamodb, config.recordsTable, { retentionDays: config.recordRetentionDays });
  const transcripts = new S3TranscriptStore(s3, config.transcriptBucket);
  const secrets = await config.secrets.load();
  const now = config.now ?? Date.now;
  const tokens = new TokenService(secrets.signingKeys, { issuer: config.publicUrl, now });
  const links = new ApprovalLinks(secrets.linkKey, now);
  const { windowStateMachineArn, approvalStateMachineArn, approvalTopicArn } = config.workflows ?? {};
  const workflows =
    windowStateMachineArn && approvalStateMachineArn
      ? new StepFunctionsWorkflows(new SFNClient(awsClientConfig(config, 'sfn')), { window: windowStateMachineArn, approval: approvalStateMachineArn })
      : undefined;
  const notifier = approvalTopicArn ? new SnsNotifier(new SNSClient(awsClientConfig(config, 'sns')), approvalTopicArn) : undefined;
  const forwarder = new Forwarder();
  const upstreamAuth = new ConnectionUpstreamAuth(config.eks);
  // The approver's preview reaches the cluster the way the gateway does: same forwarder, same credential, recorded.
  const cluster = new GatewayClusterReader({ forwarder, upstreamAuth, records, transcripts, now });
  const approvals = workflows ? new RequestApprovals({ state, records, workflows, notifier, now, log: logger, cluster, transcripts }) : undefined;
  const gateway = new Gateway({
    state,
    records,
    transcripts,
    tokens,
    upstreamAuth,
    forwarder,
    // POST /v1/exec: the proxy function opens the exec stream to the API server itself.
    executor: new ExecClient(),
    approvals,
    cluster,
    log: logger,
    now,
    maxRequestBodyBytes: config.maxRequestBodyBytes,
    logReadLimits: config.logReadLimits,
  });
  const mcp = new McpEndpoint({ state, records, log: logger, now, workflows, notifier, tokens, gateway });
  return { config, state, records, transcripts, tokens, secrets, links, workflows, notifier, approvals, forwarder, gateway, mcp, now, log: logger };
}
