// The services every function uses (DynamoDB, the token service, approval
// links, Step Functions and SNS when configured). Nothing here reaches S3 or
// the gateway, so a function that needs only these bundles only these.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoRecordStore } from '../adapters/dynamodb/record-store.ts';
import { DynamoStateStore } from '../adapters/dynamodb/state-store.ts';
import { StepFunctionsWorkflows } from '../adapters/sfn.ts';
import { SnsNotifier } from '../adapters/sns.ts';
import { ApprovalLinks } from '../core/approvals.ts';
import { TokenService } from '../core/tokens.ts';
import { logger } from './logger.ts';
import type { AirlockConfig, CoreServices } from './services.ts';

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

export async function createCoreServices(config: AirlockConfig): Promise<CoreServices> {
  const dynamodb = new DynamoDBClient(awsClientConfig(config, 'dynamodb'));
  const state = new DynamoStateStore(dynamodb, config.stateTable);
  const recordsDynamodb = config.endpoints?.dynamodbRecords ? new DynamoDBClient(awsClientConfig(config, 'dynamodbRecords')) : dynamodb;
  const records = new DynamoRecordStore(recordsDynamodb, config.recordsTable, { retentionDays: config.recordRetentionDays });
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
  return { config, state, records, tokens, secrets, links, workflows, notifier, now, log: logger };
}
