// Storage: the customer-managed key, the master secret, the state and records tables
// (mirrored from lambdas/adapters/dynamodb/tables.ts) and the transcript bucket with its access logs.
//
// Like an L2 construct it takes (scope, props) and offers grant* methods, but it adds its
// resources to `scope` itself rather than under a child: their logical ids (and so the
// deployed tables and bucket) stay what they have always been.
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { recordsTableDefinition, stateTableDefinition } from '../lambdas/adapters/dynamodb/tables.ts';
import type { TranscriptObjectLock } from './airlock-props.ts';
import { acknowledge } from './nag.ts';

export interface AirlockStorageProps {
  /** What happens to the key, secret, tables and buckets when the stack is deleted; RETAIN also keeps table deletion protection on. */
  readonly removalPolicy: RemovalPolicy;
  /** Days a transcript (and a server access log) is kept. */
  readonly transcriptRetentionDays: number;
  /** @default - no Object Lock */
  readonly objectLock?: TranscriptObjectLock;
  /** @default true */
  readonly serverAccessLogs?: boolean;
}

/** What a function may do with a table: read (GetItem, BatchGetItem, Query incl. indexes) and which item writes. */
export interface TableAccess {
  readonly read?: boolean;
  readonly write?: string[];
}

export class AirlockStorage {
  /** The customer-managed key for tables, bucket, topics and secret. */
  public readonly key: kms.Key;
  /** The master secret every gateway key is derived from (HKDF). */
  public readonly secret: secretsmanager.Secret;
  /** Agents, connections (+ policy), grants, approvals. */
  public readonly stateTable: dynamodb.Table;
  /** One item per request / audit event. */
  public readonly recordsTable: dynamodb.Table;
  /** Server access logs of the transcript bucket (when enabled). */
  public readonly accessLogsBucket?: s3.Bucket;
  /** Request transcripts (redacted), one object per request. */
  public readonly transcriptBucket: s3.Bucket;

  constructor(scope: Construct, props: AirlockStorageProps) {
    const { removalPolicy } = props;
    const retain = removalPolicy === RemovalPolicy.RETAIN || removalPolicy === RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE;
    const transcriptDays = props.transcriptRetentionDays;

    this.key = new kms.Key(scope, 'Key', {
      description: `Airlock (${Stack.of(scope).stackName}): tables, transcripts, topics, master secret`,
      enableKeyRotation: true,
      removalPolicy,
    });

    this.secret = new secretsmanager.Secret(scope, 'MasterSecret', {
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

    const tableProps: Partial<dynamodb.TableProps> = {
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: retain,
      timeToLiveAttribute: 'ttl',
      removalPolicy,
    };
    this.stateTable = mirrorTable(scope, 'StateTable', stateTableDefinition('state'), tableProps);
    this.recordsTable = mirrorTable(scope, 'RecordsTable', recordsTableDefinition('records'), tableProps);

    if (props.serverAccessLogs ?? true) {
      this.accessLogsBucket = new s3.Bucket(scope, 'AccessLogsBucket', {
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
    this.transcriptBucket = new s3.Bucket(scope, 'TranscriptBucket', {
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
        "Server access logs were turned off (serverAccessLogs: false). Only Airlock's proxy (PutObject) and admin (GetObject) functions touch this bucket, and every request that produced a transcript is recorded in the records table; enable CloudTrail S3 data events for object-level auditing.",
      );
    }
  }

  /** Read and/or item writes on the state table. */
  public grantState(fn: lambda.IFunction, access: TableAccess): void {
    this.#grantTable(fn, this.stateTable, 'State', access);
  }

  /** Read and/or item writes on the records table. */
  public grantRecords(fn: lambda.IFunction, access: TableAccess): void {
    this.#grantTable(fn, this.recordsTable, 'Records', access);
  }

  /** `POST /v1/audit/repair` finds records whose transcript was spooled into the record during an S3 outage. */
  public grantRecordsRepairScan(fn: lambda.IFunction): void {
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'RecordsRepairScan', actions: ['dynamodb:Scan'], resources: [this.recordsTable.tableArn] }));
  }

  /**
   * `airlock audit show`: GetObject; ListBucket so that a missing transcript is NoSuchKey, not
   * AccessDenied. `audit repair` writes a spooled transcript once (PutObject, If-None-Match).
   */
  public grantReadTranscripts(fn: lambda.IFunction): void {
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadTranscripts', actions: ['s3:GetObject', 's3:PutObject'], resources: [this.transcriptBucket.arnForObjects('*')] }));
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ListTranscripts', actions: ['s3:ListBucket'], resources: [this.transcriptBucket.bucketArn] }));
  }

  /** The approval page reads the preview the proxy stored when it held the request (previews/{approvalId}.json). */
  public grantReadPreviews(fn: lambda.IFunction): void {
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadPreviews', actions: ['s3:GetObject'], resources: [this.transcriptBucket.arnForObjects('previews/*')] }));
  }

  /** The proxy writes each transcript once (If-None-Match: *). */
  public grantWriteTranscripts(fn: lambda.IFunction): void {
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'WriteTranscripts', actions: ['s3:PutObject'], resources: [this.transcriptBucket.arnForObjects('*')] }));
  }

  // Item-level DynamoDB actions only, no DeleteItem/BatchWriteItem/Scan anywhere:
  // Airlock changes state with conditional single-item writes and never deletes
  // (test/infra checks that every SDK command in lambdas/ is covered).
  #grantTable(fn: lambda.IFunction, table: dynamodb.Table, sid: string, access: TableAccess): void {
    if (access.read) {
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: `${sid}Read`, actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'], resources: [table.tableArn] }));
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: `${sid}Query`, actions: ['dynamodb:Query'], resources: [table.tableArn, `${table.tableArn}/index/*`] }));
    }
    if (access.write?.length) fn.addToRolePolicy(new iam.PolicyStatement({ sid: `${sid}Write`, actions: access.write, resources: [table.tableArn] }));
    // Both tables are encrypted with the key: items are decrypted on read and encrypted on write.
    this.key.grantEncryptDecrypt(fn);
  }
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
