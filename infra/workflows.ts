// Workflows: the access-window and approval state machines (state-machines/*.asl.json),
// whose tasks all invoke the workflow function.
//
// The workflow function needs both state machine ARNs (to resume a task token), and the
// state machines need its ARN: AirlockWorkflows fixes the names (and so the ARNs) first,
// grants against those, and makes the state machines once the function exists
// (addStateMachines), so nothing refers to the state machine resources in a cycle.
// Like storage.ts, it adds to `scope` directly so logical ids stay as they were.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArnFormat, Names, Stack, type RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { errorText } from '../lambdas/core/errors.ts';
import { PROJECT_ROOT } from './bundling.ts';
import { acknowledge } from './nag.ts';

const STATE_MACHINE_DIR = join(PROJECT_ROOT, 'state-machines');
const WINDOW_DEFINITION = join(STATE_MACHINE_DIR, 'access-window.asl.json');
const APPROVAL_DEFINITION = join(STATE_MACHINE_DIR, 'approval.asl.json');
/** The one placeholder the ASL files may use. */
const WORKFLOW_PLACEHOLDER = 'WorkflowFunctionArn';
const LAMBDA_TASK_RESOURCES = new Set(['arn:aws:states:::lambda:invoke', 'arn:aws:states:::lambda:invoke.waitForTaskToken']);

/** A state machine known by name and ARN before it exists. */
export interface WorkflowName {
  /** The construct the state machine and its log group are made in. */
  readonly scope: Construct;
  readonly name: string;
  readonly arn: string;
  /** Every execution of it (StopExecution). */
  readonly executionsArn: string;
}

export interface WorkflowStateMachineProps {
  /** The function every Task invokes (`${WorkflowFunctionArn}` in the ASL). */
  readonly workflowFunction: lambda.IFunction;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly tracing: boolean;
}

export class AirlockWorkflows {
  /** state-machines/access-window.asl.json */
  public readonly window: WorkflowName;
  /** state-machines/approval.asl.json */
  public readonly approval: WorkflowName;

