// The security properties of the synthesized stack (one synth, bundles
// included), and the cdk-nag gate: zero unacknowledged AwsSolutions findings.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import type { CfnStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import { recordsTableDefinition, stateTableDefinition } from '../../lambdas/adapters/dynamodb/tables.ts';
import { ROUTES } from '../../lambdas/routes.ts';
import { ENV } from '../../lambdas/runtime/aws-config.ts';
import { EKS_USERNAME_TEMPLATE, SESSION_TAG_KEYS } from '../../infra/airlock.ts';
import { routeExecuteApiResource } from '../../infra/api.ts';
import { checkDefinition } from '../../infra/workflows.ts';
import { FUNCTION_NAMES, PROJECT_ROOT, type AirlockFunctionName } from '../../infra/bundling.ts';
import { TEST_CONFIG, actionsOf, asArray, formatViolations, logicalId, resourcesOfType, roleStatements, synthesize, type Statement, type Synthesized } from './support.ts';

let synth: Synthesized;
let ids: {
  key: string;
  stateTable: string;
  recordsTable: string;
  bucket: string;
  topic: string;
  secret: string;
  api: string;
  proxyRole: string;
  connectionRole: string;
  functions: Record<AirlockFunctionName, string>;
  roles: Record<AirlockFunctionName, string>;
};

beforeAll(() => {
  synth = synthesize();
  const airlock = synth.stack.airlock;
  const functions = {} as Record<AirlockFunctionName, string>;
  const roles = {} as Record<AirlockFunctionName, string>;
  for (const name of FUNCTION_NAMES) {
    functions[name] = logicalId(synth, airlock.functions[name]);
    roles[name] = logicalId(synth, airlock.functions[name].role! as never);
  }
  ids = {
    key: logicalId(synth, airlock.key),
    stateTable: logicalId(synth, airlock.stateTable),
    recordsTable: logicalId(synth, airlock.recordsTable),
    bucket: logicalId(synth, airlock.transcriptBucket),
    topic: logicalId(synth, airlock.approvalTopic),
    secret: logicalId(synth, airlock.secret),
    api: logicalId(synth, airlock.api),
    proxyRole: logicalId(synth, airlock.proxyRole),
    connectionRole: logicalId(synth, airlock.connectionRoles[0]!),
    functions,
    roles,
  };
}, 120_000);

const getAtt = (id: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [id, attribute] });

describe('cdk-nag (AwsSolutions)', () => {
  it('leaves zero unacknowledged findings, errors or warnings', () => {
    expect(synth.error?.message ?? '', 'synth failed').toBe('');
    expect(synth.violations, formatViolations(synth.violations)).toEqual([]);
  });
});

describe('encryption at rest: one customer-managed key, rotated', () => {
  it('rotates the key and retains it', () => {
    synth.template.hasResource('AWS::KMS::Key', { Properties: { EnableKeyRotation: true }, DeletionPolicy: 'Retain' });
  });

  it('encrypts both tables with the key', () => {
    for (const table of [ids.stateTable, ids.recordsTable]) {
      expect(synth.json.Resources[table]!.Properties!.SSESpecification).toEqual({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: getAtt(ids.key) });
    }
  });

  it('encrypts the transcript bucket with the key (SSE-KMS, bucket key)', () => {
    expect(synth.json.Resources[ids.bucket]!.Properties!.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: getAtt(ids.key) } }],
    });
  });

  it('encrypts every SNS topic and the master secret with the key', () => {
    const topics = resourcesOfType(synth, 'AWS::SNS::Topic');
    expect(topics.length).toBe(2); // approvals + alarms
    for (const [, topic] of topics) expect(topic.Properties!.KmsMasterKeyId).toEqual(getAtt(ids.key));
    synth.template.hasResourceProperties('AWS::SecretsManager::Secret', {
      KmsKeyId: getAtt(ids.key),
      GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true },
    });
  });
});

