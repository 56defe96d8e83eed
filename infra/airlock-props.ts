// The Airlock construct's props: what can be configured, each with its documented
// default (AIRLOCK_DEFAULTS, applied once by resolveProps), and the checks that refuse
// bad values before anything is built.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as acm from 'aws-cdk-lib/aws-certificatemanager';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { PRINCIPAL_ARN_PATTERN, ROLE_ARN_PATTERN } from '../lambdas/core/arns.ts';
import { FUNCTION_NAMES, type AirlockFunctionName } from './bundling.ts';

/** Object Lock for the transcript bucket. */
export interface TranscriptObjectLock {
  /**
   * GOVERNANCE: users with s3:BypassGovernanceRetention can still delete early.
   * COMPLIANCE: nobody can, not even the account root, until the retention ends.
   */
  readonly mode: 'GOVERNANCE' | 'COMPLIANCE';
  /** Default retention of every transcript version, in days (≤ `transcriptRetentionDays`). */
  readonly days: number;
}

/** Stage-wide throttling (every method, every caller together). */
export interface ApiThrottling {
  /**
   * Steady-state requests per second.
   * @default 50
   */
  readonly rateLimit?: number;
  /**
   * Burst bucket size.
   * @default 100
   */
  readonly burstLimit?: number;
}

/** A custom domain for the API (its base path `/` maps to the stage). */
export interface AirlockCustomDomain {
  /** e.g. `airlock.example.com`; point a DNS record at `api.domainName.domainNameAliasDomainName`. */
  readonly domainName: string;
  /** An ACM certificate for `domainName`, in the stack's region. */
  readonly certificate: acm.ICertificate;
}

/** Where the proxy function runs when clusters have private API endpoints. */
export interface ProxyNetworking {
  readonly vpc: ec2.IVpc;
  /** @default - the VPC's private subnets */
  readonly subnets?: ec2.SubnetSelection;
  /** @default - a security group allowing all outbound traffic */
  readonly securityGroups?: ec2.ISecurityGroup[];
}

export interface AirlockProps {
  /**
   * Approver email addresses. Each gets its own SNS email subscription, filtered
   * on the `approver` message attribute, so each approver receives only the
   * messages (with the signed links) meant for them. Every address that a
   * connection policy names in `approvers` must be listed here, spelled the
   * same way (SNS filter matching is case-sensitive). Each address must confirm
   * its subscription once.
   * @default - none: nobody is emailed and approvals can only time out
   */
  readonly approverEmails?: string[];
  /**
   * Email addresses told about window events (window ended, denied, approval
   * timed out) — messages that carry an `event` attribute and no approver.
   * @default - none
   */
  readonly eventEmails?: string[];
  /**
   * IAM principals (user or role ARNs; `*` wildcards allowed) that may call the
   * agent routes under `/v1/iam/...` with SigV4. Granted through the API's
   * resource policy (execute-api:Invoke on exactly those routes); every other
   * principal is denied there. The function still maps the caller to an agent
   * registered with `agents create --principal-arn` and refuses unknown ones.
   * @default - none: IAM sign-in for agents is closed (agents use keys)
   */
  readonly agentPrincipalArns?: string[];
  /**
   * IAM principals (ARNs; `*` wildcards allowed) that may call the admin routes.
   * When set, every other principal is denied there by the resource policy.
   * @default - none listed: principals of this account whose identity policies
   *   allow execute-api:Invoke on the admin routes can administer
   */
  readonly adminPrincipalArns?: string[];
  /**
   * Connection role ARNs created outside this construct (e.g. in the cluster's
   * account) that the proxy may assume. Exact ARNs; their trust policies must
   * admit `proxyRole` (see docs/DEPLOY.md). Roles made with `addEksConnection`
   * are added automatically.
   * @default []
   */
  readonly connectionRoleArns?: string[];
  /**
   * sts:ExternalId the proxy sends with every AssumeRole; roles made with
   * `addEksConnection` then require it.
   * @default - none
   */
  readonly eksExternalId?: string;
  /**
   * Days a transcript is kept in S3 (lifecycle expiration).
   * @default 400
   */
  readonly transcriptRetentionDays?: number;
  /**
   * Days a request record / audit event is kept in DynamoDB (item TTL).
   * @default 400
   */
  readonly recordRetentionDays?: number;
  /**
   * S3 Object Lock on the transcript bucket (WORM). Decide at the first deploy.
   * @default - no Object Lock
   */
  readonly objectLock?: TranscriptObjectLock;
  /**
   * API throttling.
   * @default - 50 requests/s, burst 100
   */
  readonly throttling?: ApiThrottling;
  /**
   * The bounds the proxy adds to an agent's read of pod logs that names none (limitBytes, tailLines).
   * @default - 262144 bytes and 1000 lines (lambdas/core/log-bounds.ts)
   */
  readonly logReadLimits?: { readonly limitBytes?: number; readonly tailLines?: number };
  /**
   * Retention of every log group (functions, API access log, state machines).
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * POWERTOOLS_LOG_LEVEL of the functions.
   * @default 'INFO'
   */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /**
   * The API stage name (part of the URL unless a custom domain is used).
   * @default 'prod'
   */
  readonly stageName?: string;
  /**
   * A custom domain for the API; AIRLOCK_PUBLIC_URL then uses it.
   * @default - the execute-api URL
   */
  readonly customDomain?: AirlockCustomDomain;
  /**
   * A WAFv2 web ACL (REGIONAL scope) to associate with the stage, e.g. with a
   * body-size rule or IP allow list.
   * @default - none
   */
  readonly webAclArn?: string;
  /**
   * Email address for alarm notifications (an SNS topic is created).
   * @default - no notifications, unless `alarmTopic` is given
   */
  readonly alarmEmail?: string;
  /**
   * An existing SNS topic for alarm notifications.
   * @default - one is created if `alarmEmail` is set
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * S3 server access logs for the transcript bucket, to a dedicated log bucket.
   * @default true
   */
  readonly serverAccessLogs?: boolean;
  /**
   * Create the account-level API Gateway CloudWatch role (needed once per
   * account and region for execution logging). Set false if the account
   * already has one.
   * @default true
   */
  readonly apiGatewayCloudWatchRole?: boolean;
  /**
   * What happens to the stateful resources (tables, transcript and log buckets,
   * KMS key, secret) when the stack is deleted. DESTROY also turns off table
   * deletion protection; buckets must be empty to be deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * X-Ray tracing on the API stage, the functions and the state machines.
   * @default true
   */
  readonly tracing?: boolean;
  /**
   * Memory (MB) per function.
   * @default - health 256, proxy 1024, the others 512
   */
  readonly memorySize?: Partial<Record<AirlockFunctionName, number>>;
  /**
   * Proxy function timeout (also the /k8s integration timeout; a watch or
   * `logs -f` ends after this). API Gateway streams for at most 15 minutes.
   * @default Duration.minutes(15)
   */
  readonly proxyTimeout?: Duration;
  /**
   * Run the proxy function in a VPC (clusters with private endpoints). It then
   * needs a route (NAT or VPC endpoints) to STS, DynamoDB, S3, Step Functions,
   * Secrets Manager and KMS.
   * @default - not in a VPC
   */
  readonly proxyNetworking?: ProxyNetworking;
  /**
   * Export the records on a schedule as OCSF Parquet for Amazon Security Lake.
   * @default - no scheduled export (`airlock audit export --format ocsf` still works)
   */
  readonly securityLakeExport?: SecurityLakeExport;
}

