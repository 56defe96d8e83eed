// The Airlock construct: everything Airlock runs on AWS, from one place.
//
//   REST API (built from lambdas/routes.ts) -> seven Node.js 24 functions
//   DynamoDB state + records tables (shapes from lambdas/adapters/dynamodb/tables.ts)
//   S3 transcript bucket, SNS approval topic, Secrets Manager master secret,
//   two Step Functions state machines (state-machines/*.asl.json), one KMS key,
//   log groups with retention, CloudWatch alarms,
//   and per-cluster connection roles that only the proxy function can assume.
//
// The boundary's invariant, kept by construction and checked by
// test/infra: agent principals get execute-api:Invoke on the agent routes and
// nothing else — never eks:* nor sts:AssumeRole on a connection role — and a
// connection role trusts only the proxy function's role.
//
// The constructor below is the recipe; each part lives in its own file (storage.ts,
// notifications.ts, workflows.ts, api.ts, functions.ts, alarms.ts, nag.ts) and, unlike a
// child construct, adds its resources to this construct directly so that every logical id
// (and so every deployed table, bucket and role) stays what it was. Props, defaults and
// validation are in airlock-props.ts.
import { Duration } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as eks from 'aws-cdk-lib/aws-eks';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ENV } from '../lambdas/runtime/aws-config.ts';
import { EKS_CLUSTER_NAME_PATTERN, resolveProps, type AirlockProps, type EksConnectionOptions, type ResolvedAirlockProps } from './airlock-props.ts';
import { createAlarms } from './alarms.ts';
import { AirlockApi } from './api.ts';
import type { AirlockFunctionName } from './bundling.ts';
import { createFunctions } from './functions.ts';
import { acknowledgeFunctionPolicies } from './nag.ts';
import { AirlockNotifications } from './notifications.ts';
import { AirlockStorage } from './storage.ts';
import { AirlockWorkflows } from './workflows.ts';
import { createSecurityLakeExport } from './security-lake-export.ts';

export type { AirlockFunctionName };
export type { AirlockCustomDomain, AirlockProps, ApiThrottling, EksConnectionOptions, ProxyNetworking, SecurityLakeExport, TranscriptObjectLock } from './airlock-props.ts';

/** Username of the access entry: the session name is `airlock-<agent>` (sessionNameFor). */
export const EKS_USERNAME_TEMPLATE = 'airlock:{{SessionName}}';
/** Every session Airlock opens on a connection role carries SourceIdentity = `airlock-<agent>`. */
export const SOURCE_IDENTITY_PATTERN = 'airlock-*';
/** The only session tags Airlock sets (lambdas/adapters/eks-credentials.ts). */
export const SESSION_TAG_KEYS = ['airlock:agent', 'airlock:window'] as const;

export class Airlock extends Construct {
  /** The REST API (routes from lambdas/routes.ts). */
  public readonly api: apigw.RestApi;
  /** The API's base URL including the stage (or the custom domain), no trailing slash: AIRLOCK_PUBLIC_URL. */
  public readonly url: string;
  /** The seven functions, by name. */
  public readonly functions: Readonly<Record<AirlockFunctionName, lambda.Function>>;
  /** The proxy function's role: the only principal connection roles trust. */
  public readonly proxyRole: iam.Role;
  /** Agents, connections (+ policy), grants, approvals. */
  public readonly stateTable: dynamodb.Table;
  /** One item per request / audit event, expiring after `recordRetentionDays`. */
  public readonly recordsTable: dynamodb.Table;
  /** The scheduled OCSF export to Security Lake, when props.securityLakeExport is set. */
  public readonly securityLakeExport?: lambda.Function;
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

  readonly #props: ResolvedAirlockProps;
  readonly #connectionRoles: iam.Role[] = [];
  #assumeStatement?: iam.PolicyStatement;

