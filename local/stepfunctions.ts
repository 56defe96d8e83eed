// Step Functions for the local stack: our own ASL files (the same ones CDK
// deploys) run by aws-local-stepfunctions behind a small Step Functions API
// (AWS JSON 1.0: StartExecution, DescribeExecution, StopExecution,
// SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat), so the handlers use
// @aws-sdk/client-sfn unchanged. Lambda tasks call the same handler code
// in-process. Nothing persists: after a restart the stack resumes workflows
// from DynamoDB (see resumeWorkflows in stack.ts).
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StateMachine } from 'aws-local-stepfunctions';
import { errorText } from '../lambdas/core/errors.ts';

type RunOptions = NonNullable<Parameters<StateMachine['run']>[1]>;
type LocalHandlers = NonNullable<NonNullable<RunOptions['overrides']>['taskResourceLocalHandlers']>;

export type LocalFunction = (payload: unknown) => Promise<unknown>;

export interface LocalStepFunctionsOptions {
  region: string;
  accountId: string;
  /** name -> ASL file */
  definitions: Record<string, string>;
  /** `${Name}` placeholders, as CDK's definitionSubstitutions fills them on AWS. */
  substitutions: Record<string, string>;
  /** function ARN -> handler */
  functions: Record<string, LocalFunction>;
  /** Wait state name -> milliseconds (tests shorten windows with this). */
  waitOverrides?: Record<string, number>;
}

const LOCAL_TIMEOUT_FIELD = 'airlockLocalTimeoutSeconds';

type Status = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';

interface Execution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  input: string;
  status: Status;
  startDate: number;
  stopDate?: number;
  output?: string;
  error?: string;
  cause?: string;
  abort: () => void;
  tokens: Set<string>;
}

interface Waiter {
  resolve: (output: unknown) => void;
  reject: (error: Error) => void;
  executionArn: string;
}

class ApiError extends Error {
  readonly type: string;
  constructor(type: string, message: string) {
    super(message);
    this.type = type;
  }
}

interface TaskState {
  Type: 'Task';
  Resource: string;
  Parameters?: { FunctionName?: string };
}

export class LocalStepFunctions {
  private readonly options: LocalStepFunctionsOptions;
  private readonly machines = new Map<string, { name: string; definition: Record<string, unknown>; machine: StateMachine; tasks: Map<string, TaskState> }>();
  private readonly executions = new Map<string, Execution>();
  private readonly waiters = new Map<string, Waiter>();
  private server: Server | undefined;

  constructor(options: LocalStepFunctionsOptions) {
    this.options = options;
    for (const [name, file] of Object.entries(options.definitions)) {
      let text = readFileSync(file, 'utf8');
      for (const [key, value] of Object.entries(options.substitutions)) text = text.replaceAll(`\${${key}}`, value);
      const leftover = /\$\{([A-Za-z0-9_]+)\}/.exec(text);
      if (leftover) throw new Error(`${file}: no local substitution for \${${leftover[1]}}`);
      const definition = JSON.parse(text) as { States: Record<string, { Type: string }> };
      const tasks = new Map<string, TaskState>();
      for (const [stateName, state] of Object.entries(definition.States)) {
        if (state.Type !== 'Task') continue;
        const task = state as TaskState;
        // A Task without a local handler would call real AWS Lambda: refuse that at start-up.
        const functionName = task.Parameters?.FunctionName;
        if (!task.Resource.startsWith('arn:aws:states:::lambda:invoke') || !functionName || !options.functions[functionName]) {
          throw new Error(`${file}: task "${stateName}" has no local handler (${task.Resource} ${functionName ?? ''})`);
        }
        if (!('TimeoutSeconds' in task) && !('TimeoutSecondsPath' in task)) throw new Error(`${file}: task "${stateName}" needs an explicit TimeoutSeconds`);
        // Emulator gap: aws-local-stepfunctions resolves TimeoutSecondsPath against the
        // Parameters output, AWS against the state input. Carry the value through Parameters
        // under a private name (removed again before the function is called).
        const withPath = task as TaskState & { TimeoutSecondsPath?: string; Parameters?: Record<string, unknown> };
        if (withPath.TimeoutSecondsPath) {
          withPath.Parameters = { ...withPath.Parameters, [`${LOCAL_TIMEOUT_FIELD}.$`]: withPath.TimeoutSecondsPath };
          withPath.TimeoutSecondsPath = `$.${LOCAL_TIMEOUT_FIELD}`;
        }
        tasks.set(stateName, task);
      }
      this.machines.set(this.stateMachineArn(name), { name, definition, machine: new StateMachine(definition as never, { validationOptions: { checkPaths: true } }), tasks });
    }
  }

  stateMachineArn(name: string): string {
    return `arn:aws:states:${this.options.region}:${this.options.accountId}:stateMachine:${name}`;
  }

  async listen(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const execution of this.executions.values()) if (execution.status === 'RUNNING') execution.abort();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Executions currently running (tests and the restart check read this). */
  running(): Execution[] {
    return [...this.executions.values()].filter((execution) => execution.status === 'RUNNING');
  }

