// Other shapes of the construct: the bare minimum, and every optional feature
// switched the other way. Each must still pass cdk-nag with no finding left.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../lambdas/routes.ts';
import { Airlock, type AirlockProps } from '../../infra/airlock.ts';
import { routeExecuteApiResource } from '../../infra/api.ts';
import { checkDefinition } from '../../infra/workflows.ts';
import { cdkJsonContext, formatViolations, readViolations } from './support.ts';

function synthConstruct(props: AirlockProps, configure?: (airlock: Airlock) => void, more?: (stack: Stack) => Partial<AirlockProps>) {
  const outdir = mkdtempSync(join(tmpdir(), 'airlock-variant-'));
  const app = new App({ outdir, context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Variant', { env: { account: '111122223333', region: 'eu-west-1' } });
  const airlock = new Airlock(stack, 'Airlock', { ...props, ...more?.(stack) });
  configure?.(airlock);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  let error: unknown;
  try {
    app.synth();
  } catch (caught) {
    error = caught;
  }
  const template = Template.fromJSON(JSON.parse(readFileSync(join(outdir, 'Variant.template.json'), 'utf8')) as Record<string, unknown>);
  return { stack, airlock, template, violations: readViolations(outdir), error };
}

describe('a bare Airlock (no approvers, agents, admins or alarms)', () => {
  let synth: ReturnType<typeof synthConstruct>;
  beforeAll(() => {
    synth = synthConstruct({});
  }, 120_000);

  it('passes cdk-nag', () => {
    expect(synth.violations, formatViolations(synth.violations)).toEqual([]);
  });

  it('closes IAM sign-in for agents entirely and leaves admin routes to same-account IAM', () => {
    const api = synth.template.findResources('AWS::ApiGateway::RestApi');
    const policy = Object.values(api)[0]!.Properties.Policy as { Statement: { Sid: string; Effect: string; Resource: string[]; Condition?: unknown }[] };
    const closed = policy.Statement.find((statement) => statement.Sid === 'IamAgentSignInClosed')!;
    expect(closed.Effect).toBe('Deny');
    expect(closed.Condition).toBeUndefined();
    expect([...closed.Resource].sort()).toEqual(
      ROUTES.filter((route) => route.auth === 'agent-iam')
        .map(routeExecuteApiResource)
        .sort(),
    );
    expect(policy.Statement.map((statement) => statement.Sid)).toEqual(['PublicRoutesAuthenticatedByTheFunctions', 'IamAgentSignInClosed']);
    expect(synth.airlock.node.metadata.some((entry) => entry.type === 'aws:cdk:info' && /adminPrincipalArns is empty/.test(String(entry.data)))).toBe(true);
  });

  it('creates no subscriptions, no alarm topic, no proxy AssumeRole permission', () => {
    synth.template.resourceCountIs('AWS::SNS::Subscription', 0);
    synth.template.resourceCountIs('AWS::SNS::Topic', 1);
    expect(JSON.stringify(synth.template.findResources('AWS::IAM::Policy'))).not.toContain('sts:');
  });
});

describe('every option the other way', () => {
  let synth: ReturnType<typeof synthConstruct>;
  beforeAll(() => {
    synth = synthConstruct(
      {
        serverAccessLogs: false,
        tracing: false,
        webAclArn: 'arn:aws:wafv2:eu-west-1:111122223333:regional/webacl/airlock/abc',
        apiGatewayCloudWatchRole: false,
        eksExternalId: 'airlock-external-id',
        removalPolicy: RemovalPolicy.DESTROY,
        objectLock: { mode: 'COMPLIANCE', days: 10 },
        transcriptRetentionDays: 10,
      },
      (airlock) => airlock.addEksConnection('staging', { clusterName: 'staging', createAccessEntry: false }),
    );
  }, 120_000);

  it('passes cdk-nag', () => {
    expect(synth.violations, formatViolations(synth.violations)).toEqual([]);
  });

  it('associates the WAF web ACL, skips the account role, tracing and the access-log bucket', () => {
    synth.template.resourceCountIs('AWS::WAFv2::WebACLAssociation', 1);
    synth.template.resourceCountIs('AWS::ApiGateway::Account', 0);
    synth.template.resourceCountIs('AWS::S3::Bucket', 1);
    synth.template.resourceCountIs('AWS::EKS::AccessEntry', 0);
    for (const fn of Object.values(synth.template.findResources('AWS::Lambda::Function'))) expect(fn.Properties.TracingConfig).toBeUndefined();
  });

  it('DESTROY turns deletion protection off', () => {
    for (const table of Object.values(synth.template.findResources('AWS::DynamoDB::Table'))) {
      expect(table.Properties.DeletionProtectionEnabled).toBe(false);
      expect(table.DeletionPolicy).toBe('Delete');
    }
  });

  it('requires the external id in the connection role trust policy and passes it to the proxy only', () => {
    const roles = synth.template.findResources('AWS::IAM::Role');
    const connection = Object.values(roles).find((role) => String(role.Properties.Description).includes('cluster staging'))!;
    const assume = (connection.Properties.AssumeRolePolicyDocument.Statement as { Action: string; Condition: unknown }[]).find((statement) => statement.Action === 'sts:AssumeRole')!;
    expect(assume.Condition).toEqual({ StringLike: { 'sts:SourceIdentity': 'airlock-*' }, StringEquals: { 'sts:ExternalId': 'airlock-external-id' } });
    const withId = Object.values(synth.template.findResources('AWS::Lambda::Function')).filter((fn) => fn.Properties.Environment.Variables.AIRLOCK_EKS_EXTERNAL_ID);
    expect(withId.map((fn) => String(fn.Properties.Description))).toEqual([expect.stringContaining('/k8s proxy')]);
  });

  it('uses COMPLIANCE Object Lock', () => {
    synth.template.hasResourceProperties('AWS::S3::Bucket', { ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 10 } } } });
  });

  it('a proxy in a VPC passes cdk-nag too', () => {
    const inVpc = synthConstruct({}, undefined, (stack) => ({
      proxyNetworking: {
        vpc: ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
          vpcId: 'vpc-0123456789abcdef0',
          availabilityZones: ['eu-west-1a'],
          privateSubnetIds: ['subnet-0123456789abcdef0'],
          privateSubnetRouteTableIds: ['rtb-0123456789abcdef0'],
        }),
      },
    }));
    expect(inVpc.violations, formatViolations(inVpc.violations)).toEqual([]);
    const proxies = Object.values(inVpc.template.findResources('AWS::Lambda::Function')).filter((fn) => fn.Properties.VpcConfig);
    expect(proxies.length).toBe(1);
    expect(String(proxies[0]!.Properties.Description)).toContain('/k8s proxy');
  });
});