describe('DynamoDB tables', () => {
  it.each([
    ['state', () => ids.stateTable, stateTableDefinition('x')],
    ['records', () => ids.recordsTable, recordsTableDefinition('x')],
  ] as const)('%s table mirrors lambdas/adapters/dynamodb.ts exactly', (_name, id, definition) => {
    const table = synth.json.Resources[id()]!.Properties!;
    const sortByName = <T extends { AttributeName?: string; IndexName?: string }>(items: T[]) =>
      [...items].sort((a, b) => String(a.AttributeName ?? a.IndexName).localeCompare(String(b.AttributeName ?? b.IndexName)));
    expect(table.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.KeySchema).toEqual(definition.KeySchema);
    expect(sortByName(table.AttributeDefinitions as never[])).toEqual(sortByName(definition.AttributeDefinitions as never[]));
    expect(sortByName(table.GlobalSecondaryIndexes as never[])).toEqual(sortByName(definition.GlobalSecondaryIndexes as never[]));
  });

  it('has PITR, deletion protection, TTL on `ttl`, and is retained', () => {
    for (const id of [ids.stateTable, ids.recordsTable]) {
      const table = synth.json.Resources[id]!;
      expect(table.Properties!.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(table.Properties!.DeletionProtectionEnabled).toBe(true);
      expect(table.Properties!.TimeToLiveSpecification).toEqual({ AttributeName: 'ttl', Enabled: true });
      expect(table.DeletionPolicy).toBe('Retain');
    }
  });
});

describe('transcript bucket', () => {
  it('blocks all public access, owns its objects, is versioned and retained', () => {
    const bucket = synth.json.Resources[ids.bucket]!;
    expect(bucket.Properties!.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(bucket.Properties!.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(bucket.Properties!.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
    expect(bucket.DeletionPolicy).toBe('Retain');
  });

  it('denies every request that is not TLS (≥ 1.2), on the bucket and its objects', () => {
    const [, policy] = resourcesOfType(synth, 'AWS::S3::BucketPolicy').find(([, resource]) => JSON.stringify(resource.Properties!.Bucket) === JSON.stringify({ Ref: ids.bucket }))!;
    const statements = (policy.Properties!.PolicyDocument as { Statement: Statement[] }).Statement;
    const resources = [getAtt(ids.bucket), { 'Fn::Join': ['', [getAtt(ids.bucket), '/*']] }];
    expect(statements).toContainEqual({ Action: 's3:*', Effect: 'Deny', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } }, Resource: resources });
    expect(statements).toContainEqual({ Action: 's3:*', Effect: 'Deny', Principal: { AWS: '*' }, Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } }, Resource: resources });
    expect(statements.filter((statement) => statement.Effect === 'Allow')).toEqual([]);
  });

  it('expires transcripts after the configured days, with Object Lock as configured, and logs access', () => {
    const bucket = synth.json.Resources[ids.bucket]!.Properties!;
    expect(bucket.LifecycleConfiguration).toEqual({
      Rules: expect.arrayContaining([expect.objectContaining({ Id: 'retention', ExpirationInDays: TEST_CONFIG.transcriptRetentionDays, Status: 'Enabled' })]),
    });
    expect(bucket.ObjectLockEnabled).toBe(true);
    expect(bucket.ObjectLockConfiguration).toEqual({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 30 } } });
    expect(bucket.LoggingConfiguration).toEqual({ DestinationBucketName: { Ref: logicalId(synth, synth.stack.airlock.accessLogsBucket!) }, LogFilePrefix: 'transcripts/' });
  });
});

describe('approval topic', () => {
  it('has one email subscription per approver, filtered on the approver attribute', () => {
    for (const email of TEST_CONFIG.approverEmails) {
      synth.template.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'email',
        Endpoint: email,
        TopicArn: { Ref: ids.topic },
        FilterPolicy: { approver: [email] },
      });
    }
    const subscriptions = resourcesOfType(synth, 'AWS::SNS::Subscription').filter(([, resource]) => JSON.stringify(resource.Properties!.TopicArn) === JSON.stringify({ Ref: ids.topic }));
    expect(subscriptions.length).toBe(TEST_CONFIG.approverEmails.length);
  });

  it('refuses publishing without TLS', () => {
    synth.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: ids.topic }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });
});

