// The REST API: routes from lambdas/routes.ts, each to its function, with the resource
// policy that opens the IAM routes to the listed principals only, stage throttling,
// access logs and API Gateway's own errors in Airlock's error shape.
// Like storage.ts, it adds to `scope` directly so logical ids stay as they were.
import { Annotations, Names, RemovalPolicy, Stack, type Duration } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import type { Construct } from 'constructs';
import { KUBERNETES_HINT, ROUTES, type Route, type RouteAuth } from '../lambdas/routes.ts';
import type { AirlockCustomDomain, ApiThrottling } from './airlock-props.ts';
import type { AirlockFunctionName } from './bundling.ts';
import { acknowledge } from './nag.ts';

/** Stage-less, execute-api shorthand ARN of a route, for the API's own resource policy. */
export function routeExecuteApiResource(route: Route): string {
  const method = route.method === 'ANY' ? '*' : route.method;
  const path = route.resource.replace(/\{[^}]+\}/g, '*');
  return `execute-api:/*/${method}${path}`;
}

/** API Gateway authorization for a route: IAM where API Gateway checks the caller, none where the function does. */
export function authorizationFor(auth: RouteAuth): apigw.AuthorizationType {
  return auth === 'agent-iam' || auth === 'admin' ? apigw.AuthorizationType.IAM : apigw.AuthorizationType.NONE;
}

const PUBLIC_ROUTE_REASON: Record<Exclude<RouteAuth, 'agent-iam' | 'admin'>, string> = {
  none: 'GET /healthz, the OAuth metadata documents (/.well-known/oauth-protected-resource, /.well-known/oauth-authorization-server) and the authorization endpoint they name (which only answers unsupported_response_type) are public by design: they say where to get a token and reveal nothing else.',
  agent:
    'Agent routes authenticate in the function with the agent key (HTTP Basic; SHA-256-hashed keys in DynamoDB, agent must be enabled). IAM-signed agents use the /v1/iam twin of this route, which is AWS_IAM.',
  proxy:
    '/k8s and /mcp authenticate in the function on every request with an Airlock token (Ed25519-signed, ≤ 15 min, audience = connection) and then checks the window, policy and approval; API Gateway authorizers cannot do that per-request state check.',
  approver: 'Approval pages authenticate with an HMAC-signed, expiring, single-use link per approver, verified in the function; approvers have no AWS identity.',
};

export interface AirlockApiProps {
  /** @default - IAM sign-in for agents is closed */
  readonly agentPrincipalArns?: string[];
  /** @default - same-account IAM may administer */
  readonly adminPrincipalArns?: string[];
  readonly stageName: string;
  readonly tracing: boolean;
  /** @default - 50 requests/s, burst 100 */
  readonly throttling?: ApiThrottling;
  /** @default - the execute-api URL */
  readonly customDomain?: AirlockCustomDomain;
  /** @default true */
  readonly apiGatewayCloudWatchRole?: boolean;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

export class AirlockApi {
  public readonly api: apigw.RestApi;
  /** The API's base URL including the stage (or the custom domain), no trailing slash. */
  public readonly url: string;
  readonly #scope: Construct;

