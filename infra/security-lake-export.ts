// The optional scheduled export (props.securityLakeExport): an EventBridge
// schedule runs one function that reads the records table and writes the last
// period's records as OCSF Parquet to the Security Lake custom source's
// location (lambdas/handlers/security-lake-export.ts). Its role reads records
// (Query) and nothing else of Airlock's; it writes only under the prefix, or
// only assumes the source's provider role.
import { Aws, Duration, type RemovalPolicy } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { ENV } from '../lambdas/runtime/aws-config.ts';
import { EXPORT_ENV } from '../lambdas/handlers/security-lake-export.ts';
import type { SecurityLakeExport } from './airlock-props.ts';
import { FUNCTION_NODE_OPTIONS, functionCode } from './bundling.ts';
import { acknowledge } from './nag.ts';

export interface SecurityLakeExportProps {
  readonly settings: SecurityLakeExport;
  readonly recordsTable: dynamodb.ITable;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

export function createSecurityLakeExport(scope: Construct, props: SecurityLakeExportProps): lambda.Function {
  const { settings } = props;
  const period = settings.period ?? Duration.hours(1);
  const logGroup = new logs.LogGroup(scope, 'SecurityLakeExportLogs', { retention: props.logRetention, removalPolicy: props.removalPolicy });
  const role = new iam.Role(scope, 'SecurityLakeExportRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: 'Airlock scheduled OCSF export to Security Lake' });
  logGroup.grantWrite(role);
  const fn = new lambda.Function(scope, 'SecurityLakeExportFunction', {
    description: 'Airlock: scheduled OCSF API Activity Parquet export to an Amazon Security Lake custom source',
    code: functionCode('security-lake-export'),
    handler: 'index.handler',
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: 1024,
    timeout: Duration.minutes(5),
    role,
    logGroup,
    loggingFormat: lambda.LoggingFormat.JSON,
    environment: {
      NODE_OPTIONS: FUNCTION_NODE_OPTIONS,
      [ENV.recordsTable]: props.recordsTable.tableName,
      [EXPORT_ENV.bucket]: settings.bucketName,
      [EXPORT_ENV.prefix]: settings.prefix,
      [EXPORT_ENV.periodMinutes]: String(period.toMinutes()),
      ...(settings.providerRoleArn ? { [EXPORT_ENV.providerRoleArn]: settings.providerRoleArn } : {}),
      ...(settings.externalId ? { [EXPORT_ENV.externalId]: settings.externalId } : {}),
    },
  });
  role.addToPolicy(new iam.PolicyStatement({ sid: 'ReadRecordsByDay', actions: ['dynamodb:Query'], resources: [`${props.recordsTable.tableArn}/index/byDay`] }));
  props.recordsTable.encryptionKey?.grantDecrypt(role);
  if (settings.providerRoleArn) role.addToPolicy(new iam.PolicyStatement({ sid: 'AssumeProviderRole', actions: ['sts:AssumeRole'], resources: [settings.providerRoleArn] }));
  else role.addToPolicy(new iam.PolicyStatement({ sid: 'WriteUnderPrefix', actions: ['s3:PutObject'], resources: [`arn:${Aws.PARTITION}:s3:::${settings.bucketName}/${settings.prefix}*`] }));
  acknowledge(
    role,
    'AwsSolutions-IAM5',
    "Objects under the custom source's prefix (region=/accountId=/eventDay= partitions named by time) cannot be listed ahead; the export writes nothing outside the prefix.",
  );
  new events.Rule(scope, 'SecurityLakeExportSchedule', { schedule: events.Schedule.rate(period), targets: [new targets.LambdaFunction(fn, { retryAttempts: 2 })] });
  return fn;
}