  constructor(scope: Construct) {
    const stack = Stack.of(scope);
    const named = (id: string): WorkflowName => {
      const workflowScope = new Construct(scope, id);
      const name = Names.uniqueResourceName(workflowScope, { maxLength: 80, separator: '-' });
      return {
        scope: workflowScope,
        name,
        arn: stack.formatArn({ service: 'states', resource: 'stateMachine', resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
        executionsArn: stack.formatArn({ service: 'states', resource: 'execution', resourceName: `${name}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
      };
    };
    this.window = named('WindowWorkflow');
    this.approval = named('ApprovalWorkflow');
  }

  /** Start access-window workflows (`access request`). */
  public grantStartWindows(fn: lambda.IFunction): void {
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'StartWindows', actions: ['states:StartExecution'], resources: [this.window.arn] }));
  }

  /** Start approval workflows (a held request). */
  public grantStartApprovals(fn: lambda.IFunction): void {
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'StartApprovals', actions: ['states:StartExecution'], resources: [this.approval.arn] }));
  }

  /** Resume a waiting task with its token. */
  public grantResume(fn: lambda.IFunction): void {
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ResumeWorkflows',
        actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'],
        // Evaluated against the state machine the task token belongs to.
        resources: [this.window.arn, this.approval.arn],
      }),
    );
  }

  /** Stop executions of both workflows (revocation, disabling an agent). */
  public grantStopAll(fn: lambda.IFunction): void {
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'StopWorkflows', actions: ['states:StopExecution'], resources: [this.window.executionsArn, this.approval.executionsArn] }));
  }

  /** Stop approval executions: a cancelled request approval stops its waiting workflow. */
  public grantStopApprovals(fn: lambda.IFunction): void {
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'StopApprovalWorkflows', actions: ['states:StopExecution'], resources: [this.approval.executionsArn] }));
  }

  /** Makes both state machines under the names fixed in the constructor. */
  public addStateMachines(props: WorkflowStateMachineProps): { window: sfn.StateMachine; approval: sfn.StateMachine } {
    const window = makeStateMachine(this.window, WINDOW_DEFINITION, 'Airlock access window', props);
    const approval = makeStateMachine(this.approval, APPROVAL_DEFINITION, 'Airlock one-time approval', props);
    for (const [machine, name] of [
      [window, this.window.name],
      [approval, this.approval.name],
    ] as const) {
      if ((machine.node.defaultChild as sfn.CfnStateMachine).stateMachineName !== name) throw new Error('internal: a state machine name drifted from the ARN given to the functions');
    }
    return { window, approval };
  }
}

function makeStateMachine(
  { scope, name }: WorkflowName,
  file: string,
  title: string,
  { workflowFunction: workflow, logRetention, removalPolicy, tracing }: WorkflowStateMachineProps,
): sfn.StateMachine {
  checkDefinition(file);
  const logGroup = new logs.LogGroup(scope, 'Logs', {
    // The vendedlogs prefix keeps CloudWatch Logs' resource policy small.
    logGroupName: `/aws/vendedlogs/states/${name}`,
    retention: logRetention,
    removalPolicy,
  });
  const stateMachine = new sfn.StateMachine(scope, 'StateMachine', {
    stateMachineName: name,
    comment: title,
    stateMachineType: sfn.StateMachineType.STANDARD,
    definitionBody: sfn.DefinitionBody.fromFile(file),
    definitionSubstitutions: { [WORKFLOW_PLACEHOLDER]: workflow.functionArn },
    tracingEnabled: tracing,
    // Execution data (task tokens, ids) stays out of the logs.
    logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
  });
  if (!tracing) {
    acknowledge(
      stateMachine,
      'AwsSolutions-SF2',
      'X-Ray tracing was switched off for this deployment (tracing: false); every execution event is still logged (level ALL) and each task is a Lambda invocation with its own logs.',
    );
  }
  // Exactly the workflow function (unqualified ARN, as the ASL names it).
  stateMachine.addToRolePolicy(new iam.PolicyStatement({ sid: 'InvokeWorkflowFunction', actions: ['lambda:InvokeFunction'], resources: [workflow.functionArn] }));
  const policy = stateMachine.role.node.tryFindChild('DefaultPolicy');
  if (policy) {
    acknowledge(
      policy,
      'AwsSolutions-IAM5[Resource::*]',
      'Added by CDK for Step Functions logging (logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) and X-Ray (PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets); none of these actions supports resource-level permissions.',
    );
  }
  return stateMachine;
}

/**
 * Reads an ASL file and checks what the construct relies on: JSON, only the
 * `${WorkflowFunctionArn}` placeholder, and every Task a Lambda invoke of the
 * workflow function (so the state machine role needs that one permission).
 */
export function checkDefinition(file: string): { placeholders: string[]; tasks: number } {
  const text = readFileSync(file, 'utf8');
  const placeholders = [...new Set([...text.matchAll(/\$\{([^}]*)\}/g)].map((match) => match[1]!))];
  const unknown = placeholders.filter((name) => name !== WORKFLOW_PLACEHOLDER);
  if (unknown.length) throw new Error(`${file}: unknown definition substitution(s) ${unknown.map((name) => `\${${name}}`).join(', ')}; only \${${WORKFLOW_PLACEHOLDER}} is provided`);
  let definition: unknown;
  try {
    definition = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not JSON (${errorText(error, { name: false })})`, { cause: error });
  }
  let tasks = 0;
  const visit = (states: unknown, where: string) => {
    for (const [name, state] of Object.entries((states ?? {}) as Record<string, Record<string, unknown>>)) {
      if (state.Type === 'Task') {
        tasks++;
        const resource = state.Resource;
        const parameters = (state.Parameters ?? state.Arguments) as Record<string, unknown> | undefined;
        const ok = resource === `\${${WORKFLOW_PLACEHOLDER}}` || (typeof resource === 'string' && LAMBDA_TASK_RESOURCES.has(resource) && parameters?.FunctionName === `\${${WORKFLOW_PLACEHOLDER}}`);
        if (!ok) {
          throw new Error(`${file}: state ${where}${name} is a Task that does not invoke \${${WORKFLOW_PLACEHOLDER}}; the state machine role may only invoke the workflow function`);
        }
      }
      for (const branch of (state.Branches ?? []) as { States?: unknown }[]) visit(branch.States, `${where}${name}/`);
      const processor = (state.ItemProcessor ?? state.Iterator) as { States?: unknown } | undefined;
      if (processor) visit(processor.States, `${where}${name}/`);
    }
  };
  visit((definition as { States?: unknown }).States, '');
  return { placeholders, tasks };
}