  constructor(scope: Construct, props: AirlockApiProps) {
    this.#scope = scope;
    const stack = Stack.of(scope);
    const { logRetention, removalPolicy, stageName, tracing } = props;
    const accessLogs = new logs.LogGroup(scope, 'ApiAccessLogs', { retention: logRetention, removalPolicy });
    const resourcePolicy = apiResourcePolicy(scope, props);
    this.api = new apigw.RestApi(scope, 'Api', {
      restApiName: Names.uniqueResourceName(scope, { maxLength: 128, separator: '-' }),
      description: 'Airlock: the single access boundary for AI agents on Amazon EKS',
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      // Every request body reaches the functions base64-encoded, byte for byte.
      binaryMediaTypes: ['*/*'],
      // The account-level setting outlives the stack (other APIs in the account may rely on it).
      ...((props.apiGatewayCloudWatchRole ?? true) ? { cloudWatchRole: true, cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN } : { cloudWatchRole: false }),
      policy: resourcePolicy,
      ...(props.customDomain
        ? {
            domainName: {
              domainName: props.customDomain.domainName,
              certificate: props.customDomain.certificate,
              endpointType: apigw.EndpointType.REGIONAL,
              securityPolicy: apigw.SecurityPolicy.TLS_1_2,
            },
          }
        : {}),
      deployOptions: {
        stageName,
        tracingEnabled: tracing,
        // Errors only, never request/response bodies (they carry tokens and Kubernetes objects).
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: false,
        throttlingRateLimit: props.throttling?.rateLimit ?? 50,
        throttlingBurstLimit: props.throttling?.burstLimit ?? 100,
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: apigw.AccessLogField.contextRequestId(),
            time: apigw.AccessLogField.contextRequestTime(),
            ip: apigw.AccessLogField.contextIdentitySourceIp(),
            userArn: apigw.AccessLogField.contextIdentityUserArn(),
            method: apigw.AccessLogField.contextHttpMethod(),
            resource: apigw.AccessLogField.contextResourcePath(),
            path: apigw.AccessLogField.contextPath(),
            status: apigw.AccessLogField.contextStatus(),
            responseLength: apigw.AccessLogField.contextResponseLength(),
            latency: apigw.AccessLogField.contextResponseLatency(),
            integrationLatency: apigw.AccessLogField.contextIntegrationLatency(),
            error: apigw.AccessLogField.contextErrorMessage(),
          }),
        ),
      },
    });
    // API Gateway applies a changed resource policy only with a new deployment.
    this.api.latestDeployment?.addToLogicalId({ resourcePolicy });
    this.url = props.customDomain ? `https://${props.customDomain.domainName}` : `https://${this.api.restApiId}.execute-api.${stack.region}.${stack.urlSuffix}/${stageName}`;
  }

  /** One method per route of lambdas/routes.ts, integrated with its function (the proxy's streams its response). */
  public addRoutes(functions: Readonly<Record<AirlockFunctionName, lambda.Function>>, proxyTimeout: Duration): void {
    const validator = this.api.addRequestValidator('PathParameters', { validateRequestParameters: true, validateRequestBody: false });
    acknowledge(
      this.api,
      'AwsSolutions-APIG2',
      'Required path parameters are validated at the edge (PathParameters validator). Bodies are not: with binaryMediaTypes */* they reach the functions as bytes (Kubernetes objects on /k8s, JSON elsewhere), and every JSON body is parsed with a strict schema (unknown fields rejected, size-limited) in the function; a second copy of those schemas as API Gateway models would drift.',
    );
    const integrations = new Map<AirlockFunctionName, apigw.LambdaIntegration>();
    const integrationFor = (route: Route) => {
      let integration = integrations.get(route.function);
      if (!integration) {
        integration = route.streaming
          ? new apigw.LambdaIntegration(functions[route.function], {
              proxy: true,
              // InvokeWithResponseStream: status and headers first, then the body as it arrives (watch, logs -f).
              responseTransferMode: apigw.ResponseTransferMode.STREAM,
              timeout: proxyTimeout,
              allowTestInvoke: false,
            })
          : new apigw.LambdaIntegration(functions[route.function], { proxy: true, allowTestInvoke: false });
        integrations.set(route.function, integration);
      }
      return integration;
    };
    const streaming = ROUTES.filter((route) => route.streaming);
    if (streaming.some((route) => route.function !== 'proxy')) throw new Error('only the proxy function streams its responses');

    for (const route of ROUTES) {
      const resource = this.api.root.resourceForPath(route.resource);
      const parameters = [...route.resource.matchAll(/\{([^}+]+)\+?\}/g)].map((match) => match[1]!);
      const method = resource.addMethod(route.method, integrationFor(route), {
        authorizationType: authorizationFor(route.auth),
        requestValidator: validator,
        requestParameters: Object.fromEntries(parameters.map((name) => [`method.request.path.${name}`, true])),
      });
      if (route.auth !== 'agent-iam' && route.auth !== 'admin') {
        const reason = PUBLIC_ROUTE_REASON[route.auth];
        acknowledge(method, 'AwsSolutions-APIG4', reason);
        acknowledge(method, 'AwsSolutions-COG4', reason);
      } else {
        acknowledge(method, 'AwsSolutions-COG4', 'This route uses AWS_IAM (SigV4) authorization: agents and admins are IAM principals, not Cognito users.');
      }
    }

    // API Gateway's own errors (throttling, IAM refusals, unknown paths) in Airlock's error shape, and as a
    // Kubernetes Status beside it, so that kubectl (`get --raw /metrics`) prints what to do (as local/server.ts).
    const errorBody = {
      'application/json': `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"airlock: $context.error.responseType: ${KUBERNETES_HINT}","details":{"causes":[{"reason":"$context.error.responseType","message":$context.error.messageString}]},"error":{"status":"$context.error.responseType","code":"$context.error.responseType","message":$context.error.messageString}}`,
    };
    this.api.addGatewayResponse('Default4xx', { type: apigw.ResponseType.DEFAULT_4XX, templates: errorBody });
    this.api.addGatewayResponse('Default5xx', { type: apigw.ResponseType.DEFAULT_5XX, templates: errorBody });
  }

  /** Associates the WAF web ACL with the stage, or says why none is needed. */
  public protect(webAclArn: string | undefined): void {
    if (webAclArn) {
      new wafv2.CfnWebACLAssociation(this.#scope, 'WebAcl', { resourceArn: this.api.deploymentStage.stageArn, webAclArn });
    } else {
      acknowledge(
        this.api.deploymentStage,
        'AwsSolutions-APIG3',
        'No WAF web ACL was given (webAclArn). Every route authenticates (IAM, agent key, Airlock token or signed link) and the stage is throttled; pass webAclArn to add IP allow lists or body-size rules.',
      );
    }
  }

  /** The account-level CloudWatch role, when this API made it. */
  public acknowledgeCloudWatchRole(): void {
    const cloudWatchRole = this.api.node.tryFindChild('CloudWatchRole');
    if (cloudWatchRole) {
      acknowledge(
        cloudWatchRole,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        'The account-level role API Gateway uses to write execution logs; AWS maintains this policy for exactly that purpose (logs:* on log groups API Gateway creates).',
      );
    }
  }
}