  constructor(scope: Construct, id: string, props: AirlockProps = {}) {
    super(scope, id);
    // Behaviour this construct relies on, whatever the enclosing app's feature flags say:
    // server access logs are delivered through a bucket policy (no ACLs, BucketOwnerEnforced).
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    const settings = resolveProps(props);
    this.#props = settings;
    const { removalPolicy, logRetention, tracing } = settings;

    const storage = new AirlockStorage(this, {
      removalPolicy,
      transcriptRetentionDays: settings.transcriptRetentionDays,
      objectLock: settings.objectLock,
      serverAccessLogs: settings.serverAccessLogs,
    });
    this.key = storage.key;
    this.secret = storage.secret;
    this.stateTable = storage.stateTable;
    this.recordsTable = storage.recordsTable;
    this.accessLogsBucket = storage.accessLogsBucket;
    this.transcriptBucket = storage.transcriptBucket;

    const notifications = new AirlockNotifications(this, {
      key: storage.key,
      approverEmails: settings.approverEmails,
      eventEmails: settings.eventEmails,
      alarmEmail: settings.alarmEmail,
      alarmTopic: settings.alarmTopic,
    });
    this.approvalTopic = notifications.approvalTopic;
    this.alarmTopic = notifications.alarmTopic;

    // Names and ARNs only: the state machines need the workflow function, made below.
    const workflows = new AirlockWorkflows(this);

    // The API before the functions: they are told its URL. Routes are added once the functions exist.
    const api = new AirlockApi(this, {
      agentPrincipalArns: settings.agentPrincipalArns,
      adminPrincipalArns: settings.adminPrincipalArns,
      stageName: settings.stageName,
      tracing,
      throttling: settings.throttling,
      customDomain: settings.customDomain,
      apiGatewayCloudWatchRole: settings.apiGatewayCloudWatchRole,
      logRetention,
      removalPolicy,
    });
    this.api = api.api;
    this.url = api.url;

    this.functions = createFunctions(this, {
      airlockEnvironment: {
        [ENV.stateTable]: this.stateTable.tableName,
        [ENV.recordsTable]: this.recordsTable.tableName,
        [ENV.transcriptBucket]: this.transcriptBucket.bucketName,
        [ENV.publicUrl]: this.url,
        [ENV.secretArn]: this.secret.secretArn,
        [ENV.windowStateMachineArn]: workflows.window.arn,
        [ENV.approvalStateMachineArn]: workflows.approval.arn,
        [ENV.approvalTopicArn]: this.approvalTopic.topicArn,
        [ENV.recordRetentionDays]: String(settings.recordRetentionDays),
        ...(settings.logReadLimits?.limitBytes ? { [ENV.logReadLimitBytes]: String(settings.logReadLimits.limitBytes) } : {}),
        ...(settings.logReadLimits?.tailLines ? { [ENV.logReadTailLines]: String(settings.logReadLimits.tailLines) } : {}),
      },
      logLevel: settings.logLevel,
      logRetention,
      removalPolicy,
      tracing,
      memorySize: settings.memorySize,
      proxyTimeout: settings.proxyTimeout,
      proxyNetworking: settings.proxyNetworking,
      eksExternalId: settings.eksExternalId,
    });
    this.proxyRole = this.functions.proxy.role as iam.Role;
    this.#grantLeastPrivilege(storage, workflows, this.approvalTopic);

    const machines = workflows.addStateMachines({ workflowFunction: this.functions.workflow, logRetention, removalPolicy, tracing });
    this.windowStateMachine = machines.window;
    this.approvalStateMachine = machines.approval;

    api.addRoutes(this.functions, settings.proxyTimeout);
    api.protect(settings.webAclArn);
    acknowledgeFunctionPolicies(this, { functions: this.functions, storage, windowStateMachine: this.windowStateMachine, approvalStateMachine: this.approvalStateMachine, tracing });
    api.acknowledgeCloudWatchRole();
    if (settings.securityLakeExport) {
      this.securityLakeExport = createSecurityLakeExport(this, { settings: settings.securityLakeExport, recordsTable: this.recordsTable, logRetention, removalPolicy });
    }

    this.alarms = createAlarms(this, {
      functions: this.functions,
      api: this.api,
      windowStateMachine: this.windowStateMachine,
      approvalStateMachine: this.approvalStateMachine,
      alarmTopic: this.alarmTopic,
    });
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
    if (!EKS_CLUSTER_NAME_PATTERN.test(options.clusterName)) throw new Error(`addEksConnection(${id}): invalid cluster name ${JSON.stringify(options.clusterName)}`);
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

  /** Least privilege: what each function may do beyond writing its own logs. */
  #grantLeastPrivilege(storage: AirlockStorage, workflows: AirlockWorkflows, approvalTopic: sns.Topic): void {
    const { tokens, access, admin, approvals, proxy, workflow } = this.functions;
    const stateReadWrite = { read: true, write: ['dynamodb:PutItem', 'dynamodb:UpdateItem'] };
    // Records are append-only for Airlock itself: PutItem (conditional on a new id); only the proxy
    // completes its own write-ahead record (UpdateItem). No function may delete an audit record.
    const appendOnly = ['dynamodb:PutItem'];

    // tokens: state read, records append, secret
    storage.grantState(tokens, { read: true });
    storage.grantRecords(tokens, { write: appendOnly });
    storage.secret.grantRead(tokens);

    // access: state read/write, records read (a plan's approver sees what the agent did in its window) + append,
    // secret, start window workflows
    storage.grantState(access, stateReadWrite);
    storage.grantRecords(access, { read: true, write: appendOnly });
    storage.secret.grantRead(access);
    workflows.grantStartWindows(access);

    // admin: state read/write, records read + append, transcripts read, secret, stop workflows;
    // and `POST /v1/audit/repair`: find records whose transcript was spooled into the record during
    // an S3 outage (Scan), write the transcript once (PutObject, If-None-Match) and mark the record
    // (UpdateItem, conditional on the spool).
    storage.grantState(admin, stateReadWrite);
    storage.grantRecords(admin, { read: true, write: ['dynamodb:PutItem', 'dynamodb:UpdateItem'] });
    storage.grantRecordsRepairScan(admin);
    storage.grantReadTranscripts(admin);
    storage.secret.grantRead(admin);
    workflows.grantStopAll(admin);

    // approvals: state read/write, records append, approval previews read, secret (link keys), resume workflows
    storage.grantState(approvals, stateReadWrite);
    storage.grantRecords(approvals, { write: appendOnly });
    storage.grantReadPreviews(approvals);
    storage.secret.grantRead(approvals);
    workflows.grantResume(approvals);
    // A cancelled request approval (kill switch, window end) stops its waiting workflow, from whichever
    // function cancels it: approvals (a decision on an ended window), proxy, access (`access end`), workflow (expiry).
    for (const fn of [approvals, proxy, access, workflow]) workflows.grantStopApprovals(fn);

    // proxy: state read/write, records read + append/complete, transcripts write-once, secret,
    // start approval workflows, assume the connection roles (added as they become known)
    storage.grantState(proxy, stateReadWrite);
    storage.grantRecords(proxy, { read: true, write: ['dynamodb:PutItem', 'dynamodb:UpdateItem'] });
    storage.grantWriteTranscripts(proxy);
    storage.secret.grantRead(proxy);
    workflows.grantStartApprovals(proxy);
    // MCP's request_access runs in the proxy function (lambdas/mcp): it starts window workflows as the access function does.
    workflows.grantStartWindows(proxy);
    for (const arn of this.#props.connectionRoleArns ?? []) this.#allowProxyToAssume(arn);

    // workflow: state read/write, records append, secret (link keys), publish approvals, resume workflows
    storage.grantState(workflow, stateReadWrite);
    storage.grantRecords(workflow, { write: appendOnly });
    storage.secret.grantRead(workflow);
    approvalTopic.grantPublish(workflow);
    workflows.grantResume(workflow);
  }
}