describe('functions', () => {
  it('are exactly the seven, all nodejs24.x on arm64 (no other Lambda in the stack)', () => {
    const functions = resourcesOfType(synth, 'AWS::Lambda::Function');
    expect(functions.map(([id]) => id).sort()).toEqual(Object.values(ids.functions).sort());
    for (const [, fn] of functions) {
      expect(fn.Properties!.Runtime).toBe('nodejs24.x');
      expect(fn.Properties!.Architectures).toEqual(['arm64']);
      expect(fn.Properties!.Handler).toBe('index.handler');
    }
  });

  it('each logs to its own log group with retention (1 year by default), in JSON', () => {
    const groups = new Set<string>();
    for (const name of FUNCTION_NAMES) {
      const config = synth.json.Resources[ids.functions[name]]!.Properties!.LoggingConfig as { LogGroup: { Ref: string }; LogFormat: string };
      expect(config.LogFormat).toBe('JSON');
      const group = synth.json.Resources[config.LogGroup.Ref]!;
      expect(group.Type).toBe('AWS::Logs::LogGroup');
      expect(group.Properties!.RetentionInDays).toBe(365);
      groups.add(config.LogGroup.Ref);
    }
    expect(groups.size).toBe(FUNCTION_NAMES.length);
    for (const [, group] of resourcesOfType(synth, 'AWS::Logs::LogGroup')) expect(group.Properties!.RetentionInDays).toBe(365);
  });

  it('the proxy may run 15 minutes (watch, logs -f); the buffered ones stay short', () => {
    for (const name of FUNCTION_NAMES) {
      const timeout = synth.json.Resources[ids.functions[name]]!.Properties!.Timeout as number;
      if (name === 'proxy') expect(timeout).toBe(900);
      else expect(timeout).toBeLessThanOrEqual(30);
    }
  });

  it('get the environment the handlers read (lambdas/runtime/aws-config.ts ENV)', () => {
    const window = synth.stack.airlock.windowStateMachine.node.defaultChild as CfnStateMachine;
    const approval = synth.stack.airlock.approvalStateMachine.node.defaultChild as CfnStateMachine;
    for (const name of FUNCTION_NAMES) {
      const variables = (synth.json.Resources[ids.functions[name]]!.Properties!.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(variables.POWERTOOLS_SERVICE_NAME).toBe('airlock');
      expect(variables.POWERTOOLS_LOG_LEVEL).toBe('INFO');
      if (name === 'health') {
        expect(Object.keys(variables).filter((key) => key.startsWith('AIRLOCK_'))).toEqual([]);
        continue;
      }
      expect(variables[ENV.stateTable]).toEqual({ Ref: ids.stateTable });
      expect(variables[ENV.recordsTable]).toEqual({ Ref: ids.recordsTable });
      expect(variables[ENV.transcriptBucket]).toEqual({ Ref: ids.bucket });
      expect(variables[ENV.secretArn]).toEqual({ Ref: ids.secret });
      expect(variables[ENV.approvalTopicArn]).toEqual({ Ref: ids.topic });
      expect(variables[ENV.recordRetentionDays]).toBe(String(TEST_CONFIG.recordRetentionDays));
      expect(variables[ENV.publicUrl]).toEqual({ 'Fn::Join': ['', ['https://', { Ref: ids.api }, '.execute-api.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/prod']] });
      expect(JSON.stringify(variables[ENV.windowStateMachineArn])).toContain(`:stateMachine:${window.stateMachineName}`);
      expect(JSON.stringify(variables[ENV.approvalStateMachineArn])).toContain(`:stateMachine:${approval.stateMachineName}`);
    }
  });
});

describe('least privilege per function', () => {
  const allow = (name: AirlockFunctionName) => actionsOf(roleStatements(synth, ids.roles[name]));

  it('health can only write its own logs and traces', () => {
    expect([...allow('health')].sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
    const logStatement = roleStatements(synth, ids.roles.health).find((statement) => asArray(statement.Action).includes('logs:PutLogEvents'))!;
    expect(logStatement.Resource).toEqual(getAtt(synth.stack.getLogicalId(synth.stack.airlock.functions.health.logGroup.node.defaultChild as never)));
  });

  it("no role uses an AWS managed policy except API Gateway's account logging role", () => {
    for (const [id, role] of resourcesOfType(synth, 'AWS::IAM::Role')) {
      const managed = asArray(role.Properties!.ManagedPolicyArns as unknown[]);
      if (id.includes('CloudWatchRole')) expect(JSON.stringify(managed)).toContain('AmazonAPIGatewayPushToCloudWatchLogs');
      else expect(managed, id).toEqual([]);
    }
  });

  it('grants each function only what its concern needs', () => {
    const expected: Record<AirlockFunctionName, { has: string[]; lacks: string[] }> = {
      health: { has: [], lacks: ['dynamodb:GetItem', 'secretsmanager:GetSecretValue'] },
      tokens: {
        has: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'secretsmanager:GetSecretValue'],
        lacks: ['dynamodb:UpdateItem', 'states:StartExecution', 's3:PutObject', 'sns:Publish'],
      },
      access: {
        has: ['dynamodb:UpdateItem', 'states:StartExecution', 'states:StopExecution', 'secretsmanager:GetSecretValue'],
        lacks: ['s3:PutObject', 's3:GetObject', 'sns:Publish', 'states:SendTaskSuccess'],
      },
      admin: { has: ['s3:GetObject', 's3:ListBucket', 'states:StopExecution', 'dynamodb:Query'], lacks: ['sns:Publish', 'states:StartExecution', 'states:SendTaskSuccess'] },
      approvals: {
        has: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:StopExecution', 'secretsmanager:GetSecretValue'],
        lacks: ['states:StartExecution', 's3:PutObject', 'sns:Publish'],
      },
      proxy: { has: ['s3:PutObject', 'states:StartExecution', 'sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity', 'dynamodb:UpdateItem'], lacks: ['s3:GetObject', 'sns:Publish'] },
      workflow: {
        has: ['sns:Publish', 'states:SendTaskSuccess', 'states:SendTaskFailure', 'states:StopExecution', 'secretsmanager:GetSecretValue'],
        lacks: ['s3:PutObject', 's3:GetObject', 'states:StartExecution', 'sts:AssumeRole'],
      },
    };
    for (const name of FUNCTION_NAMES) {
      const actions = allow(name);
      for (const action of expected[name].has) expect(actions, `${name} should have ${action}`).toContain(action);
      for (const action of expected[name].lacks) expect(actions, `${name} must not have ${action}`).not.toContain(action);
      // Nothing deletes state or audit data, no wildcard services; only admin scans (records repair).
      if (name !== 'admin') expect(actions, `${name} must not scan`).not.toContain('dynamodb:Scan');
      for (const action of ['dynamodb:DeleteItem', 'dynamodb:BatchWriteItem', 's3:DeleteObject', 's3:DeleteObjectVersion', 'sts:*', 'eks:*', '*']) {
        expect(actions, `${name} must not have ${action}`).not.toContain(action);
      }
      for (const action of actions) expect(action, `${name}: ${action}`).not.toMatch(/^(eks:|iam:|sts:\*|dynamodb:\*|s3:\*|states:\*)/);
    }
  });

  it('records are append-only: only the proxy (completion) and admin (transcript repair) may update a record, nobody may delete one', () => {
    const recordsArn = JSON.stringify(getAtt(ids.recordsTable));
    for (const name of FUNCTION_NAMES) {
      const onRecords = roleStatements(synth, ids.roles[name]).filter((statement) => asArray(statement.Resource).some((resource) => JSON.stringify(resource) === recordsArn));
      const actions = actionsOf(onRecords);
      if (name === 'proxy' || name === 'admin') expect(actions).toContain('dynamodb:UpdateItem');
      else expect(actions).not.toContain('dynamodb:UpdateItem');
      expect(actions).not.toContain('dynamodb:DeleteItem');
      expect(actions).not.toContain('dynamodb:BatchWriteItem');
    }
  });

  it('only the proxy and admin (repair) write transcripts, only admin reads them (approvals: only approval previews)', () => {
    for (const name of FUNCTION_NAMES) {
      const actions = allow(name);
      expect(actions.has('s3:PutObject'), name).toBe(name === 'proxy' || name === 'admin');
      expect(actions.has('s3:GetObject'), name).toBe(name === 'admin' || name === 'approvals');
    }
    const approvalsRead = JSON.stringify(roleStatements(synth, ids.roles.approvals));
    expect(approvalsRead).toContain('/previews/*');
  });

  it('covers every AWS SDK command the functions send (lambdas/ scanned for *Command imports)', () => {
    const granted = new Set(FUNCTION_NAMES.flatMap((name) => [...allow(name)]));
    const documentCommands: Record<string, string> = {
      Get: 'GetItem',
      Put: 'PutItem',
      Update: 'UpdateItem',
      Delete: 'DeleteItem',
      Query: 'Query',
      Scan: 'Scan',
      BatchGet: 'BatchGetItem',
      BatchWrite: 'BatchWriteItem',
      TransactWrite: 'TransactWriteItems',
      TransactGet: 'TransactGetItems',
    };
    const prefixes: Record<string, string> = {
      'client-dynamodb': 'dynamodb',
      'lib-dynamodb': 'dynamodb',
      'client-s3': 's3',
      'client-sfn': 'states',
      'client-sns': 'sns',
      'client-sts': 'sts',
      'client-secrets-manager': 'secretsmanager',
    };
    const used = new Map<string, string>();
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? walk(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : []));
    for (const file of walk(join(PROJECT_ROOT, 'lambdas'))) {
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'@aws-sdk\/([a-z0-9-]+)'/g)) {
        const prefix = prefixes[match[2]!];
        if (!prefix) continue;
        for (const raw of match[1]!.split(',')) {
          const name = raw
            .replace(/^\s*type\s+/, '')
            .trim()
            .split(/\s+as\s+/)[0]!;
          const command = /^(\w+)Command$/.exec(name)?.[1];
          if (!command) continue;
          const action = `${prefix}:${match[2] === 'lib-dynamodb' ? (documentCommands[command] ?? command) : command}`;
          used.set(action, file.slice(PROJECT_ROOT.length));
        }
      }
    }
    expect(used.size).toBeGreaterThan(5);
    for (const [action, file] of used) expect(granted, `${action} (used in ${file}) is granted to no function`).toContain(action);
  });
});