describe('refused at synth', () => {
  const attempt = (props: AirlockProps) => () => new Airlock(new Stack(new App(), 'S'), 'Airlock', props);

  it('invalid props, each named', () => {
    expect(attempt({ approverEmails: ['not-an-email'] })).toThrow(/approverEmails\[0\]: not an email address/);
    expect(attempt({ approverEmails: ['a@x.io', 'A@x.io'] })).toThrow(/approverEmails\[1\]: listed twice/);
    expect(attempt({ connectionRoleArns: ['arn:aws:iam::111122223333:role/*'] })).toThrow(/connectionRoleArns\[0\]: not an exact IAM role ARN/);
    expect(attempt({ agentPrincipalArns: ['alice'] })).toThrow(/agentPrincipalArns\[0\]/);
    expect(attempt({ objectLock: { mode: 'GOVERNANCE', days: 500 } })).toThrow(/objectLock\.days/);
    expect(attempt({ memorySize: { proxi: 512 } as never })).toThrow(/memorySize\.proxi: no such function/);
  });

  it('a Kubernetes group in system: or an invalid cluster name', () => {
    const airlock = new Airlock(new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'S'), 'Airlock', {});
    expect(() => airlock.addEksConnection('a', { clusterName: 'prod', kubernetesGroups: ['system:masters'] })).toThrow(/system:/);
    expect(() => airlock.addEksConnection('b', { clusterName: 'bad name' })).toThrow(/invalid cluster name/);
  });

  it('an ASL file with an unknown placeholder or a Task that is not the workflow function', () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-asl-'));
    const write = (name: string, definition: unknown) => {
      const file = join(dir, name);
      writeFileSync(file, JSON.stringify(definition));
      return file;
    };
    const task = (resource: string, parameters?: unknown) => ({ StartAt: 'T', States: { T: { Type: 'Task', Resource: resource, ...(parameters ? { Parameters: parameters } : {}), End: true } } });
    expect(() => checkDefinition(write('a.json', task('arn:aws:states:::lambda:invoke', { FunctionName: '${OtherArn}' })))).toThrow(/unknown definition substitution/);
    expect(() => checkDefinition(write('b.json', task('arn:aws:states:::sns:publish', { TopicArn: 'x' })))).toThrow(/does not invoke/);
    expect(() => checkDefinition(write('c.json', { StartAt: 'P', States: { P: { Type: 'Parallel', Branches: [task('arn:aws:states:::dynamodb:putItem')], End: true } } }))).toThrow(/P\/T/);
    expect(checkDefinition(write('d.json', task('arn:aws:states:::lambda:invoke', { FunctionName: '${WorkflowFunctionArn}' })))).toEqual({ placeholders: ['WorkflowFunctionArn'], tasks: 1 });
  });
});

