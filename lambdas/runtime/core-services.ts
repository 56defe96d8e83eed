// The services every function uses (DynamoDB, the token service, approval
// links, Step Functions and SNS when configured). Nothing here reaches S3 or
// the gateway, so a function that needs only these bundles only these. Step
// Functions and SNS are loaded on first use (core/on-first-use.ts): most
// requests of most functions start no workflow and notify no one, and a load
// that fails is the service being unavailable.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoRecordStore } from '../adapters/dynamodb/record-store.ts';
import { DynamoStateStore } from '../adapters/dynamodb/state-store.ts';
import { DependencyUnavailableError, errorText } from '../core/errors.ts';
import { onFirstUse } from '../core/on-first-use.ts';
import type { Notifier, Workflows } from '../core/ports.ts';
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
  const workflows = windowStateMachineArn && approvalStateMachineArn ? workflowsOnFirstUse(config, { window: windowStateMachineArn, approval: approvalStateMachineArn }) : undefined;
  const notifier = approvalTopicArn ? notifierOnFirstUse(config, approvalTopicArn) : undefined;
  return { config, state, records, tokens, secrets, links, workflows, notifier, now, log: logger };
}

function workflowsOnFirstUse(config: AirlockConfig, machines: { window: string; approval: string }): Workflows {
  const load = onFirstUse(
    async () => (await import('../adapters/sfn.ts')).stepFunctionsWorkflows(awsClientConfig(config, 'sfn'), machines),
    (error) => new DependencyUnavailableError('workflows', `the Step Functions client could not be loaded: ${errorText(error)}`, { cause: error }),
  );
  return {
    startWindow: async (grantId) => (await load()).startWindow(grantId),
    startApproval: async (approvalId) => (await load()).startApproval(approvalId),
    stop: async (executionArn, cause) => (await load()).stop(executionArn, cause),
    sendSuccess: async (taskToken, output) => (await load()).sendSuccess(taskToken, output),
    sendFailure: async (taskToken, error, cause) => (await load()).sendFailure(taskToken, error, cause),
  };
}

function notifierOnFirstUse(config: AirlockConfig, topicArn: string): Notifier {
  const load = onFirstUse(
    async () => (await import('../adapters/sns.ts')).snsNotifier(awsClientConfig(config, 'sns'), topicArn),
    (error) => new DependencyUnavailableError('notifier', `the SNS client could not be loaded: ${errorText(error)}`, { cause: error }),
  );
  return {
    toApprover: async (approver, subject, text, attributes) => (await load()).toApprover(approver, subject, text, attributes),
    event: async (type, subject, text, attributes) => (await load()).event(type, subject, text, attributes),
  };
}