describe('the boundary: side doors closed by construction', () => {
  const allIdentityStatements = () =>
    resourcesOfType(synth, 'AWS::IAM::Policy')
      .flatMap(([id, policy]) => (policy.Properties!.PolicyDocument as { Statement: Statement[] }).Statement.map((statement) => ({ id, roles: policy.Properties!.Roles, statement })))
      .concat(
        resourcesOfType(synth, 'AWS::IAM::ManagedPolicy').flatMap(([id, policy]) =>
          (policy.Properties!.PolicyDocument as { Statement: Statement[] }).Statement.map((statement) => ({ id, roles: policy.Properties!.Roles, statement })),
        ),
      );

  it('agent principals appear only in the API resource policy, with execute-api:Invoke on the agent IAM routes only', () => {
    const text = JSON.stringify(synth.json.Resources);
    const api = synth.json.Resources[ids.api]!;
    const policy = api.Properties!.Policy as { Statement: Statement[] };
    for (const arn of TEST_CONFIG.agentPrincipalArns) {
      expect(text.split(arn).length - 1, `${arn} must appear only in the API resource policy`).toBe(JSON.stringify(policy).split(arn).length - 1);
    }
    const agentRoutes = ROUTES.filter((route) => route.auth === 'agent-iam')
      .map(routeExecuteApiResource)
      .sort();
    const mentioning = policy.Statement.filter((statement) => JSON.stringify(statement).includes(TEST_CONFIG.agentPrincipalArns[0]!));
    expect(mentioning.length).toBe(2); // allow listed, deny all others
    for (const statement of mentioning) {
      expect(statement.Action).toBe('execute-api:Invoke');
      expect(asArray(statement.Resource as string[]).sort()).toEqual(agentRoutes);
    }
    expect(mentioning.find((statement) => statement.Effect === 'Allow')!.Condition).toEqual({ ArnLike: { 'aws:PrincipalArn': TEST_CONFIG.agentPrincipalArns } });
    expect(mentioning.find((statement) => statement.Effect === 'Deny')!.Condition).toEqual({ ArnNotLike: { 'aws:PrincipalArn': TEST_CONFIG.agentPrincipalArns } });
    // The resource policy grants nothing but execute-api:Invoke.
    for (const statement of policy.Statement) expect(statement.Action).toBe('execute-api:Invoke');
  });

  it('the public Allow in the resource policy covers no IAM route', () => {
    const policy = synth.json.Resources[ids.api]!.Properties!.Policy as { Statement: Statement[] };
    const publicAllow = policy.Statement.find((statement) => statement.Sid === 'PublicRoutesAuthenticatedByTheFunctions')!;
    const matches = (pattern: string, resource: string) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(resource);
    for (const route of ROUTES.filter((candidate) => candidate.auth === 'agent-iam' || candidate.auth === 'admin')) {
      const concrete = `execute-api:/prod/${route.method === 'ANY' ? 'GET' : route.method}${route.resource.replace(/\{[^}]+\}/g, 'x')}`;
      for (const pattern of asArray(publicAllow.Resource as string[])) expect(matches(pattern, concrete), `${pattern} matches ${concrete}`).toBe(false);
    }
  });

  it('no identity policy anywhere grants eks:* or sts:* (or any eks action), and only the proxy role may touch STS', () => {
    for (const { id, roles, statement } of allIdentityStatements()) {
      for (const action of asArray(statement.Action)) {
        expect(action, id).not.toMatch(/^(eks:|\*$|sts:\*)/);
        if (action.startsWith('sts:')) {
          expect(roles, `${id} grants ${action}`).toEqual([{ Ref: ids.proxyRole }]);
          expect(['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity']).toContain(action);
        }
      }
    }
  });

  it('the proxy may assume exactly the connection roles, by exact ARN', () => {
    const statement = roleStatements(synth, ids.proxyRole).find((candidate) => candidate.Sid === 'AssumeConnectionRoles')!;
    expect(asArray(statement.Action).sort()).toEqual(['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession']);
    expect(asArray(statement.Resource)).toEqual(expect.arrayContaining([...TEST_CONFIG.connectionRoleArns, getAtt(ids.connectionRole)]));
    expect(asArray(statement.Resource).length).toBe(TEST_CONFIG.connectionRoleArns.length + TEST_CONFIG.eksConnections.length);
  });

  it("a connection role trusts only the proxy function's role, requires SourceIdentity airlock-*, limits session tags", () => {
    const role = synth.json.Resources[ids.connectionRole]!.Properties!;
    const trust = (role.AssumeRolePolicyDocument as { Statement: Statement[] }).Statement;
    for (const statement of trust) {
      expect(statement.Effect).toBe('Allow');
      expect(statement.Principal).toEqual({ AWS: getAtt(ids.proxyRole) });
    }
    const byAction = (action: string) => trust.filter((statement) => asArray(statement.Action).includes(action));
    expect(new Set(trust.flatMap((statement) => asArray(statement.Action)))).toEqual(new Set(['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession']));
    for (const action of ['sts:AssumeRole', 'sts:SetSourceIdentity']) {
      for (const statement of byAction(action)) expect(statement.Condition).toEqual({ StringLike: { 'sts:SourceIdentity': 'airlock-*' } });
    }
    for (const statement of byAction('sts:TagSession')) expect(statement.Condition).toEqual({ 'ForAllValues:StringEquals': { 'aws:TagKeys': [...SESSION_TAG_KEYS] } });
  });

  it('a connection role has no permissions of its own (EKS authorizes it through the access entry)', () => {
    const role = synth.json.Resources[ids.connectionRole]!.Properties!;
    expect(role.ManagedPolicyArns).toBeUndefined();
    expect(role.Policies).toBeUndefined();
    expect(roleStatements(synth, ids.connectionRole)).toEqual([]);
  });

  it('creates the EKS access entry with username airlock:{{SessionName}} and the configured groups', () => {
    synth.template.hasResourceProperties('AWS::EKS::AccessEntry', {
      ClusterName: 'prod-cluster',
      PrincipalArn: getAtt(ids.connectionRole),
      Type: 'STANDARD',
      Username: EKS_USERNAME_TEMPLATE,
      KubernetesGroups: ['airlock-agents'],
    });
    expect(EKS_USERNAME_TEMPLATE).toBe('airlock:{{SessionName}}');
  });
});

