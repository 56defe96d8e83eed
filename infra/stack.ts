// AirlockStack: one Airlock construct configured from infra/config.ts, its EKS
// connection roles, and the outputs an admin needs after `cdk deploy`.
import { App, CfnOutput, Duration, Stack, Tags, Validations, type StackProps } from 'aws-cdk-lib';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Construct } from 'constructs';
import { Airlock } from './airlock.ts';
import { loadConfig, type AirlockConfig } from './config.ts';

export interface AirlockStackProps extends StackProps {
  readonly config: AirlockConfig;
}

export class AirlockStack extends Stack {
  public readonly airlock: Airlock;

  constructor(scope: Construct, id: string, props: AirlockStackProps) {
    super(scope, id, props);
    const { config } = props;
    Tags.of(this).add('app', 'airlock');

    this.airlock = new Airlock(this, 'Airlock', {
      approverEmails: config.approverEmails,
      eventEmails: config.eventEmails,
      agentPrincipalArns: config.agentPrincipalArns,
      adminPrincipalArns: config.adminPrincipalArns,
      connectionRoleArns: config.connectionRoleArns,
      eksExternalId: config.eksExternalId,
      transcriptRetentionDays: config.transcriptRetentionDays,
      recordRetentionDays: config.recordRetentionDays,
      objectLock: config.objectLock,
      ...(config.securityLakeExport ? { securityLakeExport: securityLakeExportOf(config.securityLakeExport) } : {}),
      throttling: config.throttling,
      logReadLimits: config.logReadLimits,
      logRetention: config.logRetentionDays as RetentionDays,
      logLevel: config.logLevel,
      stageName: config.stageName,
      webAclArn: config.webAclArn,
      alarmEmail: config.alarmEmail,
      serverAccessLogs: config.serverAccessLogs,
      apiGatewayCloudWatchRole: config.apiGatewayCloudWatchRole,
      proxyTimeout: Duration.minutes(15),
    });

    const output = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description });
    output('ApiUrl', this.airlock.url, 'Airlock endpoint: airlock --endpoint <this> (AIRLOCK_ENDPOINT)');
    output('ProxyRoleArn', this.airlock.proxyRole.roleArn, 'The only principal a connection role may trust (for roles created outside this stack)');
    output('StateTableName', this.airlock.stateTable.tableName, 'DynamoDB: agents, connections, windows, approvals');
    output('RecordsTableName', this.airlock.recordsTable.tableName, 'DynamoDB: request records and audit events');
    output('TranscriptBucketName', this.airlock.transcriptBucket.bucketName, 'S3: request transcripts');
    output('ApprovalTopicArn', this.airlock.approvalTopic.topicArn, 'SNS: approval emails (one filtered subscription per approver)');
    output('MasterSecretArn', this.airlock.secret.secretArn, 'Secrets Manager: the master secret (rotate: docs/DEPLOY.md)');
    for (const connection of config.eksConnections) {
      const role = this.airlock.addEksConnection(connection.name, {
        clusterName: connection.clusterName,
        kubernetesGroups: connection.kubernetesGroups,
        createAccessEntry: connection.createAccessEntry,
      });
      output(`ConnectionRole${connection.name.replace(/[^A-Za-z0-9]/g, '')}`, role.roleArn, `--role-arn for connection ${connection.name} (cluster ${connection.clusterName})`);
    }
  }
}

export interface BuildAppOptions {
  /** Extra context (tests pass cdk.json's context and settings here). */
  readonly context?: Record<string, unknown>;
  /** Cloud assembly directory. @default - the CLI's (cdk.out) */
  readonly outdir?: string;
  /** Where airlock.config.json is looked for. @default process.cwd() */
  readonly cwd?: string;
}

/** The app `cdk.json` runs: one AirlockStack, checked by cdk-nag's AwsSolutions pack. */
export function buildApp(options: BuildAppOptions = {}): { app: App; stack: AirlockStack; config: AirlockConfig } {
  const app = new App({ context: options.context, outdir: options.outdir });
  const { config } = loadConfig({ context: (key) => app.node.tryGetContext(key), cwd: options.cwd });
  const account = config.account ?? process.env.CDK_DEFAULT_ACCOUNT;
  const region = config.region ?? process.env.CDK_DEFAULT_REGION;
  const stack = new AirlockStack(app, config.stackName, {
    config,
    description: 'Airlock: the single access boundary for AI agents on Amazon EKS',
    ...(account || region ? { env: { account, region } } : {}),
  });
  // Any AwsSolutions finding without a written acknowledgement fails the synth.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack, config };
}

function securityLakeExportOf({ periodMinutes, ...location }: NonNullable<AirlockConfig['securityLakeExport']>) {
  return { ...location, period: Duration.minutes(periodMinutes) };
}