/**
 * The scheduled OCSF export to an Amazon Security Lake custom source (docs/DEPLOY.md):
 * every `period`, the last period's records as OCSF API Activity (class 6003) Parquet,
 * under `{prefix}region=…/accountId=…/eventDay=yyyymmdd/`.
 */
export interface SecurityLakeExport {
  /** The custom source's bucket (Security Lake's `aws-security-data-lake-…` bucket). */
  readonly bucketName: string;
  /** The custom source's location prefix in it, e.g. `ext/airlock/1.0/`. */
  readonly prefix: string;
  /** The provider role Security Lake made for the source; the export writes as it. @default - writes with its own role (granted PutObject under the prefix) */
  readonly providerRoleArn?: string;
  /** The external id the provider role expects. @default - none */
  readonly externalId?: string;
  /** How often it runs (and how much each run covers); whole minutes, 5 min to 24 h. @default Duration.hours(1) */
  readonly period?: Duration;
}

/** Options for `addEksConnection`. */
export interface EksConnectionOptions {
  /** The EKS cluster's name (same account and region as the stack when `createAccessEntry` is true). */
  readonly clusterName: string;
  /**
   * Kubernetes groups of the access entry; bind RBAC (Role/RoleBinding) to them.
   * Must not start with `system:`.
   * @default ['airlock-agents']
   */
  readonly kubernetesGroups?: string[];
  /**
   * Create the EKS access entry (username `airlock:{{SessionName}}`, so the
   * Kubernetes user names the agent). The cluster's authentication mode must
   * be API or API_AND_CONFIG_MAP.
   * @default true
   */
  readonly createAccessEntry?: boolean;
  /**
   * The role's name.
   * @default - generated
   */
  readonly roleName?: string;
}

/** The defaults the props above document. */
export const AIRLOCK_DEFAULTS = {
  removalPolicy: RemovalPolicy.RETAIN,
  logRetention: logs.RetentionDays.ONE_YEAR,
  tracing: true,
  transcriptRetentionDays: 400,
  recordRetentionDays: 400,
  stageName: 'prod',
  proxyTimeout: Duration.minutes(15),
} as const;

/** Props with every default that more than one part of the construct reads filled in. */
export interface ResolvedAirlockProps extends AirlockProps {
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: logs.RetentionDays;
  readonly tracing: boolean;
  readonly transcriptRetentionDays: number;
  readonly recordRetentionDays: number;
  readonly stageName: string;
  readonly proxyTimeout: Duration;
}