describe('REST API', () => {
  const methods = () => resourcesOfType(synth, 'AWS::ApiGateway::Method');
  const pathOf = (resourceId: unknown): string => {
    const ref = resourceId as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
    if (ref['Fn::GetAtt']) return '';
    const resource = synth.json.Resources[ref.Ref!]!.Properties!;
    return `${pathOf(resource.ParentId)}/${String(resource.PathPart)}`;
  };

  it("has one method per route of lambdas/routes.ts, with the route's authorization and function", () => {
    const found = methods().map(([, method]) => {
      const props = method.Properties!;
      const uri = JSON.stringify((props.Integration as { Uri: unknown }).Uri);
      const fn = FUNCTION_NAMES.find((name) => uri.includes(ids.functions[name]));
      return `${String(props.HttpMethod)} ${pathOf(props.ResourceId)} ${String(props.AuthorizationType)} ${fn}`;
    });
    const expected = ROUTES.map((route) => `${route.method} ${route.resource} ${route.auth === 'agent-iam' || route.auth === 'admin' ? 'AWS_IAM' : 'NONE'} ${route.function}`);
    expect(found.sort()).toEqual(expected.sort());
  });

  it('streams /k8s, /mcp, /v1/exec (the proxy function) and the root Kubernetes paths through InvokeWithResponseStream for up to 15 minutes; everything else is buffered', () => {
    for (const [, method] of methods()) {
      const props = method.Properties!;
      const integration = props.Integration as { Type: string; ResponseTransferMode?: string; Uri: unknown; TimeoutInMillis?: number };
      const uri = JSON.stringify(integration.Uri);
      expect(integration.Type).toBe('AWS_PROXY');
      if (/^\/(k8s\/|mcp$|v1\/exec$|api(\/|$)|apis(\/|$)|version(\/|$)|openapi(\/|$))/.test(pathOf(props.ResourceId))) {
        expect(integration.ResponseTransferMode).toBe('STREAM');
        expect(uri).toContain('/2021-11-15/functions/');
        expect(uri).toContain('/response-streaming-invocations');
        expect(uri).toContain(ids.functions.proxy);
        expect(integration.TimeoutInMillis).toBe(900_000);
      } else {
        expect(integration.ResponseTransferMode ?? 'BUFFERED').toBe('BUFFERED');
        expect(uri).toContain('/2015-03-31/functions/');
      }
      expect(props.ApiKeyRequired ?? false).toBe(false);
    }
  });

  it('passes bodies through as bytes, is regional, and has no API keys or usage plans', () => {
    const api = synth.json.Resources[ids.api]!.Properties!;
    expect(api.BinaryMediaTypes).toEqual(['*/*']);
    expect(api.EndpointConfiguration).toEqual({ Types: ['REGIONAL'] });
    expect(resourcesOfType(synth, 'AWS::ApiGateway::ApiKey')).toEqual([]);
    expect(resourcesOfType(synth, 'AWS::ApiGateway::UsagePlan')).toEqual([]);
  });

  it('throttles the stage, logs access (JSON) and errors (never bodies), and traces', () => {
    const [, stage] = resourcesOfType(synth, 'AWS::ApiGateway::Stage')[0]!;
    const props = stage.Properties!;
    expect(props.TracingEnabled).toBe(true);
    expect(props.MethodSettings).toEqual([
      { HttpMethod: '*', ResourcePath: '/*', ThrottlingRateLimit: 25, ThrottlingBurstLimit: 50, LoggingLevel: 'ERROR', DataTraceEnabled: false, MetricsEnabled: false },
    ]);
    const access = props.AccessLogSetting as { Format: string; DestinationArn: unknown };
    expect(JSON.parse(access.Format)).toMatchObject({ requestId: '$context.requestId', userArn: '$context.identity.userArn', status: '$context.status' });
    expect(access.Format).not.toMatch(/authorization|header/i);
  });

  it('admin routes are closed to principals other than the listed admins', () => {
    const policy = synth.json.Resources[ids.api]!.Properties!.Policy as { Statement: Statement[] };
    const deny = policy.Statement.find((statement) => statement.Sid === 'NoOtherAdminPrincipals')!;
    expect(deny.Effect).toBe('Deny');
    expect(asArray(deny.Resource as string[]).sort()).toEqual([...new Set(ROUTES.filter((route) => route.auth === 'admin').map(routeExecuteApiResource))].sort());
    expect(deny.Condition).toEqual({ ArnNotLike: { 'aws:PrincipalArn': TEST_CONFIG.adminPrincipalArns } });
  });
});

