// The tasks of the two state machines (state-machines/*.asl.json), one
// function, dispatched on `action`. Each task is idempotent: the workflows may
// retry a task, and a resumed workflow runs `prepare*` again.
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import * as z from 'zod';
import { AirlockError } from '../core/status.ts';
import { logger } from '../runtime/logger.ts';
import type { CoreServices } from '../runtime/services.ts';
import { servicesFromEnvironment } from '../runtime/environment.ts';
import { createCoreServices } from '../runtime/core-services.ts';
import { activateWindow, awaitDecision, endPendingWindow, expireWindow, secondsUntil, settleApproval, windowPhase } from '../core/lifecycle.ts';
import { errorText } from '../core/errors.ts';

const id = z.string().min(3).max(64);

const Task = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('prepareWindow'), grantId: id }),
  z.strictObject({ action: z.literal('activateWindow'), grantId: id }),
  z.strictObject({ action: z.literal('expireWindow'), grantId: id }),
  z.strictObject({ action: z.literal('endWindow'), grantId: id, outcome: z.enum(['denied', 'timed-out', 'failed']) }),
  z.strictObject({ action: z.literal('prepareApproval'), approvalId: id }),
  z.strictObject({ action: z.literal('awaitApproval'), approvalId: id, taskToken: z.string().min(1).max(8192) }),
  z.strictObject({ action: z.literal('recordDecision'), approvalId: id, outcome: z.enum(['approved', 'denied', 'expired', 'failed']) }),
]);

export type WorkflowTask = z.infer<typeof Task>;

export async function runTask(services: CoreServices, input: unknown): Promise<Record<string, unknown>> {
  const parsed = Task.safeParse(input);
  if (!parsed.success) throw new Error(`invalid workflow task: ${parsed.error.issues[0]?.message ?? 'unknown'}`);
  const task = parsed.data;
  const now = services.now();
  switch (task.action) {
    case 'prepareWindow':
      return windowPhase(services, task.grantId);
    case 'activateWindow': {
      const active = await activateWindow(services, task.grantId, 'workflow');
      return active ? { phase: 'active', expiresAt: new Date(active.expiresAt!).toISOString() } : { phase: 'ended' };
    }
    case 'expireWindow':
      await expireWindow(services, task.grantId);
      return {};
    case 'endWindow':
      await endPendingWindow(services, task.grantId, task.outcome);
      return {};
    case 'prepareApproval': {
      const approval = await services.state.getApproval(task.approvalId);
      if (!approval || approval.status !== 'pending') return { phase: 'decided' };
      if (approval.expiresAt <= now) return { phase: 'expire' };
      return { phase: 'await', timeoutSeconds: secondsUntil(approval.expiresAt, now) };
    }
    case 'awaitApproval':
      await awaitDecision(services, task.approvalId, task.taskToken, (approval, approver) => services.links.link(services.config.publicUrl, approval, approver));
      return {};
    case 'recordDecision': {
      if (task.outcome === 'approved') return {}; // the approval page stored and recorded it
      await settleApproval(services, task.approvalId, task.outcome === 'denied' ? 'denied' : 'expired', 'workflow');
      return {};
    }
  }
}

export function createWorkflowHandler(getServices: () => Promise<CoreServices>) {
  return middy<unknown, Record<string, unknown>>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (event) => {
      try {
        return await runTask(await getServices(), event);
      } catch (error) {
        // Step Functions sees the failure and takes the workflow's fail-closed path.
        logger.error('workflow task failed', { error: errorText(error), action: (event as { action?: string })?.action });
        throw error instanceof AirlockError ? new Error(error.message) : error;
      }
    });
}

export const handler = createWorkflowHandler(servicesFromEnvironment(createCoreServices));
