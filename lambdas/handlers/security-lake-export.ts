// The optional scheduled export (EventBridge schedule, infra/security-lake-export.ts):
// each run writes the last period's records as OCSF API Activity Parquet to an
// Amazon Security Lake custom source location (core/ocsf-parquet.ts), writing
// as the source's provider role when one is configured.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { Context } from 'aws-lambda';
import { DynamoRecordStore } from '../adapters/dynamodb/record-store.ts';
import { exportPeriodToSecurityLake } from '../core/ocsf-parquet.ts';
import { ENV } from '../runtime/aws-config.ts';

export const EXPORT_ENV = {
  bucket: 'AIRLOCK_SECURITY_LAKE_BUCKET',
  prefix: 'AIRLOCK_SECURITY_LAKE_PREFIX',
  providerRoleArn: 'AIRLOCK_SECURITY_LAKE_ROLE_ARN',
  externalId: 'AIRLOCK_SECURITY_LAKE_EXTERNAL_ID',
  periodMinutes: 'AIRLOCK_SECURITY_LAKE_PERIOD_MINUTES',
} as const;

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`missing environment variable ${name}`);
  return value;
}

export async function handler(_event: unknown, context: Context): Promise<{ from: string; to: string; events: number; keys: string[] }> {
  const region = required('AWS_REGION');
  const bucket = required(EXPORT_ENV.bucket);
  const roleArn = process.env[EXPORT_ENV.providerRoleArn];
  const s3 = new S3Client({
    region,
    ...(roleArn
      ? {
          credentials: fromTemporaryCredentials({
            params: { RoleArn: roleArn, RoleSessionName: 'airlock-export', ...(process.env[EXPORT_ENV.externalId] ? { ExternalId: process.env[EXPORT_ENV.externalId] } : {}) },
          }),
        }
      : {}),
  });
  const periodMinutes = Number(process.env[EXPORT_ENV.periodMinutes] ?? 60);
  const result = await exportPeriodToSecurityLake({
    records: new DynamoRecordStore(new DynamoDBClient({ region }), required(ENV.recordsTable)),
    put: async (key, body) => void (await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/vnd.apache.parquet' }))),
    prefix: process.env[EXPORT_ENV.prefix] ?? '',
    region,
    accountId: context.invokedFunctionArn.split(':')[4] ?? '',
    cloudProvider: 'AWS',
    periodMs: periodMinutes * 60_000,
    // Streams (watch, logs -f) can run to the window's end; a record is exported once it had time to complete.
    lagMs: 15 * 60_000,
    now: Date.now(),
  });
  return { ...result, from: new Date(result.from).toISOString(), to: new Date(result.to).toISOString() };
}