describe('state machines', () => {
  const machines = () => [synth.stack.airlock.windowStateMachine, synth.stack.airlock.approvalStateMachine];

  it('substitute the workflow function ARN into the ASL files', () => {
    for (const machine of machines()) {
      const props = synth.json.Resources[logicalId(synth, machine)]!.Properties!;
      expect(props.DefinitionSubstitutions).toEqual({ WorkflowFunctionArn: getAtt(ids.functions.workflow) });
      expect(props.StateMachineType).toBe('STANDARD');
      // The definition is the ASL file itself, uploaded as an asset.
      const key = (props.DefinitionS3Location as { Key: string }).Key;
      const asset = readFileSync(join(synth.outdir, `asset.${key}`), 'utf8');
      expect(asset).toContain('${WorkflowFunctionArn}');
      const source = machine === synth.stack.airlock.windowStateMachine ? 'access-window.asl.json' : 'approval.asl.json';
      expect(asset).toBe(readFileSync(join(PROJECT_ROOT, 'state-machines', source), 'utf8'));
    }
  });

  it('ASL files use only ${WorkflowFunctionArn} and every Task invokes it', () => {
    for (const file of ['access-window.asl.json', 'approval.asl.json']) {
      const { placeholders, tasks } = checkDefinition(join(PROJECT_ROOT, 'state-machines', file));
      expect(placeholders).toEqual(['WorkflowFunctionArn']);
      expect(tasks).toBeGreaterThan(0);
    }
  });

  it('log ALL events (without execution data) to a log group with retention, and trace', () => {
    for (const machine of machines()) {
      const props = synth.json.Resources[logicalId(synth, machine)]!.Properties!;
      expect(props.TracingConfiguration).toEqual({ Enabled: true });
      const logging = props.LoggingConfiguration as { Level: string; IncludeExecutionData: boolean; Destinations: { CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [string, string] } } }[] };
      expect(logging.Level).toBe('ALL');
      expect(logging.IncludeExecutionData).toBe(false);
      const group = synth.json.Resources[logging.Destinations[0]!.CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'][0]]!;
      expect(group.Properties!.RetentionInDays).toBe(365);
      expect(String(group.Properties!.LogGroupName)).toMatch(/^\/aws\/vendedlogs\/states\//);
    }
  });

  it('may invoke the workflow function and nothing else', () => {
    for (const machine of machines()) {
      const statements = roleStatements(synth, logicalId(synth, machine.role as never));
      const lambdaStatements = statements.filter((statement) => asArray(statement.Action).some((action) => action.startsWith('lambda:')));
      expect(lambdaStatements).toEqual([{ Sid: 'InvokeWorkflowFunction', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: getAtt(ids.functions.workflow) }]);
      for (const action of actionsOf(statements)) expect(action).toMatch(/^(lambda:InvokeFunction|logs:|xray:)/);
    }
  });
});

