// The seven functions: one Node.js 24 function per entry in lambdas/handlers, each with
// its own role (no AWS managed policy) and its own log group. What each may do beyond
// writing its logs is granted in airlock.ts.
// Like storage.ts, it adds to `scope` directly so logical ids stay as they were.
import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { ENV } from '../lambdas/runtime/aws-config.ts';
import type { ProxyNetworking } from './airlock-props.ts';
import { FUNCTION_NAMES, FUNCTION_NODE_OPTIONS, functionCode, type AirlockFunctionName } from './bundling.ts';
import { acknowledge } from './nag.ts';

const DEFAULT_MEMORY: Record<AirlockFunctionName, number> = {
  health: 256,
  tokens: 512,
  access: 512,
  admin: 512,
  approvals: 512,
  proxy: 1024,
  workflow: 512,
};

const DEFAULT_TIMEOUT_SECONDS: Record<Exclude<AirlockFunctionName, 'proxy'>, number> = {
  health: 5,
  tokens: 15,
  access: 15,
  approvals: 15,
  // Buffered API Gateway integrations end at 29 s anyway.
  admin: 29,
  workflow: 30,
};

const DESCRIPTIONS: Record<AirlockFunctionName, string> = {
  health: 'Airlock: GET /healthz',
  tokens: 'Airlock: POST /v1/tokens (agent key or IAM -> Airlock token)',
  access: 'Airlock: access requests (JIT windows) and approval status for agents',
  admin: 'Airlock: admin API (agents, connections, revocation, audit)',
  approvals: 'Airlock: approval pages and decisions (signed links)',
  proxy: 'Airlock: /k8s proxy and /v1/exec (token -> window -> scope -> approval -> record -> forward), response streaming',
  workflow: 'Airlock: tasks of the access-window and approval state machines',
};

export interface AirlockFunctionsProps {
  /** Airlock's own settings (tables, bucket, URL, ...), for every function but health. */
  readonly airlockEnvironment: Record<string, string>;
  /** @default 'INFO' */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly tracing: boolean;
  /** @default - health 256, proxy 1024, the others 512 */
  readonly memorySize?: Partial<Record<AirlockFunctionName, number>>;
  readonly proxyTimeout: Duration;
  /** @default - not in a VPC */
  readonly proxyNetworking?: ProxyNetworking;
  /** @default - none */
  readonly eksExternalId?: string;
}

/** Makes the functions, by name. */
export function createFunctions(scope: Construct, props: AirlockFunctionsProps): Record<AirlockFunctionName, lambda.Function> {
  const { logRetention, removalPolicy, tracing, airlockEnvironment } = props;
  const commonEnvironment: Record<string, string> = {
    POWERTOOLS_SERVICE_NAME: 'airlock',
    POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
    NODE_OPTIONS: FUNCTION_NODE_OPTIONS,
  };

  const functions = {} as Record<AirlockFunctionName, lambda.Function>;
  for (const name of FUNCTION_NAMES) {
    const title = name[0]!.toUpperCase() + name.slice(1);
    const logGroup = new logs.LogGroup(scope, `${title}Logs`, { retention: logRetention, removalPolicy });
    // Own role, no AWS managed policy: logs only to its own log group, plus the grants below.
    const role = new iam.Role(scope, `${title}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Airlock ${name} function`,
    });
    logGroup.grantWrite(role);
    const environment = {
      ...commonEnvironment,
      ...(name === 'health' ? {} : airlockEnvironment),
      ...(name === 'proxy' && props.eksExternalId ? { [ENV.eksExternalId]: props.eksExternalId } : {}),
    };
    const networking = name === 'proxy' ? props.proxyNetworking : undefined;
    functions[name] = new lambda.Function(scope, `${title}Function`, {
      description: DESCRIPTIONS[name],
      code: functionCode(name),
      handler: 'index.handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize?.[name] ?? DEFAULT_MEMORY[name],
      timeout: name === 'proxy' ? props.proxyTimeout : Duration.seconds(DEFAULT_TIMEOUT_SECONDS[name]),
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: tracing ? lambda.Tracing.ACTIVE : lambda.Tracing.DISABLED,
      environment,
      ...(networking ? { vpc: networking.vpc, vpcSubnets: networking.subnets, securityGroups: networking.securityGroups } : {}),
    });
  }
  if (props.proxyNetworking) {
    acknowledge(
      functions.proxy.role!,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
      'Added by Lambda for a function in a VPC (proxyNetworking): the ENI actions it holds (ec2:CreateNetworkInterface, ...) support no resource-level scoping; AWS maintains it for exactly this purpose.',
    );
  }
  return functions;
}
