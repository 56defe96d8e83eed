// On AWS: the configuration comes from the function's environment, set by the
// CDK construct (infra/). These names are the contract between the two.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { deriveGatewaySecrets } from '../core/keys.ts';
import type { AirlockConfig, GatewaySecrets, SecretSource } from './services.ts';

export const ENV = {
  stateTable: 'AIRLOCK_STATE_TABLE',
  recordsTable: 'AIRLOCK_RECORDS_TABLE',
  transcriptBucket: 'AIRLOCK_TRANSCRIPT_BUCKET',
  publicUrl: 'AIRLOCK_PUBLIC_URL',
  secretArn: 'AIRLOCK_SECRET_ARN',
  windowStateMachineArn: 'AIRLOCK_WINDOW_STATE_MACHINE_ARN',
  approvalStateMachineArn: 'AIRLOCK_APPROVAL_STATE_MACHINE_ARN',
  approvalTopicArn: 'AIRLOCK_APPROVAL_TOPIC_ARN',
  recordRetentionDays: 'AIRLOCK_RECORD_RETENTION_DAYS',
  eksExternalId: 'AIRLOCK_EKS_EXTERNAL_ID',
  logReadLimitBytes: 'AIRLOCK_LOG_READ_LIMIT_BYTES',
  logReadTailLines: 'AIRLOCK_LOG_READ_TAIL_LINES',
} as const;

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`missing environment variable ${name}`);
  return value;
}

/** The master secret's current and previous versions (rotation keeps old tokens verifiable for their ≤ 15 minutes). */
export class SecretsManagerSecretSource implements SecretSource {
  private readonly client: SecretsManagerClient;
  private readonly secretArn: string;

  constructor(secretArn: string, client = new SecretsManagerClient({})) {
    this.secretArn = secretArn;
    this.client = client;
  }

  async load(): Promise<GatewaySecrets> {
    const current = await this.client.send(new GetSecretValueCommand({ SecretId: this.secretArn, VersionStage: 'AWSCURRENT' }));
    let previous: string | undefined;
    try {
      previous = (await this.client.send(new GetSecretValueCommand({ SecretId: this.secretArn, VersionStage: 'AWSPREVIOUS' }))).SecretString;
    } catch {
      previous = undefined; // never rotated
    }
    if (!current.SecretString) throw new Error('the gateway secret has no string value');
    return deriveGatewaySecrets(current.SecretString, previous);
  }
}

function optionalNumber(name: string): number | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : Number(value);
}

/** The configuration without `eks`: only the proxy reaches clusters (handlers/proxy.ts adds it). */
export async function configFromEnvironment(): Promise<AirlockConfig> {
  const retention = Number(process.env[ENV.recordRetentionDays] ?? 400);
  return {
    region: required('AWS_REGION'),
    stateTable: required(ENV.stateTable),
    recordsTable: required(ENV.recordsTable),
    transcriptBucket: required(ENV.transcriptBucket),
    publicUrl: required(ENV.publicUrl).replace(/\/$/, ''),
    secrets: new SecretsManagerSecretSource(required(ENV.secretArn)),
    admin: { mode: 'iam' },
    recordRetentionDays: Number.isFinite(retention) && retention > 0 ? retention : 400,
    // Checked when the gateway is built (a bad value fails the start, not a request).
    logReadLimits: {
      limitBytes: optionalNumber(ENV.logReadLimitBytes),
      tailLines: optionalNumber(ENV.logReadTailLines),
    },
    workflows: {
      windowStateMachineArn: process.env[ENV.windowStateMachineArn],
      approvalStateMachineArn: process.env[ENV.approvalStateMachineArn],
      approvalTopicArn: process.env[ENV.approvalTopicArn],
    },
  };
}
