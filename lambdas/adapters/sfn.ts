// Step Functions: the window and approval workflows.
import type {
  SFNClient} from '@aws-sdk/client-sfn';
import {
  ExecutionDoesNotExist,
  InvalidArn,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
  StopExecutionCommand,
  TaskDoesNotExist,
  TaskTimedOut,
} from '@aws-sdk/client-sfn';
import type { Workflows } from '../core/ports.ts';

export class StepFunctionsWorkflows implements Workflows {
  private readonly sfn: SFNClient;
  private readonly machines: { window: string; approval: string };

  constructor(sfn: SFNClient, machines: { window: string; approval: string }) {
    this.sfn = sfn;
    this.machines = machines;
  }

  private async start(stateMachineArn: string, name: string, input: Record<string, unknown>): Promise<string> {
    // The execution name is the grant/approval id: starting twice is idempotent, never a second workflow.
    const out = await this.sfn.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }));
    return out.executionArn!;
  }

  startWindow(grantId: string): Promise<string> {
    return this.start(this.machines.window, grantId, { grantId });
  }

  startApproval(approvalId: string): Promise<string> {
    return this.start(this.machines.approval, approvalId, { approvalId });
  }

  async stop(executionArn: string, cause: string): Promise<void> {
    try {
      await this.sfn.send(new StopExecutionCommand({ executionArn, error: 'Airlock.Revoked', cause: cause.slice(0, 256) }));
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist || error instanceof InvalidArn) return;
      throw error;
    }
  }

  async sendSuccess(taskToken: string, output: Record<string, unknown>): Promise<void> {
    try {
      await this.sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) }));
    } catch (error) {
      // The workflow already moved on (timed out, stopped): the decision stands in DynamoDB.
      if (error instanceof TaskDoesNotExist || error instanceof TaskTimedOut) return;
      throw error;
    }
  }

  async sendFailure(taskToken: string, error: string, cause: string): Promise<void> {
    try {
      await this.sfn.send(new SendTaskFailureCommand({ taskToken, error, cause: cause.slice(0, 256) }));
    } catch (failure) {
      if (failure instanceof TaskDoesNotExist || failure instanceof TaskTimedOut) return;
      throw failure;
    }
  }
}
