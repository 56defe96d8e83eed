// Wiring: one configuration -> the adapters and core services every handler
// uses. Lambda builds the configuration from its environment; the local stack
// builds it with endpoint overrides pointing at the embedded emulators. Same
// classes, same SDK calls. Each Lambda function builds only the part it uses
// (core-services.ts, transcript-services.ts, then the gateway here), so its
// bundle carries only those clients; the local stack builds all of it.
import type { AwsCredentialIdentity } from '@smithy/types';
import type { EksCredentialSource, Log, Notifier, RecordStore, StateStore, TranscriptStore, Workflows } from '../core/ports.ts';
import type { ApprovalLinks } from '../core/approvals.ts';
import type { TokenService } from '../core/tokens.ts';
import type { GatewaySecrets } from '../core/keys.ts';
import { Forwarder } from '../proxy/forwarder.ts';
import { GatewayClusterReader } from '../proxy/cluster-reader.ts';
import { Gateway, type RequestApprovalGate } from '../proxy/gateway.ts';
import { ConnectionUpstreamAuth } from '../proxy/upstream-auth.ts';
import { logger } from './logger.ts';
import type { McpEndpoint, McpHttpRequest } from '../mcp/endpoint.ts';
import { loadApprovalGate, loadExecClient, loadMcpEndpoint } from '../proxy/lazy.ts';
import { createCoreServices } from './core-services.ts';
import { withTranscripts } from './transcript-services.ts';
import type { LogReadLimits } from '../core/log-bounds.ts';

export { awsClientConfig } from './core-services.ts';
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

/** What every function uses: the stores, tokens, links and workflows. */
export interface CoreServices {
  config: AirlockConfig;
  /** Step Functions; absent when not configured (windows needing approval are then refused). */
  workflows?: Workflows;
  notifier?: Notifier;
  links: ApprovalLinks;
  state: StateStore;
  records: RecordStore;
  tokens: TokenService;
  secrets: GatewaySecrets;
  now: () => number;
  log: Log;
}

/** The core plus the transcript store (admin and approvals read transcripts). */
export interface TranscriptServices extends CoreServices {
  transcripts: TranscriptStore;
}

/** Everything: the proxy function and the local stack. */
export interface Services extends TranscriptServices {
  forwarder: Forwarder;
  gateway: Gateway;
  /** POST /mcp: tool calls through `gateway`, in-process. */
  mcp: Pick<McpEndpoint, 'handle'>;
  /** The one-time approval step for risky requests (wired with the workflows). */
  approvals?: RequestApprovalGate;
}

export async function createServices(config: AirlockConfig): Promise<Services> {
  const base = withTranscripts(config, await createCoreServices(config));
  const { state, records, transcripts, tokens, workflows, notifier, now } = base;
  const forwarder = new Forwarder();
  const upstreamAuth = new ConnectionUpstreamAuth(config.eks);
  // The approver's preview reaches the cluster the way the gateway does: same forwarder, same credential, recorded.
  const cluster = new GatewayClusterReader({ forwarder, upstreamAuth, records, transcripts, now });
  // Holding a request for approval, exec and /mcp are rare next to the requests the path forwards: each is
  // loaded on its first use (proxy/lazy.ts), so none is in the proxy function's init. Each object is
  // made per use; they keep nothing between requests.
  const approvals: RequestApprovalGate | undefined = workflows && {
    authorize: async (held) => new (await loadApprovalGate()).RequestApprovals({ state, records, workflows, notifier, now, log: logger, cluster, transcripts }).authorize(held),
  };
  const gateway = new Gateway({
    state,
    records,
    transcripts,
    tokens,
    upstreamAuth,
    forwarder,
    // POST /v1/exec: the proxy function opens the exec stream to the API server itself.
    executor: { open: async (request) => new (await loadExecClient()).ExecClient().open(request) },
    approvals,
    cluster,
    log: logger,
    now,
    maxRequestBodyBytes: config.maxRequestBodyBytes,
    logReadLimits: config.logReadLimits,
  });
  const mcp = { handle: async (request: McpHttpRequest) => new (await loadMcpEndpoint()).McpEndpoint({ state, records, log: logger, now, workflows, notifier, tokens, gateway }).handle(request) };
  return { ...base, approvals, forwarder, gateway, mcp };
}