/** Validates `props` (throws naming every problem) and fills in the defaults. */
export function resolveProps(props: AirlockProps): ResolvedAirlockProps {
  validateProps(props);
  return {
    ...props,
    removalPolicy: props.removalPolicy ?? AIRLOCK_DEFAULTS.removalPolicy,
    logRetention: props.logRetention ?? AIRLOCK_DEFAULTS.logRetention,
    tracing: props.tracing ?? AIRLOCK_DEFAULTS.tracing,
    transcriptRetentionDays: props.transcriptRetentionDays ?? AIRLOCK_DEFAULTS.transcriptRetentionDays,
    recordRetentionDays: props.recordRetentionDays ?? AIRLOCK_DEFAULTS.recordRetentionDays,
    stageName: props.stageName ?? AIRLOCK_DEFAULTS.stageName,
    proxyTimeout: props.proxyTimeout ?? AIRLOCK_DEFAULTS.proxyTimeout,
  };
}

// The shapes the props and the deployment config (config.ts) both check; ARNs are lambdas/core/arns.ts.
export const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
export const EKS_CLUSTER_NAME_PATTERN = /^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$/;

function validateProps(props: AirlockProps): void {
  const problems: string[] = [];
  const positive = (name: string, value: number | undefined, max = Infinity) => {
    if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > max)) problems.push(`${name}: expected a whole number 1..${max}, got ${value}`);
  };
  positive('transcriptRetentionDays', props.transcriptRetentionDays);
  positive('recordRetentionDays', props.recordRetentionDays);
  positive('logReadLimits.limitBytes', props.logReadLimits?.limitBytes);
  positive('logReadLimits.tailLines', props.logReadLimits?.tailLines);
  const lake = props.securityLakeExport;
  if (lake) {
    const minutes = lake.period?.toMinutes() ?? 60;
    if (!Number.isInteger(minutes) || minutes < 5 || minutes > 1440) problems.push(`securityLakeExport.period: whole minutes, 5 min to 24 h, got ${minutes} min`);
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(lake.bucketName)) problems.push(`securityLakeExport.bucketName: not a bucket name: ${JSON.stringify(lake.bucketName)}`);
    if (lake.prefix.startsWith('/') || lake.prefix.includes('..')) problems.push(`securityLakeExport.prefix: a key prefix such as ext/airlock/1.0/, got ${JSON.stringify(lake.prefix)}`);
  }
  if (props.objectLock) {
    if (props.objectLock.mode !== 'GOVERNANCE' && props.objectLock.mode !== 'COMPLIANCE') problems.push(`objectLock.mode: GOVERNANCE or COMPLIANCE, got ${String(props.objectLock.mode)}`);
    positive('objectLock.days', props.objectLock.days, props.transcriptRetentionDays ?? AIRLOCK_DEFAULTS.transcriptRetentionDays);
  }
  const seen = new Set<string>();
  for (const [index, email] of (props.approverEmails ?? []).entries()) {
    if (!EMAIL_PATTERN.test(email)) problems.push(`approverEmails[${index}]: not an email address: ${JSON.stringify(email)}`);
    if (seen.has(email.toLowerCase())) problems.push(`approverEmails[${index}]: listed twice: ${email}`);
    seen.add(email.toLowerCase());
  }
  if (props.alarmEmail !== undefined && !EMAIL_PATTERN.test(props.alarmEmail)) problems.push(`alarmEmail: not an email address: ${JSON.stringify(props.alarmEmail)}`);
  for (const [field, arns] of [
    ['agentPrincipalArns', props.agentPrincipalArns],
    ['adminPrincipalArns', props.adminPrincipalArns],
  ] as const) {
    for (const [index, arn] of (arns ?? []).entries()) {
      if (!PRINCIPAL_ARN_PATTERN.test(arn)) problems.push(`${field}[${index}]: not an IAM principal ARN: ${JSON.stringify(arn)}`);
    }
  }
  for (const [index, arn] of (props.connectionRoleArns ?? []).entries()) {
    if (!ROLE_ARN_PATTERN.test(arn)) problems.push(`connectionRoleArns[${index}]: not an exact IAM role ARN (no wildcards): ${JSON.stringify(arn)}`);
  }
  const rate = props.throttling?.rateLimit;
  const burst = props.throttling?.burstLimit;
  if (rate !== undefined && !(rate > 0)) problems.push(`throttling.rateLimit: must be > 0, got ${rate}`);
  if (burst !== undefined && !(Number.isInteger(burst) && burst > 0)) problems.push(`throttling.burstLimit: must be a whole number > 0, got ${burst}`);
  if (props.proxyTimeout && props.proxyTimeout.toSeconds() > 900) problems.push('proxyTimeout: at most 15 minutes (Lambda and API Gateway streaming limit)');
  for (const [name, memory] of Object.entries(props.memorySize ?? {})) {
    if (!(FUNCTION_NAMES as readonly string[]).includes(name)) problems.push(`memorySize.${name}: no such function`);
    positive(`memorySize.${name}`, memory, 10_240);
  }
  if (problems.length) throw new Error(`Airlock: invalid props:\n  ${problems.join('\n  ')}`);
}
