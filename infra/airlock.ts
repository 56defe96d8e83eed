// The Airlock construct: everything Airlock runs on AWS, from one place.
//
//   REST API (built from lambdas/routes.ts) -> seven Node.js 24 functions
//   DynamoDB state + records tables (shapes from lambdas/adapters/dynamodb.ts)
//   S3 transcript bucket, SNS approval topic, Secrets Manager master secret,
//   two Step Functions state machines (state-machines/*.asl.json), one KMS key,
//   log groups with retention, CloudWatch alarms,
//   and per-cluster connection roles that only the proxy function can assume.
//
// The boundary's invariant, kept by construction and checked by
// test/infra: agent principals get execute-api:Invoke on the agent routes and
// nothing else — never eks:* nor sts:AssumeRole on a connection role — and a
// connection role trusts only the proxy function's role.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Annotations, ArnFormat, Duration, Names, RemovalPolicy, Stack, Token, Validations, type CfnElement } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { recordsTableDefinition, stateTableDefinition } from '../lambdas/adapters/dynamodb.ts';
import { ROUTES, type Route, type RouteAuth } from '../lambdas/routes.ts';
import { ENV } from '../lambdas/runtime/aws-config.ts';
import { FUNCTION_NAMES, FUNCTION_NODE_OPTIONS, PROJECT_ROOT, functionEntry, nodejsBundling, type AirlockFunctionName } from './bundling.ts';

export type { AirlockFunctionName };

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

/** Username of the access entry: the session name is `airlock-<agent>` (sessionNameFor). */
export const EKS_USERNAME_TEMPLATE = 'airlock:{{SessionName}}';
/** Every session Airlock opens on a connection role carries SourceIdentity = `airlock-<agent>`. */
export const SOURCE_IDENTITY_PATTERN = 'airlock-*';
/** The only session tags Airlock sets (lambdas/adapters/eks-credentials.ts). */
export const SESSION_TAG_KEYS = ['airlock:agent', 'airlock:window'] as const;

const STATE_MACHINE_DIR = join(PROJECT_ROOT, 'state-machines');
const WINDOW_DEFINITION = join(STATE_MACHINE_DIR, 'access-window.asl.json');
const APPROVAL_DEFINITION = join(STATE_MACHINE_DIR, 'approval.asl.json');
/** The one placeholder the ASL files may use. */
const WORKFLOW_PLACEHOLDER = 'WorkflowFunctionArn';
const LAMBDA_TASK_RESOURCES = new Set(['arn:aws:states:::lambda:invoke', 'arn:aws:states:::lambda:invoke.waitForTaskToken']);

const DEFAULT_MEMORY: Record<AirlockFunctionName, number> = {
  health: 256,
  tokens: 512,
  access: 512,
  admin: 512,
  approvals: 512,
  proxy: 1024,
  workflow: 512,
};

const DEFAULT_TIMEOUT_SECONDS: Record<Exclude<AirlockFunctionName, 'proxy'>, number> = {
  health: 5,
  tokens: 15,
  access: 15,
  approvals: 15,
  // Buffered API Gateway integrations end at 29 s anyway.
  admin: 29,
  workflow: 30,
};

const DESCRIPTIONS: Record<AirlockFunctionName, string> = {
  health: 'Airlock: GET /healthz',
  tokens: 'Airlock: POST /v1/tokens (agent key or IAM -> Airlock token)',
  access: 'Airlock: access requests (JIT windows) and approval status for agents',
  admin: 'Airlock: admin API (agents, connections, revocation, audit)',
  approvals: 'Airlock: approval pages and decisions (signed links)',
  proxy: 'Airlock: /k8s proxy (token -> window -> scope -> approval -> record -> forward), response streaming',
  workflow: 'Airlock: tasks of the access-window and approval state machines',
};

const ARN_PATTERN = /^arn:aws[a-z-]*:(iam|sts)::(\d{12}|\*):[\w+=,.@/*-]+$/;
const ROLE_ARN_PATTERN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Stage-less, execute-api shorthand ARN of a route, for the API's own resource policy. */
export function routeExecuteApiResource(route: Route): string {
  const method = route.method === 'ANY' ? '*' : route.method;
  const path = route.resource.replace(/\{[^}]+\}/g, '*');
  return `execute-api:/*/${method}${path}`;
}

/** API Gateway authorization for a route: IAM where API Gateway checks the caller, none where the function does. */
export function authorizationFor(auth: RouteAuth): apigw.AuthorizationType {
  return auth === 'agent-iam' || auth === 'admin' ? apigw.AuthorizationType.IAM : apigw.AuthorizationType.NONE;
}

const PUBLIC_ROUTE_REASON: Record<Exclude<RouteAuth, 'agent-iam' | 'admin'>, string> = {
  none: 'GET /healthz is public by design: it answers "the process runs" and reveals nothing.',
  agent: 'Agent routes authenticate in the function with the agent key (HTTP Basic; SHA-256-hashed keys in DynamoDB, agent must be enabled). IAM-signed agents use the /v1/iam twin of this route, which is AWS_IAM.',
  proxy: '/k8s authenticates in the function on every request with an Airlock token (Ed25519-signed, ≤ 15 min, audience = connection) and then checks the window, policy and approval; API Gateway authorizers cannot do that per-request state check.',
  approver: 'Approval pages authenticate with an HMAC-signed, expiring, single-use link per approver, verified in the function; approvers have no AWS identity.',
};