/**
 * The API's resource policy. Anyone may reach the routes the functions
 * authenticate themselves; the IAM routes are open only to the listed
 * principals (and closed to all others by an explicit deny).
 */
function apiResourcePolicy(scope: Construct, props: Pick<AirlockApiProps, 'agentPrincipalArns' | 'adminPrincipalArns'>): iam.PolicyDocument {
  const resources = (auth: RouteAuth[]) => [...new Set(ROUTES.filter((route) => auth.includes(route.auth)).map(routeExecuteApiResource))];
  const invoke = ['execute-api:Invoke'];
  const anyone = [new iam.AnyPrincipal()];
  const statements: iam.PolicyStatement[] = [
    new iam.PolicyStatement({ sid: 'PublicRoutesAuthenticatedByTheFunctions', principals: anyone, actions: invoke, resources: resources(['none', 'agent', 'proxy', 'approver']) }),
  ];
  const agentRoutes = resources(['agent-iam']);
  const agents = props.agentPrincipalArns ?? [];
  if (agents.length) {
    statements.push(
      new iam.PolicyStatement({ sid: 'AgentPrincipals', principals: anyone, actions: invoke, resources: agentRoutes, conditions: { ArnLike: { 'aws:PrincipalArn': agents } } }),
      new iam.PolicyStatement({
        sid: 'NoOtherAgentPrincipals',
        effect: iam.Effect.DENY,
        principals: anyone,
        actions: invoke,
        resources: agentRoutes,
        conditions: { ArnNotLike: { 'aws:PrincipalArn': agents } },
      }),
    );
  } else {
    statements.push(new iam.PolicyStatement({ sid: 'IamAgentSignInClosed', effect: iam.Effect.DENY, principals: anyone, actions: invoke, resources: agentRoutes }));
  }
  const admins = props.adminPrincipalArns ?? [];
  if (admins.length) {
    const adminRoutes = resources(['admin']);
    statements.push(
      new iam.PolicyStatement({ sid: 'AdminPrincipals', principals: anyone, actions: invoke, resources: adminRoutes, conditions: { ArnLike: { 'aws:PrincipalArn': admins } } }),
      new iam.PolicyStatement({
        sid: 'NoOtherAdminPrincipals',
        effect: iam.Effect.DENY,
        principals: anyone,
        actions: invoke,
        resources: adminRoutes,
        conditions: { ArnNotLike: { 'aws:PrincipalArn': admins } },
      }),
    );
  } else {
    Annotations.of(scope).addInfo('adminPrincipalArns is empty: the admin routes are open to principals of this account whose IAM policies allow execute-api:Invoke on them.');
  }
  return new iam.PolicyDocument({ statements });
}
