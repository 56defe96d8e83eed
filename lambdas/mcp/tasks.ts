// MCP tasks: a tool call held for approval becomes a task the client polls, where
// the client supports it — the 2025-11-25 revision's tasks (`params.task` on
// tools/call; tasks/get, tasks/result, tasks/cancel) and the 2026-07-28 Tasks
// extension (io.modelcontextprotocol/tasks: `resultType: "task"`; tasks/get
// carries the result; tasks/update, tasks/cancel). Stateless like the rest of
// /mcp: a task is an item in the state store, and it advances when it is
// polled — the poll that finds its approval approved runs the call, through the
// gateway like any tool call, exactly once (a lease on the item). Nothing a
// client answers moves it: only the approval's status, decided on Airlock's page.
//
// The call's arguments (an apply may carry a Secret) and its result are sealed
// with a 256-bit key that exists only in the task id handed to the agent
// (`tsk_<id>.<key>`); the store keeps the public id and the JWE (dir, A256GCM,
// the public id in the protected header). Whoever reads the store cannot read
// them; a task id with a wrong key finds nothing.
import { randomBytes } from 'node:crypto';
import { CompactEncrypt, compactDecrypt } from 'jose';
import type { Agent, Approval, McpTask } from '../core/model.ts';
import type { LifecycleDeps } from '../core/lifecycle.ts';
import { cancelApproval, cancelledMessage } from '../core/lifecycle.ts';
import { isId, newId } from '../core/ids.ts';
import { ErrorCode, McpError } from './protocol.ts';

export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';
export const RELATED_TASK_META = 'io.modelcontextprotocol/related-task';
/** 2025-11-25 revision: the only initialize-based one with tasks. */
export const TASKS_LEGACY_VERSION = '2025-11-25';
/** How often a client is asked to poll: a held call waits for a human, so seconds are fine. */
export const TASK_POLL_INTERVAL_MS = 2000;
/** A run claims its task for as long as the longest tool call can take (exec: 15 min) and a little. */
const RUN_LEASE_MS = 16 * 60_000;
/** The result stays readable for this long after the approval's use deadline. */
const RESULT_RETENTION_MS = 3_600_000;
/** A stored result stays well under DynamoDB's 400 KB item (tool text is ≤ 64 KiB). */
const MAX_SEALED_RESULT_CHARS = 300 * 1024;

/** What the agent holds (`taskId`), and its two parts. */
export interface TaskHandle {
  id: string;
  key: Uint8Array;
  taskId: string;
}

export function newTaskHandle(): TaskHandle {
  const id = newId('tsk');
  const key = randomBytes(32);
  return { id, key, taskId: `${id}.${key.toString('base64url')}` };
}

/** A task id as the agent sent it; undefined for anything not of that shape. */
export function parseTaskId(value: unknown): TaskHandle | undefined {
  if (typeof value !== 'string' || value.length > 80) return undefined;
  const [id, key, ...rest] = value.split('.');
  if (rest.length > 0 || !isId(id, 'tsk') || !key || !/^[A-Za-z0-9_-]{43}$/.test(key)) return undefined;
  return { id, key: Buffer.from(key, 'base64url'), taskId: value };
}

async function seal(handle: TaskHandle, value: unknown): Promise<string> {
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(value))).setProtectedHeader({ alg: 'dir', enc: 'A256GCM', tid: handle.id }).encrypt(handle.key);
}

async function unseal<T>(handle: TaskHandle, sealed: string): Promise<T | undefined> {
  try {
    const { plaintext, protectedHeader } = await compactDecrypt(sealed, handle.key);
    if (protectedHeader.tid !== handle.id) return undefined;
    return JSON.parse(new TextDecoder().decode(plaintext)) as T;
  } catch {
    return undefined;
  }
}

export type CallToolResult = Record<string, unknown>;

/**
 * What running a tool call came to: its result (success or tool error) and, when it was held for an
 * approval, which one and the arguments a run must repeat exactly (the approval binds the request's bytes).
 */
export interface ToolOutcome {
  result: CallToolResult;
  /** `approval`: as read when the call was held (undefined if it could not be read). */
  held?: { approvalId: string; approval: Approval | undefined; arguments: Record<string, unknown> };
}

export interface TaskRunner {
  /** Runs the call again (same tool, same arguments, same call id), through the gateway. */
  run(agent: Agent, tool: string, args: Record<string, unknown>, callId: string): Promise<ToolOutcome>;
}

const notFound = (detail = 'no such task of yours') => new McpError(200, ErrorCode.InvalidParams, `Failed to retrieve task: ${detail}`, undefined, 'task_not_found');
const iso = (time: number) => new Date(time).toISOString();

/** The Task fields, as each revision names them. */
export function taskView(task: McpTask, handle: TaskHandle, modern: boolean, now: number): Record<string, unknown> {
  const ttl = Math.max(0, task.expiresAt - task.createdAt);
  return {
    taskId: handle.taskId,
    status: task.status,
    ...(task.statusMessage ? { statusMessage: task.statusMessage } : {}),
    createdAt: iso(task.createdAt),
    lastUpdatedAt: iso(Math.min(task.updatedAt, now)),
    ...(modern ? { ttlMs: ttl } : { ttl }),
    ...(task.status === 'working' ? (modern ? { pollIntervalMs: TASK_POLL_INTERVAL_MS } : { pollInterval: TASK_POLL_INTERVAL_MS }) : {}),
  };
}

