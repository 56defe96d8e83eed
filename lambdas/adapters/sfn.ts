// Step Functions: the window and approval workflows.
import {
  ExecutionDoesNotExist,
  InvalidArn,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
  StopExecutionCommand,
  TaskDoesNotExist,
  TaskTimedOut,
  SFNClient,
  type SFNClientConfig,
} from '@aws-sdk/client-sfn';
import { DependencyUnavailableError, errorText } from '../core/errors.ts';
import type { Workflows } from '../core/ports.ts';

export class StepFunctionsWorkflows implements Workflows {
  private readonly sfn: SFNClient;
  private readonly machines: { window: string; approval: string };

  constructor(sfn: SFNClient, machines: { window: string; approval: string }) {
    this.sfn = sfn;
    this.machines = machines;
  }

  /**
   * Sends one command. `settled` names the errors that mean the work is
   * already done (the execution or task is gone): those resolve. Anything
   * else is a DependencyUnavailableError with the SDK error as its cause.
   */
  private async send<T>(operation: string, run: () => Promise<T>, settled: (error: unknown) => boolean = () => false): Promise<T | undefined> {
    try {
      return await run();
    } catch (error) {
      if (settled(error)) return undefined;
      throw new DependencyUnavailableError('workflows', `Step Functions ${operation} failed: ${errorText(error)}`, { cause: error });
    }
  }

  private async start(stateMachineArn: string, name: string, input: Record<string, unknown>): Promise<string> {
    // The execution name is the grant/approval id: starting twice is idempotent, never a second workflow.
    const out = await this.send('StartExecution', () => this.sfn.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) })));
    return out!.executionArn!;
  }

  startWindow(grantId: string): Promise<string> {
    return this.start(this.machines.window, grantId, { grantId });
  }

  startApproval(approvalId: string): Promise<string> {
    return this.start(this.machines.approval, approvalId, { approvalId });
  }

  async stop(executionArn: string, cause: string): Promise<void> {
    await this.send(
      'StopExecution',
      () => this.sfn.send(new StopExecutionCommand({ executionArn, error: 'Airlock.Revoked', cause: cause.slice(0, 256) })),
      (error) => error instanceof ExecutionDoesNotExist || error instanceof InvalidArn,
    );
  }

  async sendSuccess(taskToken: string, output: Record<string, unknown>): Promise<void> {
    // The workflow already moved on (timed out, stopped): the decision stands in DynamoDB.
    await this.send('SendTaskSuccess', () => this.sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) })), taskGone);
  }

  async sendFailure(taskToken: string, error: string, cause: string): Promise<void> {
    await this.send('SendTaskFailure', () => this.sfn.send(new SendTaskFailureCommand({ taskToken, error, cause: cause.slice(0, 256) })), taskGone);
  }
}

function taskGone(error: unknown): boolean {
  return error instanceof TaskDoesNotExist || error instanceof TaskTimedOut;
}

/** The adapter with its own client: the functions load this module on first use (runtime/core-services.ts). */
export function stepFunctionsWorkflows(clientConfig: SFNClientConfig, machines: { window: string; approval: string }): StepFunctionsWorkflows {
  return new StepFunctionsWorkflows(new SFNClient(clientConfig), machines);
}