/** cdk-nag acknowledgements, always with a reason. */
function acknowledge(scope: Construct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

function mirrorTable(scope: Construct, id: string, definition: CreateTableCommandInput, props: Partial<dynamodb.TableProps>): dynamodb.Table {
  if (definition.BillingMode !== 'PAY_PER_REQUEST') throw new Error(`${id}: only on-demand (PAY_PER_REQUEST) table definitions are mirrored`);
  const types = new Map((definition.AttributeDefinitions ?? []).map((attribute) => [attribute.AttributeName!, attribute.AttributeType!]));
  const attribute = (name: string): dynamodb.Attribute => {
    const type = types.get(name);
    if (type === 'S') return { name, type: dynamodb.AttributeType.STRING };
    if (type === 'N') return { name, type: dynamodb.AttributeType.NUMBER };
    if (type === 'B') return { name, type: dynamodb.AttributeType.BINARY };
    throw new Error(`${id}: key attribute ${name} has no attribute definition`);
  };
  const keys = (schema: CreateTableCommandInput['KeySchema']) => {
    const hash = schema?.find((key) => key.KeyType === 'HASH');
    const range = schema?.find((key) => key.KeyType === 'RANGE');
    if (!hash?.AttributeName) throw new Error(`${id}: key schema without a HASH key`);
    return { partitionKey: attribute(hash.AttributeName), ...(range?.AttributeName ? { sortKey: attribute(range.AttributeName) } : {}) };
  };
  const table = new dynamodb.Table(scope, id, { ...props, ...keys(definition.KeySchema), billingMode: dynamodb.BillingMode.PAY_PER_REQUEST });
  for (const index of definition.GlobalSecondaryIndexes ?? []) {
    const projection = index.Projection?.ProjectionType ?? 'ALL';
    table.addGlobalSecondaryIndex({
      indexName: index.IndexName!,
      ...keys(index.KeySchema),
      projectionType: projection === 'KEYS_ONLY' ? dynamodb.ProjectionType.KEYS_ONLY : projection === 'INCLUDE' ? dynamodb.ProjectionType.INCLUDE : dynamodb.ProjectionType.ALL,
      ...(projection === 'INCLUDE' ? { nonKeyAttributes: index.Projection?.NonKeyAttributes ?? [] } : {}),
    });
  }
  return table;
}

/**
 * Reads an ASL file and checks what the construct relies on: JSON, only the
 * `${WorkflowFunctionArn}` placeholder, and every Task a Lambda invoke of the
 * workflow function (so the state machine role needs that one permission).
 */
export function checkDefinition(file: string): { placeholders: string[]; tasks: number } {
  const text = readFileSync(file, 'utf8');
  const placeholders = [...new Set([...text.matchAll(/\$\{([^}]*)\}/g)].map((match) => match[1]!))];
  const unknown = placeholders.filter((name) => name !== WORKFLOW_PLACEHOLDER);
  if (unknown.length) throw new Error(`${file}: unknown definition substitution(s) ${unknown.map((name) => `\${${name}}`).join(', ')}; only \${${WORKFLOW_PLACEHOLDER}} is provided`);
  let definition: unknown;
  try {
    definition = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not JSON (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
  let tasks = 0;
  const visit = (states: unknown, where: string) => {
    for (const [name, state] of Object.entries((states ?? {}) as Record<string, Record<string, unknown>>)) {
      if (state.Type === 'Task') {
        tasks++;
        const resource = state.Resource;
        const parameters = (state.Parameters ?? state.Arguments) as Record<string, unknown> | undefined;
        const ok =
          resource === `\${${WORKFLOW_PLACEHOLDER}}` ||
          (typeof resource === 'string' && LAMBDA_TASK_RESOURCES.has(resource) && parameters?.FunctionName === `\${${WORKFLOW_PLACEHOLDER}}`);
        if (!ok) {
          throw new Error(
            `${file}: state ${where}${name} is a Task that does not invoke \${${WORKFLOW_PLACEHOLDER}}; the state machine role may only invoke the workflow function`,
          );
        }
      }
      for (const branch of (state.Branches ?? []) as { States?: unknown }[]) visit(branch.States, `${where}${name}/`);
      const processor = (state.ItemProcessor ?? state.Iterator) as { States?: unknown } | undefined;
      if (processor) visit(processor.States, `${where}${name}/`);
    }
  };
  visit((definition as { States?: unknown }).States, '');
  return { placeholders, tasks };
}

export class Airlock extends Construct {
  /** The REST API (routes from lambdas/routes.ts). */
  public readonly api: apigw.RestApi;
  /** The API's base URL including the stage (or the custom domain), no trailing slash: AIRLOCK_PUBLIC_URL. */
  public readonly url: string;
  /** The seven functions, by name. */
  public readonly functions: Readonly<Record<AirlockFunctionName, NodejsFunction>>;
  /** The proxy function's role: the only principal connection roles trust. */
  public readonly proxyRole: iam.Role;
  /** Agents, connections (+ policy), grants, approvals. */
  public readonly stateTable: dynamodb.Table;
  /** One item per request / audit event, expiring after `recordRetentionDays`. */
  public readonly recordsTable: dynamodb.Table;
  /** Request transcripts (redacted), one object per request. */
  public readonly transcriptBucket: s3.Bucket;
  /** Server access logs of the transcript bucket (when enabled). */
  public readonly accessLogsBucket?: s3.Bucket;
  /** Approval emails: one filtered email subscription per approver. */
  public readonly approvalTopic: sns.Topic;
  /** Alarm notifications, if configured. */
  public readonly alarmTopic?: sns.ITopic;
  /** state-machines/access-window.asl.json */
  public readonly windowStateMachine: sfn.StateMachine;
  /** state-machines/approval.asl.json */
  public readonly approvalStateMachine: sfn.StateMachine;
  /** The master secret every gateway key is derived from (HKDF). */
  public readonly secret: secretsmanager.Secret;
  /** The customer-managed key for tables, bucket, topics and secret. */
  public readonly key: kms.Key;
  /** The CloudWatch alarms. */
  public readonly alarms: readonly cloudwatch.Alarm[];

  readonly #props: AirlockProps;
  readonly #connectionRoles: iam.Role[] = [];
  #assumeStatement?: iam.PolicyStatement;
  readonly #alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: AirlockProps = {}) {
    super(scope, id);
    // Behaviour this construct relies on, whatever the enclosing app's feature flags say:
    // server access logs are delivered through a bucket policy (no ACLs, BucketOwnerEnforced).
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    this.#props = props;
    validateProps(props);
    const stack = Stack.of(this);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const retain = removalPolicy === RemovalPolicy.RETAIN || removalPolicy === RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;
    const tracing = props.tracing ?? true;
    const transcriptDays = props.transcriptRetentionDays ?? 400;
    const recordDays = props.recordRetentionDays ?? 400;
    const stageName = props.stageName ?? 'prod';

    // ------------------------------------------------------------ key, secret
    this.key = new kms.Key(this, 'Key', {
      description: `Airlock (${stack.stackName}): tables, transcripts, topics, master secret`,
      enableKeyRotation: true,
      removalPolicy,
    });

    this.secret = new secretsmanager.Secret(this, 'MasterSecret', {
      description: 'Airlock master secret: token-signing and approval-link keys are derived from it (HKDF). Rotate by putting a new value; the previous version stays readable.',
      encryptionKey: this.key,
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      removalPolicy,
    });
    acknowledge(
      this.secret,
      'AwsSolutions-SMG4',
      'The master secret is a random string, not a credential of another service, so there is no rotation Lambda: rotate manually (docs/DEPLOY.md, "Rotating the master secret"). The functions read AWSCURRENT and AWSPREVIOUS, so tokens signed before a rotation stay valid for their ≤ 15 minutes.',
    );

    // ------------------------------------------------------------ tables
    const tableProps: Partial<dynamodb.TableProps> = {
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: retain,
      timeToLiveAttribute: 'ttl',
      removalPolicy,
    };
    this.stateTable = mirrorTable(this, 'StateTable', stateTableDefinition('state'), tableProps);
    this.recordsTable = mirrorTable(this, 'RecordsTable', recordsTableDefinition('records'), tableProps);

    // ------------------------------------------------------------ transcripts
    if (props.serverAccessLogs ?? true) {
      this.accessLogsBucket = new s3.Bucket(this, 'AccessLogsBucket', {
        // Server access log delivery supports SSE-S3 only, not SSE-KMS.
        encryption: s3.BucketEncryption.S3_MANAGED,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        minimumTLSVersion: 1.2,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycleRules: [{ id: 'retention', expiration: Duration.days(transcriptDays), abortIncompleteMultipartUploadAfter: Duration.days(1) }],
        removalPolicy,
      });
    }
    this.transcriptBucket = new s3.Bucket(this, 'TranscriptBucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      ...(props.objectLock
        ? {
            objectLockEnabled: true,
            objectLockDefaultRetention:
              props.objectLock.mode === 'COMPLIANCE'
                ? s3.ObjectLockRetention.compliance(Duration.days(props.objectLock.days))
                : s3.ObjectLockRetention.governance(Duration.days(props.objectLock.days)),
          }
        : {}),
      lifecycleRules: [
        {
          id: 'retention',
          expiration: Duration.days(transcriptDays),
          // Transcripts are written once (If-None-Match: *); a noncurrent version only
          // exists after a delete or expiry and is kept 30 days to recover from mistakes.
          noncurrentVersionExpiration: Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
        { id: 'delete-markers', expiredObjectDeleteMarker: true },
      ],
      ...(this.accessLogsBucket ? { serverAccessLogsBucket: this.accessLogsBucket, serverAccessLogsPrefix: 'transcripts/' } : {}),
      removalPolicy,
    });
    if (!this.accessLogsBucket) {
      acknowledge(
        this.transcriptBucket,
        'AwsSolutions-S1',
        'Server access logs were turned off (serverAccessLogs: false). Only Airlock\'s proxy (PutObject) and admin (GetObject) functions touch this bucket, and every request that produced a transcript is recorded in the records table; enable CloudTrail S3 data events for object-level auditing.',
      );
    }

    // ------------------------------------------------------------ topics
    this.approvalTopic = new sns.Topic(this, 'ApprovalTopic', {
      displayName: 'Airlock approvals',
      masterKey: this.key,
      enforceSSL: true,
    });
    for (const email of props.approverEmails ?? []) {
      this.approvalTopic.addSubscription(
        new subscriptions.EmailSubscription(email, {
          filterPolicy: { approver: sns.SubscriptionFilter.stringFilter({ allowlist: [email] }) },
        }),
      );
    }
    for (const email of props.eventEmails ?? []) {
      this.approvalTopic.addSubscription(new subscriptions.EmailSubscription(email, { filterPolicy: { event: sns.SubscriptionFilter.existsFilter() } }));
    }

    if (props.alarmTopic) {
      this.alarmTopic = props.alarmTopic;
    } else if (props.alarmEmail) {
      const alarmTopic = new sns.Topic(this, 'AlarmTopic', { displayName: 'Airlock alarms', masterKey: this.key, enforceSSL: true });
      alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
      // CloudWatch publishes alarm notifications to the encrypted topic.
      this.key.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'CloudWatchAlarmsPublishToEncryptedTopic',
          principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resources: ['*'],
          conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
        }),
      );
      this.alarmTopic = alarmTopic;
    }

    // ------------------------------------------------------------ state machine names
    // The workflow function needs both state machine ARNs (to resume a task token),
    // and the state machines need its ARN: the names are fixed first and the ARNs
    // built from them, so nothing refers to the state machine resources in a cycle.
    const windowScope = new Construct(this, 'WindowWorkflow');
    const approvalScope = new Construct(this, 'ApprovalWorkflow');
    const windowMachineName = Names.uniqueResourceName(windowScope, { maxLength: 80, separator: '-' });
    const approvalMachineName = Names.uniqueResourceName(approvalScope, { maxLength: 80, separator: '-' });
    const machineArn = (name: string) => stack.formatArn({ service: 'states', resource: 'stateMachine', resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const executionsArn = (name: string) => stack.formatArn({ service: 'states', resource: 'execution', resourceName: `${name}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const windowMachineArn = machineArn(windowMachineName);
    const approvalMachineArn = machineArn(approvalMachineName);

    // ------------------------------------------------------------ API (id only; methods below)
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', { retention: logRetention, removalPolicy });
    const resourcePolicy = this.#resourcePolicy();
    this.api = new apigw.RestApi(this, 'Api', {
      restApiName: Names.uniqueResourceName(this, { maxLength: 128, separator: '-' }),
      description: 'Airlock: the single access boundary for AI agents on Amazon EKS',
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      // Every request body reaches the functions base64-encoded, byte for byte.
      binaryMediaTypes: ['*/*'],
      // The account-level setting outlives the stack (other APIs in the account may rely on it).
      ...((props.apiGatewayCloudWatchRole ?? true) ? { cloudWatchRole: true, cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN } : { cloudWatchRole: false }),
      policy: resourcePolicy,
      ...(props.customDomain
        ? {
            domainName: {
              domainName: props.customDomain.domainName,
              certificate: props.customDomain.certificate,
              endpointType: apigw.EndpointType.REGIONAL,
              securityPolicy: apigw.SecurityPolicy.TLS_1_2,
            },
          }
        : {}),
      deployOptions: {
        stageName,
        tracingEnabled: tracing,
        // Errors only, never request/response bodies (they carry tokens and Kubernetes objects).
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: false,
        throttlingRateLimit: props.throttling?.rateLimit ?? 50,
        throttlingBurstLimit: props.throttling?.burstLimit ?? 100,
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: apigw.AccessLogField.contextRequestId(),
            time: apigw.AccessLogField.contextRequestTime(),
            ip: apigw.AccessLogField.contextIdentitySourceIp(),
            userArn: apigw.AccessLogField.contextIdentityUserArn(),
            method: apigw.AccessLogField.contextHttpMethod(),
            resource: apigw.AccessLogField.contextResourcePath(),
            path: apigw.AccessLogField.contextPath(),
            status: apigw.AccessLogField.contextStatus(),
            responseLength: apigw.AccessLogField.contextResponseLength(),
            latency: apigw.AccessLogField.contextResponseLatency(),
            integrationLatency: apigw.AccessLogField.contextIntegrationLatency(),
            error: apigw.AccessLogField.contextErrorMessage(),
          }),
        ),
      },
    });
    // API Gateway applies a changed resource policy only with a new deployment.
    this.api.latestDeployment?.addToLogicalId({ resourcePolicy });
    this.url = props.customDomain
      ? `https://${props.customDomain.domainName}`
      : `https://${this.api.restApiId}.execute-api.${stack.region}.${stack.urlSuffix}/${stageName}`;

    // ------------------------------------------------------------ functions
    const commonEnvironment: Record<string, string> = {
      POWERTOOLS_SERVICE_NAME: 'airlock',
      POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
      NODE_OPTIONS: FUNCTION_NODE_OPTIONS,
    };
    const airlockEnvironment: Record<string, string> = {
      [ENV.stateTable]: this.stateTable.tableName,
      [ENV.recordsTable]: this.recordsTable.tableName,
      [ENV.transcriptBucket]: this.transcriptBucket.bucketName,
      [ENV.publicUrl]: this.url,
      [ENV.secretArn]: this.secret.secretArn,
      [ENV.windowStateMachineArn]: windowMachineArn,
      [ENV.approvalStateMachineArn]: approvalMachineArn,
      [ENV.approvalTopicArn]: this.approvalTopic.topicArn,
      [ENV.recordRetentionDays]: String(recordDays),
    };

    const functions = {} as Record<AirlockFunctionName, NodejsFunction>;
    for (const name of FUNCTION_NAMES) {
      const title = name[0]!.toUpperCase() + name.slice(1);
      const logGroup = new logs.LogGroup(this, `${title}Logs`, { retention: logRetention, removalPolicy });
      // Own role, no AWS managed policy: logs only to its own log group, plus the grants below.
      const role = new iam.Role(this, `${title}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `Airlock ${name} function`,
      });
      logGroup.grantWrite(role);
      const environment = {
        ...commonEnvironment,
        ...(name === 'health' ? {} : airlockEnvironment),
        ...(name === 'proxy' && props.eksExternalId ? { [ENV.eksExternalId]: props.eksExternalId } : {}),
      };
      const networking = name === 'proxy' ? props.proxyNetworking : undefined;
      functions[name] = new NodejsFunction(this, `${title}Function`, {
        description: DESCRIPTIONS[name],
        entry: functionEntry(name),
        handler: 'handler',
        runtime: lambda.Runtime.NODEJS_24_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: props.memorySize?.[name] ?? DEFAULT_MEMORY[name],
        timeout: name === 'proxy' ? (props.proxyTimeout ?? Duration.minutes(15)) : Duration.seconds(DEFAULT_TIMEOUT_SECONDS[name]),
        role,
        logGroup,
        loggingFormat: lambda.LoggingFormat.JSON,
        tracing: tracing ? lambda.Tracing.ACTIVE : lambda.Tracing.DISABLED,
        environment,
        projectRoot: PROJECT_ROOT,
        depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
        bundling: nodejsBundling(),
        ...(networking ? { vpc: networking.vpc, vpcSubnets: networking.subnets, securityGroups: networking.securityGroups } : {}),
      });
    }
    this.functions = functions;
    this.proxyRole = functions.proxy.role as iam.Role;
    if (props.proxyNetworking) {
      acknowledge(
        this.proxyRole,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        'Added by Lambda for a function in a VPC (proxyNetworking): the ENI actions it holds (ec2:CreateNetworkInterface, ...) support no resource-level scoping; AWS maintains it for exactly this purpose.',
      );
    }

    // ------------------------------------------------------------ least privilege
    const { tokens, access, admin, approvals, proxy, workflow } = functions;
    // Item-level DynamoDB actions only, no DeleteItem/BatchWriteItem/Scan anywhere:
    // Airlock changes state with conditional single-item writes and never deletes
    // (test/infra checks that every SDK command in lambdas/ is covered).
    const grantTable = (fn: lambda.IFunction, table: dynamodb.Table, sid: string, access: { read?: boolean; write?: string[] }) => {
      if (access.read) {
        fn.addToRolePolicy(new iam.PolicyStatement({ sid: `${sid}Read`, actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'], resources: [table.tableArn] }));
        fn.addToRolePolicy(new iam.PolicyStatement({ sid: `${sid}Query`, actions: ['dynamodb:Query'], resources: [table.tableArn, `${table.tableArn}/index/*`] }));
      }
      if (access.write?.length) fn.addToRolePolicy(new iam.PolicyStatement({ sid: `${sid}Write`, actions: access.write, resources: [table.tableArn] }));
      // Both tables are encrypted with the key: items are decrypted on read and encrypted on write.
      this.key.grantEncryptDecrypt(fn);
    };
    const stateReadWrite = { read: true, write: ['dynamodb:PutItem', 'dynamodb:UpdateItem'] };
    // Records are append-only for Airlock itself: PutItem (conditional on a new id); only the proxy
    // completes its own write-ahead record (UpdateItem). No function may delete an audit record.
    const appendOnly = ['dynamodb:PutItem'];
    const taskResponse = (fn: lambda.IFunction) =>
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'ResumeWorkflows',
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'],
          // Evaluated against the state machine the task token belongs to.
          resources: [windowMachineArn, approvalMachineArn],
        }),
      );

    // tokens: state read, records append, secret
    grantTable(tokens, this.stateTable, 'State', { read: true });
    grantTable(tokens, this.recordsTable, 'Records', { write: appendOnly });
    this.secret.grantRead(tokens);

    // access: state read/write, records append, secret, start window workflows
    grantTable(access, this.stateTable, 'State', stateReadWrite);
    grantTable(access, this.recordsTable, 'Records', { write: appendOnly });
    this.secret.grantRead(access);
    access.addToRolePolicy(new iam.PolicyStatement({ sid: 'StartWindows', actions: ['states:StartExecution'], resources: [windowMachineArn] }));

    // admin: state read/write, records read + append, transcripts read, secret, stop workflows;
    // and `POST /v1/audit/repair`: find records whose transcript was spooled into the record during
    // an S3 outage (Scan), write the transcript once (PutObject, If-None-Match) and mark the record
    // (UpdateItem, conditional on the spool).
    grantTable(admin, this.stateTable, 'State', stateReadWrite);
    grantTable(admin, this.recordsTable, 'Records', { read: true, write: ['dynamodb:PutItem', 'dynamodb:UpdateItem'] });
    admin.addToRolePolicy(new iam.PolicyStatement({ sid: 'RecordsRepairScan', actions: ['dynamodb:Scan'], resources: [this.recordsTable.tableArn] }));
    // `airlock audit show`: GetObject; ListBucket so that a missing transcript is NoSuchKey, not AccessDenied.
    admin.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadTranscripts', actions: ['s3:GetObject', 's3:PutObject'], resources: [this.transcriptBucket.arnForObjects('*')] }));
    admin.addToRolePolicy(new iam.PolicyStatement({ sid: 'ListTranscripts', actions: ['s3:ListBucket'], resources: [this.transcriptBucket.bucketArn] }));
    this.secret.grantRead(admin);
    admin.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'StopWorkflows', actions: ['states:StopExecution'], resources: [executionsArn(windowMachineName), executionsArn(approvalMachineName)] }),
    );

    // approvals: state read/write, records append, secret (link keys), resume workflows
    grantTable(approvals, this.stateTable, 'State', stateReadWrite);
    grantTable(approvals, this.recordsTable, 'Records', { write: appendOnly });
    this.secret.grantRead(approvals);
    taskResponse(approvals);
    // A cancelled request approval (kill switch, window end) stops its waiting workflow, from whichever
    // function cancels it: approvals (a decision on an ended window), proxy, access (`access end`), workflow (expiry).
    for (const fn of [approvals, proxy, access, workflow]) {
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'StopApprovalWorkflows', actions: ['states:StopExecution'], resources: [executionsArn(approvalMachineName)] }));
    }

    // proxy: state read/write, records read + append/complete, transcripts write-once, secret,
    // start approval workflows, assume the connection roles (added as they become known)
    grantTable(proxy, this.stateTable, 'State', stateReadWrite);
    grantTable(proxy, this.recordsTable, 'Records', { read: true, write: ['dynamodb:PutItem', 'dynamodb:UpdateItem'] });
    proxy.addToRolePolicy(new iam.PolicyStatement({ sid: 'WriteTranscripts', actions: ['s3:PutObject'], resources: [this.transcriptBucket.arnForObjects('*')] }));
    this.secret.grantRead(proxy);
    proxy.addToRolePolicy(new iam.PolicyStatement({ sid: 'StartApprovals', actions: ['states:StartExecution'], resources: [approvalMachineArn] }));
    for (const arn of props.connectionRoleArns ?? []) this.#allowProxyToAssume(arn);

    // workflow: state read/write, records append, secret (link keys), publish approvals, resume workflows
    grantTable(workflow, this.stateTable, 'State', stateReadWrite);
    grantTable(workflow, this.recordsTable, 'Records', { write: appendOnly });
    this.secret.grantRead(workflow);
    this.approvalTopic.grantPublish(workflow);
    taskResponse(workflow);

    // ------------------------------------------------------------ state machines
    const machine = (scope: Construct, name: string, file: string, title: string) => {
      checkDefinition(file);
      const logGroup = new logs.LogGroup(scope, 'Logs', {
        // The vendedlogs prefix keeps CloudWatch Logs' resource policy small.
        logGroupName: `/aws/vendedlogs/states/${name}`,
        retention: logRetention,
        removalPolicy,
      });
      const stateMachine = new sfn.StateMachine(scope, 'StateMachine', {
        stateMachineName: name,
        comment: title,
        stateMachineType: sfn.StateMachineType.STANDARD,
        definitionBody: sfn.DefinitionBody.fromFile(file),
        definitionSubstitutions: { [WORKFLOW_PLACEHOLDER]: workflow.functionArn },
        tracingEnabled: tracing,
        // Execution data (task tokens, ids) stays out of the logs.
        logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
      });
      if (!tracing) {
        acknowledge(
          stateMachine,
          'AwsSolutions-SF2',
          'X-Ray tracing was switched off for this deployment (tracing: false); every execution event is still logged (level ALL) and each task is a Lambda invocation with its own logs.',
        );
      }
      // Exactly the workflow function (unqualified ARN, as the ASL names it).
      stateMachine.addToRolePolicy(new iam.PolicyStatement({ sid: 'InvokeWorkflowFunction', actions: ['lambda:InvokeFunction'], resources: [workflow.functionArn] }));
      const policy = stateMachine.role.node.tryFindChild('DefaultPolicy');
      if (policy) {
        acknowledge(
          policy,
          'AwsSolutions-IAM5[Resource::*]',
          'Added by CDK for Step Functions logging (logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) and X-Ray (PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets); none of these actions supports resource-level permissions.',
        );
      }
      return stateMachine;
    };
    this.windowStateMachine = machine(windowScope, windowMachineName, WINDOW_DEFINITION, 'Airlock access window');
    this.approvalStateMachine = machine(approvalScope, approvalMachineName, APPROVAL_DEFINITION, 'Airlock one-time approval');
    for (const [machine, name] of [
      [this.windowStateMachine, windowMachineName],
      [this.approvalStateMachine, approvalMachineName],
    ] as const) {
      if ((machine.node.defaultChild as sfn.CfnStateMachine).stateMachineName !== name) throw new Error('internal: a state machine name drifted from the ARN given to the functions');
    }

    // ------------------------------------------------------------ routes
    this.#buildRoutes();
    if (props.webAclArn) {
      new wafv2.CfnWebACLAssociation(this, 'WebAcl', { resourceArn: this.api.deploymentStage.stageArn, webAclArn: props.webAclArn });
    } else {
      acknowledge(
        this.api.deploymentStage,
        'AwsSolutions-APIG3',
        'No WAF web ACL was given (webAclArn). Every route authenticates (IAM, agent key, Airlock token or signed link) and the stage is throttled; pass webAclArn to add IP allow lists or body-size rules.',
      );
    }

    // ------------------------------------------------------------ acknowledgements for grants
    this.#acknowledgeFunctionPolicies();
    const cloudWatchRole = this.api.node.tryFindChild('CloudWatchRole');
    if (cloudWatchRole) {
      acknowledge(
        cloudWatchRole,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        'The account-level role API Gateway uses to write execution logs; AWS maintains this policy for exactly that purpose (logs:* on log groups API Gateway creates).',
      );
    }

    // ------------------------------------------------------------ alarms
    this.#alarmsFor(functions);
    this.alarms = this.#alarms;
  }

  /** Connection roles made by `addEksConnection`, in order. */
  public get connectionRoles(): readonly iam.Role[] {
    return [...this.#connectionRoles];
  }

  /**
   * An IAM role for one EKS cluster that only the proxy function may assume
   * (with SourceIdentity `airlock-<agent>` and Airlock's two session tags),
   * with no permissions of its own: EKS authorizes it through the access entry
   * and Kubernetes RBAC. Pass its ARN as `connections create --role-arn`.
   */
  public addEksConnection(id: string, options: EksConnectionOptions): iam.Role {
    if (!/^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$/.test(options.clusterName)) throw new Error(`addEksConnection(${id}): invalid cluster name ${JSON.stringify(options.clusterName)}`);
    const groups = options.kubernetesGroups ?? ['airlock-agents'];
    for (const group of groups) {
      if (!group || group.startsWith('system:')) throw new Error(`addEksConnection(${id}): Kubernetes group ${JSON.stringify(group)} is not allowed (empty or system:)`);
    }
    const proxy = new iam.ArnPrincipal(this.proxyRole.roleArn);
    const sourceIdentity = { StringLike: { 'sts:SourceIdentity': SOURCE_IDENTITY_PATTERN } };
    const externalId = this.#props.eksExternalId ? { StringEquals: { 'sts:ExternalId': this.#props.eksExternalId } } : {};
    const role = new iam.Role(this, id, {
      roleName: options.roleName,
      description: `Airlock connection role for EKS cluster ${options.clusterName}: assumable only by the Airlock proxy function, no permissions of its own`,
      assumedBy: proxy.withConditions({ ...sourceIdentity, ...externalId }),
      maxSessionDuration: Duration.hours(1),
    });
    role.assumeRolePolicy!.addStatements(
      new iam.PolicyStatement({ sid: 'SourceIdentityIsTheAgent', principals: [proxy], actions: ['sts:SetSourceIdentity'], conditions: sourceIdentity }),
      new iam.PolicyStatement({
        sid: 'OnlyAirlockSessionTags',
        principals: [proxy],
        actions: ['sts:TagSession'],
        conditions: { 'ForAllValues:StringEquals': { 'aws:TagKeys': [...SESSION_TAG_KEYS] } },
      }),
    );
    if (options.createAccessEntry ?? true) {
      new eks.CfnAccessEntry(this, `${id}AccessEntry`, {
        clusterName: options.clusterName,
        principalArn: role.roleArn,
        type: 'STANDARD',
        username: EKS_USERNAME_TEMPLATE,
        kubernetesGroups: groups,
      });
    }
    this.#connectionRoles.push(role);
    this.#allowProxyToAssume(role.roleArn);
    return role;
  }

  #allowProxyToAssume(roleArn: string): void {
    if (!this.#assumeStatement) {
      this.#assumeStatement = new iam.PolicyStatement({ sid: 'AssumeConnectionRoles', actions: ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'] });
      this.functions.proxy.addToRolePolicy(this.#assumeStatement);
    }
    this.#assumeStatement.addResources(roleArn);
  }

  /**
   * The API's resource policy. Anyone may reach the routes the functions
   * authenticate themselves; the IAM routes are open only to the listed
   * principals (and closed to all others by an explicit deny).
   */
  #resourcePolicy(): iam.PolicyDocument {
    const props = this.#props;
    const resources = (auth: RouteAuth[]) => [...new Set(ROUTES.filter((route) => auth.includes(route.auth)).map(routeExecuteApiResource))];
    const invoke = ['execute-api:Invoke'];
    const anyone = [new iam.AnyPrincipal()];
    const statements: iam.PolicyStatement[] = [
      new iam.PolicyStatement({ sid: 'PublicRoutesAuthenticatedByTheFunctions', principals: anyone, actions: invoke, resources: resources(['none', 'agent', 'proxy', 'approver']) }),
    ];
    const agentRoutes = resources(['agent-iam']);
    const agents = props.agentPrincipalArns ?? [];
    if (agents.length) {
      statements.push(
        new iam.PolicyStatement({ sid: 'AgentPrincipals', principals: anyone, actions: invoke, resources: agentRoutes, conditions: { ArnLike: { 'aws:PrincipalArn': agents } } }),
        new iam.PolicyStatement({ sid: 'NoOtherAgentPrincipals', effect: iam.Effect.DENY, principals: anyone, actions: invoke, resources: agentRoutes, conditions: { ArnNotLike: { 'aws:PrincipalArn': agents } } }),
      );
    } else {
      statements.push(new iam.PolicyStatement({ sid: 'IamAgentSignInClosed', effect: iam.Effect.DENY, principals: anyone, actions: invoke, resources: agentRoutes }));
    }
    const admins = props.adminPrincipalArns ?? [];
    if (admins.length) {
      const adminRoutes = resources(['admin']);
      statements.push(
        new iam.PolicyStatement({ sid: 'AdminPrincipals', principals: anyone, actions: invoke, resources: adminRoutes, conditions: { ArnLike: { 'aws:PrincipalArn': admins } } }),
        new iam.PolicyStatement({ sid: 'NoOtherAdminPrincipals', effect: iam.Effect.DENY, principals: anyone, actions: invoke, resources: adminRoutes, conditions: { ArnNotLike: { 'aws:PrincipalArn': admins } } }),
      );
    } else {
      Annotations.of(this).addInfo('adminPrincipalArns is empty: the admin routes are open to principals of this account whose IAM policies allow execute-api:Invoke on them.');
    }
    return new iam.PolicyDocument({ statements });
  }

  #buildRoutes(): void {
    const validator = this.api.addRequestValidator('PathParameters', { validateRequestParameters: true, validateRequestBody: false });
    acknowledge(
      this.api,
      'AwsSolutions-APIG2',
      'Required path parameters are validated at the edge (PathParameters validator). Bodies are not: with binaryMediaTypes */* they reach the functions as bytes (Kubernetes objects on /k8s, JSON elsewhere), and every JSON body is parsed with a strict schema (unknown fields rejected, size-limited) in the function; a second copy of those schemas as API Gateway models would drift.',
    );
    const integrations = new Map<AirlockFunctionName, apigw.LambdaIntegration>();
    const integrationFor = (route: Route) => {
      let integration = integrations.get(route.function);
      if (!integration) {
        integration = route.streaming
          ? new apigw.LambdaIntegration(this.functions[route.function], {
              proxy: true,
              // InvokeWithResponseStream: status and headers first, then the body as it arrives (watch, logs -f).
              responseTransferMode: apigw.ResponseTransferMode.STREAM,
              timeout: this.#props.proxyTimeout ?? Duration.minutes(15),
              allowTestInvoke: false,
            })
          : new apigw.LambdaIntegration(this.functions[route.function], { proxy: true, allowTestInvoke: false });
        integrations.set(route.function, integration);
      }
      return integration;
    };
    const streaming = ROUTES.filter((route) => route.streaming);
    if (streaming.some((route) => route.function !== 'proxy')) throw new Error('only the proxy function streams its responses');

    for (const route of ROUTES) {
      const resource = this.api.root.resourceForPath(route.resource);
      const parameters = [...route.resource.matchAll(/\{([^}+]+)\+?\}/g)].map((match) => match[1]!);
      const method = resource.addMethod(route.method, integrationFor(route), {
        authorizationType: authorizationFor(route.auth),
        requestValidator: validator,
        requestParameters: Object.fromEntries(parameters.map((name) => [`method.request.path.${name}`, true])),
      });
      if (route.auth !== 'agent-iam' && route.auth !== 'admin') {
        const reason = PUBLIC_ROUTE_REASON[route.auth];
        acknowledge(method, 'AwsSolutions-APIG4', reason);
        acknowledge(method, 'AwsSolutions-COG4', reason);
      } else {
        acknowledge(method, 'AwsSolutions-COG4', 'This route uses AWS_IAM (SigV4) authorization: agents and admins are IAM principals, not Cognito users.');
      }
    }

    // API Gateway's own errors (throttling, IAM refusals, unknown paths) in Airlock's error shape.
    const errorBody = { 'application/json': '{"error":{"status":"$context.error.responseType","code":"$context.error.responseType","message":$context.error.messageString}}' };
    this.api.addGatewayResponse('Default4xx', { type: apigw.ResponseType.DEFAULT_4XX, templates: errorBody });
    this.api.addGatewayResponse('Default5xx', { type: apigw.ResponseType.DEFAULT_5XX, templates: errorBody });
  }

  /**
   * The wildcards CDK's grants produce, acknowledged per function for exactly
   * the grants that function has (IAM5 findings are per action/resource).
   */
  #acknowledgeFunctionPolicies(): void {
    const stack = Stack.of(this);
    const logical = (construct: Construct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
    const reasons = {
      xray: ['AwsSolutions-IAM5[Resource::*]', 'X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) supports no resource-level permissions.'],
      stateIndexes: [
        `AwsSolutions-IAM5[Resource::<${logical(this.stateTable)}.Arn>/index/*]`,
        "Queries of the state table use its three GSIs (byAgent, byConnection, byType); the wildcard covers exactly this table's indexes.",
      ],
      recordIndexes: [
        `AwsSolutions-IAM5[Resource::<${logical(this.recordsTable)}.Arn>/index/*]`,
        "Audit queries read the records table through its three GSIs (byAgent, byConnection, byDay); the wildcard covers exactly this table's indexes.",
      ],
      generateDataKey: [
        'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
        "Encrypting DynamoDB items, S3 objects (SSE-KMS, bucket key) and SNS messages with Airlock's key; CDK's grant, on this one key only.",
      ],
      reEncrypt: ['AwsSolutions-IAM5[Action::kms:ReEncrypt*]', "Part of CDK's encrypt/decrypt grant for tables encrypted with a customer-managed key; on this one key only."],
      transcripts: [
        `AwsSolutions-IAM5[Resource::<${logical(this.transcriptBucket)}.Arn>/*]`,
        'Transcripts are one object per request under keys Airlock generates: PutObject (always If-None-Match: *, never an overwrite) and GetObject only, no delete, in this one bucket.',
      ],
    } as const;
    const encrypted = [reasons.stateIndexes, reasons.generateDataKey, reasons.reEncrypt];
    const byFunction: Record<AirlockFunctionName, (readonly [string, string])[]> = {
      health: [],
      tokens: encrypted,
      access: encrypted,
      approvals: encrypted,
      workflow: encrypted,
      admin: [...encrypted, reasons.recordIndexes, reasons.transcripts],
      proxy: [...encrypted, reasons.recordIndexes, reasons.transcripts],
    };
    const tracing = this.#props.tracing ?? true;
    for (const name of FUNCTION_NAMES) {
      const policy = this.functions[name].role?.node.tryFindChild('DefaultPolicy');
      if (!policy) continue;
      for (const [id, reason] of [...byFunction[name], ...(tracing ? [reasons.xray] : [])]) acknowledge(policy, id, reason);
    }
    // StopExecution on the executions of Airlock's two state machines (execution names are grant/approval ids).
    // cdk-nag names an unresolved pseudo parameter <AWS::...> and a known one by its value.
    const pseudo = (value: string, name: string) => (Token.isUnresolved(value) ? `<AWS::${name}>` : value);
    const prefix = `arn:${pseudo(stack.partition, 'Partition')}:states:${pseudo(stack.region, 'Region')}:${pseudo(stack.account, 'AccountId')}`;
    const stoppers: [AirlockFunctionName, sfn.StateMachine[]][] = [
      ['admin', [this.windowStateMachine, this.approvalStateMachine]],
      ...(['approvals', 'proxy', 'access', 'workflow'] as const).map((name): [AirlockFunctionName, sfn.StateMachine[]] => [name, [this.approvalStateMachine]]),
    ];
    for (const [functionName, machines] of stoppers) {
      const policy = this.functions[functionName].role!.node.findChild('DefaultPolicy');
      for (const machine of machines) {
        const name = (machine.node.defaultChild as sfn.CfnStateMachine).stateMachineName;
        acknowledge(
          policy,
          `AwsSolutions-IAM5[Resource::${prefix}:execution:${name}:*]`,
          "Revocation and cancellation stop running executions of Airlock's own state machine; execution names are grant/approval ids, unknown in advance.",
        );
      }
    }
  }

  #alarmsFor(functions: Record<AirlockFunctionName, NodejsFunction>): void {
    const period = Duration.minutes(5);
    const add = (id: string, metric: cloudwatch.IMetric, description: string) => {
      const alarm = new cloudwatch.Alarm(this, id, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      if (this.alarmTopic) {
        alarm.addAlarmAction(new cwActions.SnsAction(this.alarmTopic));
        alarm.addOkAction(new cwActions.SnsAction(this.alarmTopic));
      }
      this.#alarms.push(alarm);
    };
    for (const name of FUNCTION_NAMES) {
      const fn = functions[name];
      const title = name[0]!.toUpperCase() + name.slice(1);
      add(`${title}ErrorsAlarm`, fn.metricErrors({ period, statistic: 'Sum' }), `Airlock ${name} function: unhandled errors`);
      add(`${title}ThrottlesAlarm`, fn.metricThrottles({ period, statistic: 'Sum' }), `Airlock ${name} function: throttled invocations`);
    }
    add('Api5xxAlarm', this.api.metricServerError({ period, statistic: 'Sum' }), 'Airlock API: 5xx responses (including 503 recorder_unavailable / gateway_unavailable)');
    for (const [title, machine] of [
      ['Window', this.windowStateMachine],
      ['Approval', this.approvalStateMachine],
    ] as const) {
      add(`${title}WorkflowFailedAlarm`, machine.metricFailed({ period, statistic: 'Sum' }), `Airlock ${title.toLowerCase()} workflow: failed executions`);
      add(`${title}WorkflowTimedOutAlarm`, machine.metricTimedOut({ period, statistic: 'Sum' }), `Airlock ${title.toLowerCase()} workflow: timed-out executions`);
    }
  }
}

function validateProps(props: AirlockProps): void {
  const problems: string[] = [];
  const positive = (name: string, value: number | undefined, max = Infinity) => {
    if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > max)) problems.push(`${name}: expected a whole number 1..${max}, got ${value}`);
  };
  positive('transcriptRetentionDays', props.transcriptRetentionDays);
  positive('recordRetentionDays', props.recordRetentionDays);
  if (props.objectLock) {
    if (props.objectLock.mode !== 'GOVERNANCE' && props.objectLock.mode !== 'COMPLIANCE') problems.push(`objectLock.mode: GOVERNANCE or COMPLIANCE, got ${String(props.objectLock.mode)}`);
    positive('objectLock.days', props.objectLock.days, props.transcriptRetentionDays ?? 400);
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
      if (!ARN_PATTERN.test(arn)) problems.push(`${field}[${index}]: not an IAM principal ARN: ${JSON.stringify(arn)}`);
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