function waitingMessage(approval: Pick<Approval, 'id' | 'approvers' | 'minApprovals'>): string {
  const approvers = approval.approvers.length ? ` (approvers emailed: ${approval.approvers.join(', ')}; ${approval.minApprovals} needed)` : '';
  return `waiting for approval ${approval.id}${approvers}; it runs once when an approver approves it on Airlock's approval page`;
}

/** A tool error (isError), its details under `airlock.dev/` in _meta. */
export function toolError(text: string, meta: Record<string, unknown> = {}): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true, _meta: Object.fromEntries(Object.entries(meta).map(([key, value]) => [`airlock.dev/${key}`, value])) };
}

/** A result small enough to keep: structured content goes first, the (bounded) text stays. */
function keepable(result: CallToolResult): CallToolResult {
  if (JSON.stringify(result).length <= MAX_SEALED_RESULT_CHARS) return result;
  const { structuredContent: _dropped, ...rest } = result;
  return { ...rest, _meta: { ...(rest._meta as Record<string, unknown> | undefined), 'airlock.dev/structuredContentDropped': true } };
}

export class McpTasks {
  private readonly deps: LifecycleDeps;
  private readonly runner: TaskRunner;

  constructor(deps: LifecycleDeps, runner: TaskRunner) {
    this.deps = deps;
    this.runner = runner;
  }

  /** A task for a call: held (working, waiting for its approval) or already answered (2025-11-25 asks for a task up front). */
  async create(
    agent: Agent,
    input: { tool: string; callId: string; connection?: string | undefined; outcome: ToolOutcome; args: Record<string, unknown> },
  ): Promise<{ task: McpTask; handle: TaskHandle }> {
    const now = this.deps.now();
    const handle = newTaskHandle();
    const held = input.outcome.held;
    const approval = held?.approval;
    const useDeadline = approval ? approval.expiresAt + approval.timeoutSeconds * 1000 : now;
    const task: McpTask = {
      id: handle.id,
      agentId: agent.id,
      tool: input.tool,
      callId: input.callId,
      ...(input.connection ? { connection: input.connection } : {}),
      approvalId: held?.approvalId ?? '-',
      status: held ? 'working' : 'completed',
      statusMessage: held ? waitingMessage({ id: held.approvalId, approvers: approval?.approvers ?? [], minApprovals: approval?.minApprovals ?? 1 }) : 'the call was answered without approval',
      sealedArguments: await seal(handle, held ? held.arguments : input.args),
      ...(held ? {} : { sealedResult: await seal(handle, keepable(input.outcome.result)) }),
      runLeaseUntil: 0,
      createdAt: now,
      updatedAt: now,
      expiresAt: Math.max(useDeadline, now) + RESULT_RETENTION_MS,
    };
    await this.deps.state.createMcpTask(task);
    return { task, handle };
  }

  /** The agent's task, advanced as far as its approval allows (running the call once, if approved). */
  async advance(agent: Agent, taskId: unknown): Promise<{ task: McpTask; handle: TaskHandle }> {
    const { task, handle, args } = await this.load(agent, taskId);
    if (task.status !== 'working') return { task, handle };
    const now = this.deps.now();
    if (task.runLeaseUntil > now) return { task: { ...task, statusMessage: 'approved: the call is running' }, handle };
    const approval = await this.deps.state.getApproval(task.approvalId);
    if (!approval || approval.agentId !== agent.id) return this.finish(task, handle, toolError(`approval ${task.approvalId} no longer exists: nothing was sent`), 'the approval is gone');
    switch (approval.status) {
      case 'pending':
        return { task: { ...task, statusMessage: waitingMessage(approval) }, handle };
      case 'approved':
        return this.run(task, handle, agent, args, approval);
      case 'denied':
        return this.finish(
          task,
          handle,
          toolError(`DENIED: approval ${approval.id} was denied; nothing was sent.`, { callId: task.callId, approvalId: approval.id }),
          `approval ${approval.id} denied`,
        );
      case 'expired':
        return this.finish(
          task,
          handle,
          toolError(`approval ${approval.id} expired before it was used; nothing was sent.`, { callId: task.callId, approvalId: approval.id }),
          `approval ${approval.id} expired`,
        );
      case 'cancelled':
        return this.finish(
          task,
          handle,
          toolError(`approval ${approval.id}: ${cancelledMessage(approval)}; nothing was sent.`, { callId: task.callId, approvalId: approval.id }),
          `approval ${approval.id} cancelled`,
        );
      case 'consumed':
        // Spent by a request that was not this task's finished run (the agent's own retry, or a run of this task that never got to record its result): never run twice.
        return this.finish(
          task,
          handle,
          toolError(`approval ${approval.id} was already used by request ${approval.consumedBy ?? '?'}; this task did not send the call again.`, { callId: task.callId, approvalId: approval.id }),
          `approval ${approval.id} already used`,
        );
    }
  }

