// cdk-nag: the AwsSolutions findings Airlock accepts are acknowledged here, or where the
// resource is made, always with the reason it is safe (test/infra/nag-acknowledgements.test.ts).
import { Stack, Token, Validations, type CfnElement } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { FUNCTION_NAMES, type AirlockFunctionName } from './bundling.ts';
import type { AirlockStorage } from './storage.ts';

/** cdk-nag acknowledgements, always with a reason. */
export function acknowledge(scope: Construct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

export interface FunctionPolicies {
  readonly functions: Readonly<Record<AirlockFunctionName, lambda.Function>>;
  readonly storage: AirlockStorage;
  readonly windowStateMachine: sfn.StateMachine;
  readonly approvalStateMachine: sfn.StateMachine;
  readonly tracing: boolean;
}

/**
 * The wildcards CDK's grants produce, acknowledged per function for exactly
 * the grants that function has (IAM5 findings are per action/resource).
 */
export function acknowledgeFunctionPolicies(scope: Construct, { functions, storage, windowStateMachine, approvalStateMachine, tracing }: FunctionPolicies): void {
  const stack = Stack.of(scope);
  const logical = (construct: Construct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
  const reasons = {
    xray: ['AwsSolutions-IAM5[Resource::*]', 'X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) supports no resource-level permissions.'],
    stateIndexes: [
      `AwsSolutions-IAM5[Resource::<${logical(storage.stateTable)}.Arn>/index/*]`,
      "Queries of the state table use its three GSIs (byAgent, byConnection, byType); the wildcard covers exactly this table's indexes.",
    ],
    recordIndexes: [
      `AwsSolutions-IAM5[Resource::<${logical(storage.recordsTable)}.Arn>/index/*]`,
      "Audit queries read the records table through its three GSIs (byAgent, byConnection, byDay); the wildcard covers exactly this table's indexes.",
    ],
    generateDataKey: [
      'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      "Encrypting DynamoDB items, S3 objects (SSE-KMS, bucket key) and SNS messages with Airlock's key; CDK's grant, on this one key only.",
    ],
    reEncrypt: ['AwsSolutions-IAM5[Action::kms:ReEncrypt*]', "Part of CDK's encrypt/decrypt grant for tables encrypted with a customer-managed key; on this one key only."],
    transcripts: [
      `AwsSolutions-IAM5[Resource::<${logical(storage.transcriptBucket)}.Arn>/*]`,
      'Transcripts are one object per request under keys Airlock generates: PutObject (always If-None-Match: *, never an overwrite) and GetObject only, no delete, in this one bucket.',
    ],
    previews: [
      `AwsSolutions-IAM5[Resource::<${logical(storage.transcriptBucket)}.Arn>/previews/*]`,
      "The approval page reads what it shows, one object per held request's approval and one per plan change under previews/ (GetObject only).",
    ],
  } as const;
  const encrypted = [reasons.stateIndexes, reasons.generateDataKey, reasons.reEncrypt];
  const byFunction: Record<AirlockFunctionName, (readonly [string, string])[]> = {
    health: [],
    tokens: encrypted,
    // access reads the agent's own records for the window activity a plan's approver sees.
    access: [...encrypted, reasons.recordIndexes],
    approvals: [...encrypted, reasons.previews],
    workflow: encrypted,
    admin: [...encrypted, reasons.recordIndexes, reasons.transcripts],
    proxy: [...encrypted, reasons.recordIndexes, reasons.transcripts],
  };
  for (const name of FUNCTION_NAMES) {
    const policy = functions[name].role?.node.tryFindChild('DefaultPolicy');
    if (!policy) continue;
    for (const [id, reason] of [...byFunction[name], ...(tracing ? [reasons.xray] : [])]) acknowledge(policy, id, reason);
  }
  // StopExecution on the executions of Airlock's two state machines (execution names are grant/approval ids).
  // cdk-nag names an unresolved pseudo parameter <AWS::...> and a known one by its value.
  const pseudo = (value: string, name: string) => (Token.isUnresolved(value) ? `<AWS::${name}>` : value);
  const prefix = `arn:${pseudo(stack.partition, 'Partition')}:states:${pseudo(stack.region, 'Region')}:${pseudo(stack.account, 'AccountId')}`;
  const stoppers: [AirlockFunctionName, sfn.StateMachine[]][] = [
    ['admin', [windowStateMachine, approvalStateMachine]],
    ...(['approvals', 'proxy', 'access', 'workflow'] as const).map((name): [AirlockFunctionName, sfn.StateMachine[]] => [name, [approvalStateMachine]]),
  ];
  for (const [functionName, machines] of stoppers) {
    const policy = functions[functionName].role!.node.findChild('DefaultPolicy');
    for (const machine of machines) {
      const name = (machine.node.defaultChild as sfn.CfnStateMachine).stateMachineName;
      acknowledge(
        policy,
        `AwsSolutions-IAM5[Resource::${prefix}:execution:${name}:*]`,
        "Revocation and cancellation stop running executions of Airlock's own state machine; execution names are grant/approval ids, unknown in advance.",
      );
    }
  }
}