  describe(executionArn: string): Omit<Execution, 'abort' | 'tokens'> | undefined {
    const execution = this.executions.get(executionArn);
    if (!execution) return undefined;
    const { abort: _abort, tokens: _tokens, ...rest } = execution;
    return rest;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const target = String(req.headers['x-amz-target'] ?? '').replace(/^AWSStepFunctions\./, '');
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, string>;
      const result = this.call(target, body);
      const text = JSON.stringify(result);
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': randomUUID() });
      res.end(text);
    } catch (error) {
      const apiError = error instanceof ApiError ? error : new ApiError('InvalidParameterValue', errorText(error, { name: false }));
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': apiError.type });
      res.end(JSON.stringify({ __type: apiError.type, message: apiError.message }));
    }
  }

  private call(target: string, body: Record<string, string>): Record<string, unknown> {
    switch (target) {
      case 'StartExecution':
        return this.startExecution(body.stateMachineArn ?? '', body.name, body.input ?? '{}');
      case 'DescribeExecution': {
        const execution = this.describe(body.executionArn ?? '');
        if (!execution) throw new ApiError('ExecutionDoesNotExist', `no execution ${body.executionArn}`);
        return { ...execution, startDate: execution.startDate / 1000, ...(execution.stopDate ? { stopDate: execution.stopDate / 1000 } : {}) };
      }
      case 'StopExecution': {
        const execution = this.executions.get(body.executionArn ?? '');
        if (!execution) throw new ApiError('ExecutionDoesNotExist', `no execution ${body.executionArn}`);
        if (execution.status === 'RUNNING') {
          Object.assign(execution, { status: 'ABORTED', stopDate: Date.now(), error: body.error, cause: body.cause });
          execution.abort();
          for (const token of execution.tokens) this.waiters.delete(token);
        }
        return { stopDate: (execution.stopDate ?? Date.now()) / 1000 };
      }
      case 'SendTaskSuccess':
      case 'SendTaskFailure':
      case 'SendTaskHeartbeat': {
        const waiter = this.waiters.get(body.taskToken ?? '');
        if (!waiter) throw new ApiError('TaskDoesNotExist', 'no task is waiting on this token');
        if (target === 'SendTaskHeartbeat') return {};
        this.waiters.delete(body.taskToken!);
        if (target === 'SendTaskSuccess') waiter.resolve(JSON.parse(body.output ?? '{}'));
        else waiter.reject(Object.assign(new Error(body.cause ?? body.error ?? 'task failed'), { name: body.error ?? 'States.TaskFailed' }));
        return {};
      }
      default:
        throw new ApiError('UnknownOperationException', `operation ${target} is not supported by the local Step Functions`);
    }
  }

  private startExecution(stateMachineArn: string, requestedName: string | undefined, input: string): Record<string, unknown> {
    const machine = this.machines.get(stateMachineArn);
    if (!machine) throw new ApiError('StateMachineDoesNotExist', `no state machine ${stateMachineArn}`);
    const name = requestedName ?? randomUUID();
    const executionArn = `arn:aws:states:${this.options.region}:${this.options.accountId}:execution:${machine.name}:${name}`;
    const existing = this.executions.get(executionArn);
    if (existing) {
      // Same name and input while running: the same execution (StartExecution is idempotent on AWS too).
      if (existing.status === 'RUNNING' && existing.input === input) return { executionArn, startDate: existing.startDate / 1000 };
      throw new ApiError('ExecutionAlreadyExists', `execution ${name} already exists`);
    }
    const parsedInput = JSON.parse(input) as unknown;
    const startDate = Date.now();
    const tokens = new Set<string>();
    const handlers: Record<string, (taskInput: unknown) => Promise<unknown>> = {};

    for (const [stateName, task] of machine.tasks) {
      const waitForToken = task.Resource.endsWith('.waitForTaskToken');
      handlers[stateName] = async (taskInput) => {
        const { FunctionName, Payload } = taskInput as { FunctionName: string; Payload: { taskToken?: string } };
        const fn = this.options.functions[FunctionName]!;
        if (!waitForToken) return { Payload: await fn(Payload), StatusCode: 200 };
        const token = Payload.taskToken;
        if (!token) throw Object.assign(new Error('no task token in payload'), { name: 'States.Runtime' });
        // Registered before the function runs: it may resolve the token itself.
        const decision = new Promise<unknown>((resolve, reject) => this.waiters.set(token, { resolve, reject, executionArn }));
        tokens.add(token);
        await fn(Payload);
        try {
          return await decision;
        } finally {
          this.waiters.delete(token);
          tokens.delete(token);
        }
      };
    }
    const context = {
      Execution: { Id: executionArn, Name: name, StartTime: new Date(startDate).toISOString(), Input: parsedInput },
      StateMachine: { Id: stateMachineArn, Name: machine.name },
      // aws-local-stepfunctions does not generate task tokens: each read of $$.Task.Token gets a fresh one.
      Task: {
        get Token() {
          return randomBytes(24).toString('base64url');
        },
      },
    };
    const run = machine.machine.run(parsedInput as never, {
      overrides: { taskResourceLocalHandlers: handlers as LocalHandlers, waitTimeOverrides: this.options.waitOverrides ?? {} },
      context: context as RunOptions['context'],
      noThrowOnAbort: true,
    });
    const execution: Execution = { executionArn, stateMachineArn, name, input, status: 'RUNNING', startDate, abort: run.abort, tokens };
    this.executions.set(executionArn, execution);
    run.result.then(
      (output: unknown) => {
        if (execution.status !== 'RUNNING') return;
        Object.assign(execution, { status: 'SUCCEEDED', stopDate: Date.now(), output: JSON.stringify(output ?? null) });
      },
      (error: Error & { cause?: Error & { name?: string; cause?: unknown } }) => {
        if (execution.status !== 'RUNNING') return;
        const cause = error.cause ?? error;
        Object.assign(execution, {
          status: error.name === 'ExecutionTimeoutError' ? 'TIMED_OUT' : 'FAILED',
          stopDate: Date.now(),
          error: cause.name,
          cause: typeof cause.cause === 'string' ? cause.cause : cause.message,
        });
      },
    );
    return { executionArn, startDate: startDate / 1000 };
  }
}