  /** The agent stops waiting: the task is cancelled, and so is the approval it waited for if still undecided or unused. */
  async cancel(agent: Agent, taskId: unknown): Promise<{ task: McpTask; handle: TaskHandle }> {
    const { task, handle } = await this.load(agent, taskId);
    if (task.status !== 'working') throw new McpError(200, ErrorCode.InvalidParams, `task ${task.id} is already ${task.status}`, undefined, 'task_terminal');
    const now = this.deps.now();
    const cancelled = await this.deps.state.updateMcpTask(task.id, { status: ['working'], leaseFreeAt: now }, { status: 'cancelled', statusMessage: 'cancelled by the agent', updatedAt: now });
    if (!cancelled) throw new McpError(200, ErrorCode.InvalidParams, `task ${task.id} is running or already finished; it cannot be cancelled now`, undefined, 'task_terminal');
    await cancelApproval(this.deps, task.approvalId, `the agent cancelled MCP task ${task.id}`, agent.name);
    return { task: cancelled, handle };
  }

  /** The agent's task as it stands, without advancing it (a task id with the wrong key, or another agent's, finds nothing). */
  async find(agent: Agent, taskId: unknown): Promise<McpTask> {
    return (await this.load(agent, taskId)).task;
  }

  /** The stored result of a completed task (2025-11-25 tasks/result; 2026-07-28 tasks/get inlines it). */
  async resultOf(task: McpTask, handle: TaskHandle): Promise<CallToolResult> {
    const result = task.sealedResult ? await unseal<CallToolResult>(handle, task.sealedResult) : undefined;
    if (!result) throw new McpError(500, ErrorCode.InternalError, `the result of task ${task.id} cannot be read`, undefined, 'task_result_unreadable');
    return result;
  }

  private async load(agent: Agent, taskId: unknown): Promise<{ task: McpTask; handle: TaskHandle; args: Record<string, unknown> }> {
    const handle = parseTaskId(taskId);
    if (!handle) throw notFound('not a task id Airlock gave');
    const task = await this.deps.state.getMcpTask(handle.id);
    // Another agent's task reads as no task at all; so does a right id with a wrong key.
    if (!task || task.agentId !== agent.id) throw notFound();
    const args = await unseal<Record<string, unknown>>(handle, task.sealedArguments);
    if (!args) throw notFound();
    if (task.expiresAt <= this.deps.now()) throw notFound('the task has expired');
    return { task, handle, args };
  }

  private async run(task: McpTask, handle: TaskHandle, agent: Agent, args: Record<string, unknown>, approval: Approval): Promise<{ task: McpTask; handle: TaskHandle }> {
    const now = this.deps.now();
    const runId = newId('req');
    const claimed = await this.deps.state.updateMcpTask(task.id, { status: ['working'], leaseFreeAt: now }, { runLeaseUntil: now + RUN_LEASE_MS, runId, updatedAt: now });
    if (!claimed) {
      const current = await this.deps.state.getMcpTask(task.id);
      return { task: current ?? task, handle };
    }
    const outcome = await this.runner.run(agent, task.tool, args, task.callId);
    const done = this.deps.now();
    if (outcome.held && outcome.held.approvalId !== approval.id) {
      // Held again under another approval (say, a new window or policy): the task waits for that one.
      const next = outcome.held.approval;
      const waiting = await this.deps.state.updateMcpTask(
        task.id,
        { status: ['working'], runId },
        {
          approvalId: outcome.held.approvalId,
          runLeaseUntil: 0,
          statusMessage: waitingMessage({ id: outcome.held.approvalId, approvers: next?.approvers ?? [], minApprovals: next?.minApprovals ?? 1 }),
          ...(next ? { expiresAt: Math.max(task.expiresAt, next.expiresAt + next.timeoutSeconds * 1000 + RESULT_RETENTION_MS) } : {}),
          updatedAt: done,
        },
      );
      return { task: waiting ?? claimed, handle };
    }
    // Held again under the same approval cannot pass: its answer (a tool error naming it) is the result.
    const result = outcome.result;
    const finished = await this.deps.state.updateMcpTask(
      task.id,
      { status: ['working'], runId },
      { status: 'completed', sealedResult: await seal(handle, keepable(result)), runLeaseUntil: 0, statusMessage: result.isError ? 'the call ran and was refused' : 'the call ran', updatedAt: done },
    );
    if (!finished) throw new McpError(500, ErrorCode.InternalError, `task ${task.id} ran but its result could not be stored`, undefined, 'task_result_unstored');
    return { task: finished, handle };
  }

  private async finish(task: McpTask, handle: TaskHandle, result: CallToolResult, message: string): Promise<{ task: McpTask; handle: TaskHandle }> {
    const now = this.deps.now();
    const finished = await this.deps.state.updateMcpTask(
      task.id,
      { status: ['working'], leaseFreeAt: now },
      { status: 'completed', sealedResult: await seal(handle, result), statusMessage: message, updatedAt: now },
    );
    return { task: finished ?? (await this.deps.state.getMcpTask(task.id)) ?? task, handle };
  }
}