describe('alarms', () => {
  it('alarm on errors and throttles of every function, API 5xx, failed and timed-out executions, to the alarm topic', () => {
    const alarms = resourcesOfType(synth, 'AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties!);
    const key = (alarm: Record<string, unknown>) => `${String(alarm.Namespace)}/${String(alarm.MetricName)}`;
    const count = (metric: string) => alarms.filter((alarm) => key(alarm) === metric).length;
    expect(count('AWS/Lambda/Errors')).toBe(FUNCTION_NAMES.length);
    expect(count('AWS/Lambda/Throttles')).toBe(FUNCTION_NAMES.length);
    expect(count('AWS/ApiGateway/5XXError')).toBe(1);
    expect(count('AWS/States/ExecutionsFailed')).toBe(2);
    expect(count('AWS/States/ExecutionsTimedOut')).toBe(2);
    const alarmTopic = logicalId(synth, synth.stack.airlock.alarmTopic as never);
    for (const alarm of alarms) expect(alarm.AlarmActions).toEqual([{ Ref: alarmTopic }]);
    synth.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: TEST_CONFIG.alarmEmail, TopicArn: { Ref: alarmTopic } });
  });
});

describe('outputs', () => {
  it('names the endpoint, the proxy role and each connection role ARN', () => {
    const outputs = Object.keys(synth.json.Outputs ?? {});
    expect(outputs).toEqual(expect.arrayContaining(['ApiUrl', 'ProxyRoleArn', 'ConnectionRoleprod']));
  });
});