describe('the scheduled OCSF export to Security Lake', () => {
  let synth: ReturnType<typeof synthConstruct>;
  beforeAll(() => {
    synth = synthConstruct({
      securityLakeExport: {
        bucketName: 'aws-security-data-lake-eu-west-1-abc',
        prefix: 'ext/airlock/1.0/',
        providerRoleArn: 'arn:aws:iam::111122223333:role/AmazonSecurityLakeCustomDataGlue-airlock',
        externalId: 'airlock-lake',
        period: Duration.minutes(30),
      },
    });
  }, 120_000);

  it('passes cdk-nag', () => {
    expect(synth.violations, formatViolations(synth.violations)).toEqual([]);
  });

  it('runs on its schedule, reads the records by day and only assumes the provider role', () => {
    synth.template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(30 minutes)' });
    const exporter = Object.entries(synth.template.findResources('AWS::Lambda::Function')).find(([id]) => id.includes('SecurityLakeExport'))![1];
    expect(exporter.Properties.Environment.Variables).toMatchObject({
      AIRLOCK_SECURITY_LAKE_BUCKET: 'aws-security-data-lake-eu-west-1-abc',
      AIRLOCK_SECURITY_LAKE_PREFIX: 'ext/airlock/1.0/',
      AIRLOCK_SECURITY_LAKE_PERIOD_MINUTES: '30',
      AIRLOCK_SECURITY_LAKE_EXTERNAL_ID: 'airlock-lake',
    });
    const policy = Object.entries(synth.template.findResources('AWS::IAM::Policy')).find(([id]) => id.includes('SecurityLakeExportRole'))![1];
    const actions = (policy.Properties.PolicyDocument.Statement as { Action: string | string[] }[]).flatMap((statement) => statement.Action);
    expect(actions).toContain('dynamodb:Query');
    expect(actions).toContain('sts:AssumeRole');
    expect(actions.filter((action) => /^(dynamodb:(Put|Update|Delete)|s3:)/.test(action))).toEqual([]);
  });

  it('refuses a period outside 5 min to 24 h', () => {
    expect(() => synthConstruct({ securityLakeExport: { bucketName: 'lake-bucket', prefix: 'ext/airlock/', period: Duration.minutes(2) } })).toThrow(/securityLakeExport.period/);
  });
});
