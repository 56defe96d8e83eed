// The construct's parts (storage.ts, workflows.ts, api.ts, functions.ts, ...) add their
// resources to the Airlock construct itself. A logical id that changes makes CloudFormation
// replace the resource on the next deploy: for the key, secret, tables and transcript
// bucket that is data loss; for the proxy role, every connection role's trust breaks.
import { App, Stack, type CfnElement } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { Airlock } from '../../infra/airlock.ts';

describe('logical ids of what must never be replaced', () => {
  it('stay as they were before the construct was split into parts', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Variant', { env: { account: '111122223333', region: 'eu-west-1' } });
    const airlock = new Airlock(stack, 'Airlock', {});
    const id = (construct: { node: { defaultChild?: unknown } }) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
    expect({
      key: id(airlock.key),
      secret: id(airlock.secret),
      stateTable: id(airlock.stateTable),
      recordsTable: id(airlock.recordsTable),
      transcriptBucket: id(airlock.transcriptBucket),
      accessLogsBucket: id(airlock.accessLogsBucket!),
      proxyRole: id(airlock.proxyRole),
      api: id(airlock.api),
      windowStateMachine: id(airlock.windowStateMachine),
      approvalStateMachine: id(airlock.approvalStateMachine),
    }).toEqual({
      key: 'AirlockKey390E0737',
      secret: 'AirlockMasterSecret406C51B0',
      stateTable: 'AirlockStateTable8552598A',
      recordsTable: 'AirlockRecordsTableDFC7C20B',
      transcriptBucket: 'AirlockTranscriptBucket7A7594F5',
      accessLogsBucket: 'AirlockAccessLogsBucket59D43B16',
      proxyRole: 'AirlockProxyRole33C6B5B5',
      api: 'AirlockApiC43C7065',
      windowStateMachine: 'AirlockWindowWorkflowStateMachine2783EFE0',
      approvalStateMachine: 'AirlockApprovalWorkflowStateMachine3AEDF4C2',
    });
  });
});
