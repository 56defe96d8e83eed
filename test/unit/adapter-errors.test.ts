// The adapters turn SDK errors into domain errors (keeping the SDK error as
// `cause`), and status.ts turns domain errors into the refusals callers have
// always seen. The emulators produce condition failures (the local-stack
// tests cover those end to end); the SDK errors they cannot produce —
// throttling, a task that is gone, S3's PreconditionFailed, unprocessed batch
// keys — are thrown here by a stand-in client.
import { ConditionalCheckFailedException, DynamoDBClient, ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { ExecutionDoesNotExist, TaskDoesNotExist, type SFNClient } from '@aws-sdk/client-sfn';
import type { SNSClient } from '@aws-sdk/client-sns';
import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../lambdas/adapters/dynamodb/cursor.ts';
import { DynamoRecordStore } from '../../lambdas/adapters/dynamodb/record-store.ts';
import { DynamoStateStore } from '../../lambdas/adapters/dynamodb/state-store.ts';
import { S3TranscriptStore } from '../../lambdas/adapters/s3.ts';
import { StepFunctionsWorkflows } from '../../lambdas/adapters/sfn.ts';
import { SnsNotifier } from '../../lambdas/adapters/sns.ts';
import { AlreadyExistsError, DependencyUnavailableError, InvalidCursorError, NotFoundError, errorText } from '../../lambdas/core/errors.ts';
import type { Agent, Connection, Grant } from '../../lambdas/core/model.ts';
import { AirlockError, asAirlockError, refusalFor } from '../../lambdas/core/status.ts';

const meta = { $metadata: {} };
const conditionFailed = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', ...meta });
const throttled = () => new ProvisionedThroughputExceededException({ message: 'Rate exceeded', ...meta });

/** A real DynamoDB client whose every call is answered by `answer` before anything goes on the wire. */
function dynamo(answer: (command: { input: Record<string, unknown> }, call: number) => unknown): DynamoDBClient {
  const client = new DynamoDBClient({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } });
  let calls = 0;
  client.middlewareStack.add(
    () => async (args) => {
      const result = answer({ input: args.input as Record<string, unknown> }, ++calls);
      if (result instanceof Error) throw result;
      return { output: { ...meta, ...(result as object) }, response: {} };
    },
    { step: 'initialize', name: 'standIn' },
  );
  return client;
}

const agent: Agent = { id: 'agt_1', name: 'ci-bot', status: 'enabled', createdAt: 1, principalArn: 'arn:aws:iam::111122223333:role/ci' };
const connection = { name: 'prod' } as Connection;
const grant = { id: 'gr_1', agentId: 'agt_1', connection: 'prod', requestedAt: 1 } as Grant;

describe('DynamoDB adapters', () => {
  it('turn a failed create condition into AlreadyExistsError, keeping the SDK error as cause', async () => {
    const store = new DynamoStateStore(
      dynamo(() => conditionFailed()),
      'state',
    );
    const error = await store.createAgent(agent).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AlreadyExistsError);
    expect(error).toMatchObject({ entity: 'agent name', key: 'ci-bot', message: 'an agent named "ci-bot" already exists' });
    expect((error as Error).cause).toBeInstanceOf(ConditionalCheckFailedException);
  });

  it('name which claim was taken: the name, the principal, then the id', async () => {
    const takenOn = (call: number) =>
      new DynamoStateStore(
        dynamo((_, n) => (n === call ? conditionFailed() : {})),
        'state',
      );
    await expect(takenOn(2).createAgent(agent)).rejects.toMatchObject({ entity: 'principal', key: agent.principalArn });
    await expect(takenOn(3).createAgent(agent)).rejects.toMatchObject({ entity: 'agent', key: 'agt_1' });
  });

  it('report a missing agent or connection on update as NotFoundError', async () => {
    const store = new DynamoStateStore(
      dynamo(() => conditionFailed()),
      'state',
    );
    await expect(store.disableAgent('agt_1', 5)).rejects.toMatchObject({ name: 'NotFoundError', entity: 'agent', message: 'no agent agt_1' });
    await expect(store.setConnectionRevokedBefore('prod', 5)).rejects.toMatchObject({ entity: 'connection', message: 'no connection named "prod"' });
    // A conditional transition that does not hold is an answer, not an error.
    await expect(store.transitionGrant('gr_1', ['pending'], { status: 'active' })).resolves.toBeUndefined();
    await expect(store.bindFingerprint('fp', 'apr_1', undefined, 10)).resolves.toBe(false);
  });

  it('wrap any other SDK failure as DependencyUnavailableError with the SDK error as cause', async () => {
    const store = new DynamoStateStore(
      dynamo(() => throttled()),
      'state',
    );
    const error = await store.getConnection('prod').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect(error).toMatchObject({ dependency: 'state store', message: 'DynamoDB GetItem on state failed: ProvisionedThroughputExceededException: Rate exceeded' });
    expect((error as Error).cause).toBeInstanceOf(ProvisionedThroughputExceededException);
    await expect(store.createGrant(grant)).rejects.toBeInstanceOf(DependencyUnavailableError);
    await expect(store.putConnection(connection, 'replace')).rejects.toBeInstanceOf(DependencyUnavailableError);
  });

  it('give up on keys a batch read leaves unprocessed after five tries', async () => {
    let calls = 0;
    const store = new DynamoStateStore(
      dynamo((command) => {
        calls++;
        const keys = (command.input.RequestItems as Record<string, { Keys: unknown[] }>).state!.Keys;
        return { Responses: { state: [] }, UnprocessedKeys: { state: { Keys: keys } } };
      }),
      'state',
    );
    await expect(store.getProxyContext('agt_1', 'prod', 'gr_1')).rejects.toMatchObject({ name: 'DependencyUnavailableError', dependency: 'state store' });
    expect(calls).toBe(5);
  });

  it('proxy context: a read goes at once; reads asked for while it is on its way share the next BatchGetItem of their distinct keys, each answered with its own items', async () => {
    const sent: string[][] = [];
    const store = new DynamoStateStore(
      dynamo((command) => {
        const keys = (command.input.RequestItems as Record<string, { Keys: { pk: string }[] }>).state!.Keys.map((key) => key.pk);
        sent.push(keys);
        return {
          Responses: {
            state: keys.map((pk) =>
              pk.startsWith('AGENT#') ? { pk, id: pk.slice(6), name: pk, status: 'enabled' } : pk.startsWith('CONN#') ? { pk, name: 'prod' } : { pk, id: pk.slice(6), agentId: 'x' },
            ),
          },
        };
      }),
      'state',
    );
    const [first, second, third, other] = await Promise.all([
      store.getProxyContext('agt_1', 'prod', 'gr_1'),
      store.getProxyContext('agt_1', 'prod', 'gr_1'),
      store.getProxyContext('agt_1', 'prod', 'gr_1'),
      store.getProxyContext('agt_2', 'prod', 'gr_2'),
    ]);
    expect(sent).toEqual([
      ['AGENT#agt_1', 'CONN#prod', 'GRANT#gr_1'],
      ['AGENT#agt_1', 'CONN#prod', 'GRANT#gr_1', 'AGENT#agt_2', 'GRANT#gr_2'],
    ]);
    expect(second).toEqual(first);
    expect(third).toEqual(second);
    expect(third.agent).not.toBe(second.agent);
    expect(third.connection).not.toBe(second.connection);
    expect(other).toMatchObject({ agent: { id: 'agt_2' }, connection: { name: 'prod' }, grant: { id: 'gr_2' } });
    expect(first.agent).not.toHaveProperty('pk');
  });

  it('proxy context: a read asked for after a batch was sent is read again, never answered from it (a revoke counts on the next request)', async () => {
    let call = 0;
    const store = new DynamoStateStore(
      dynamo(() => {
        call++;
        return { Responses: { state: [{ pk: 'GRANT#gr_1', id: 'gr_1', status: call === 1 ? 'active' : 'revoked' }] } };
      }),
      'state',
    );
    const before = store.getProxyContext('agt_1', 'prod', 'gr_1');
    await new Promise((resolve) => setImmediate(resolve));
    // The first read is on its way; the revoke lands; the next request reads the state again.
    const after = store.getProxyContext('agt_1', 'prod', 'gr_1');
    expect((await before).grant?.status).toBe('active');
    expect((await after).grant?.status).toBe('revoked');
    expect(call).toBe(2);
  });

  it('proxy context: an outage refuses every read of the batch', async () => {
    const store = new DynamoStateStore(
      dynamo(() => throttled()),
      'state',
    );
    const reads = [store.getProxyContext('agt_1', 'prod', 'gr_1'), store.getProxyContext('agt_2', 'prod', 'gr_2')];
    for (const read of reads) await expect(read).rejects.toMatchObject({ name: 'DependencyUnavailableError', dependency: 'state store' });
  });

  it('record store: a taken id, a missing record and an outage each say so', async () => {
    const taken = new DynamoRecordStore(
      dynamo(() => conditionFailed()),
      'records',
    );
    await expect(taken.begin({ id: 'req_1', time: 1 } as never)).rejects.toMatchObject({ name: 'AlreadyExistsError', entity: 'request record' });
    await expect(taken.complete('req_1', { phase: 'complete' })).rejects.toMatchObject({ name: 'NotFoundError', entity: 'request record' });
    await expect(taken.markTranscriptStored('req_1')).rejects.toMatchObject({ name: 'NotFoundError', entity: 'spooled transcript' });
    const down = new DynamoRecordStore(
      dynamo(() => throttled()),
      'records',
    );
    await expect(down.get('req_1')).rejects.toMatchObject({ name: 'DependencyUnavailableError', dependency: 'record store' });
  });

  it('refuse a cursor the store did not issue with InvalidCursorError', async () => {
    const store = new DynamoRecordStore(
      dynamo(() => ({ Items: [] })),
      'records',
    );
    await expect(store.query({ agent: 'ci-bot', cursor: 'bm90LWEtY3Vyc29y' })).rejects.toBeInstanceOf(InvalidCursorError);
    expect(() => decodeCursor(encodeCursor({ partition: 3 }), 2)).toThrow(InvalidCursorError);
    expect(decodeCursor(encodeCursor({ partition: 1, key: { id: 'x' } }), 2)).toEqual({ partition: 1, key: { id: 'x' } });
  });
});

describe('S3 transcript store', () => {
  const s3 = (error: Error) => ({ send: () => Promise.reject(error) }) as unknown as S3Client;

  it('resolves when a transcript is already stored under the key (If-None-Match: never replaced)', async () => {
    const store = new S3TranscriptStore(s3(Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), { name: 'PreconditionFailed' })), 'bucket');
    await expect(store.put('k', '{}')).resolves.toBeUndefined();
  });

  it('turns any other failure into DependencyUnavailableError with cause', async () => {
    const cause = Object.assign(new Error('Service Unavailable'), { name: 'ServiceUnavailable' });
    const store = new S3TranscriptStore(s3(cause), 'bucket');
    await expect(store.put('k', '{}')).rejects.toMatchObject({ name: 'DependencyUnavailableError', dependency: 'transcript store', cause });
    await expect(store.get('k')).rejects.toMatchObject({ message: 'S3 GetObject bucket/k failed: ServiceUnavailable: Service Unavailable', cause });
    const missing = new S3TranscriptStore(s3(Object.assign(new Error('gone'), { name: 'NoSuchKey' })), 'bucket');
    await expect(missing.get('k')).resolves.toBeUndefined();
  });
});

describe('Step Functions and SNS', () => {
  const sfn = (error: Error) => ({ send: () => Promise.reject(error) }) as unknown as SFNClient;

  it('treat an execution or task that is already gone as done', async () => {
    await expect(new StepFunctionsWorkflows(sfn(new ExecutionDoesNotExist({ message: 'gone', ...meta })), { window: 'w', approval: 'a' }).stop('arn', 'why')).resolves.toBeUndefined();
    await expect(new StepFunctionsWorkflows(sfn(new TaskDoesNotExist({ message: 'gone', ...meta })), { window: 'w', approval: 'a' }).sendSuccess('token', {})).resolves.toBeUndefined();
  });

  it('wrap other failures as DependencyUnavailableError with cause', async () => {
    const cause = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    const workflows = new StepFunctionsWorkflows(sfn(cause), { window: 'w', approval: 'a' });
    await expect(workflows.startWindow('gr_1')).rejects.toMatchObject({ name: 'DependencyUnavailableError', dependency: 'workflows', cause });
    await expect(workflows.sendFailure('token', 'E', 'c')).rejects.toMatchObject({ message: 'Step Functions SendTaskFailure failed: ThrottlingException: Rate exceeded' });
    const sns = { send: () => Promise.reject(cause) } as unknown as SNSClient;
    await expect(new SnsNotifier(sns, 'topic').event('t', 's', 'x', {})).rejects.toMatchObject({ dependency: 'notifier', cause });
  });
});

describe('domain errors as refusals (status.ts, the one place)', () => {
  const refusal = (error: unknown) => {
    const mapped = asAirlockError(error);
    return { status: mapped.status, code: mapped.code, message: mapped.message };
  };

  it('keeps the codes and messages the store used to throw', () => {
    expect(refusal(new AlreadyExistsError('agent name', 'ci-bot'))).toEqual({ status: 409, code: 'agent_exists', message: 'an agent named "ci-bot" already exists' });
    expect(refusal(new AlreadyExistsError('agent', 'agt_1'))).toEqual({ status: 409, code: 'agent_exists', message: 'agent id agt_1 already exists' });
    expect(refusal(new AlreadyExistsError('principal', 'arn:aws:iam::1:role/x'))).toEqual({
      status: 409,
      code: 'principal_taken',
      message: 'principal arn:aws:iam::1:role/x already belongs to an agent',
    });
    expect(refusal(new AlreadyExistsError('connection', 'prod'))).toEqual({ status: 409, code: 'connection_exists', message: 'a connection named "prod" already exists' });
    expect(refusal(new AlreadyExistsError('grant', 'gr_1'))).toEqual({ status: 409, code: 'grant_exists', message: 'grant gr_1 exists' });
    expect(refusal(new AlreadyExistsError('approval', 'apr_1'))).toEqual({ status: 409, code: 'approval_exists', message: 'approval apr_1 exists' });
    expect(refusal(new NotFoundError('agent', 'agt_1'))).toEqual({ status: 404, code: 'agent_not_found', message: 'no agent agt_1' });
    expect(refusal(new NotFoundError('connection', 'prod'))).toEqual({ status: 404, code: 'connection_not_found', message: 'no connection named "prod"' });
    expect(refusal(new InvalidCursorError())).toEqual({ status: 400, code: 'invalid_query', message: 'cursor: not a cursor from a previous page' });
  });

  it('leaves failures (outages, record-store conflicts) a 500 that says nothing about internals', () => {
    const internal = { status: 500, code: 'internal', message: 'internal error; the request was not forwarded' };
    expect(refusal(new DependencyUnavailableError('state store', 'DynamoDB GetItem on state failed: x'))).toEqual(internal);
    expect(refusal(new AlreadyExistsError('request record', 'req_1'))).toEqual(internal);
    expect(refusalFor(new NotFoundError('spooled transcript', 'req_1'))).toBeUndefined();
    const refused = new AirlockError(403, 'forbidden', 'no');
    expect(asAirlockError(refused)).toBe(refused);
  });

  it('errorText names the error class unless it is the plain Error', () => {
    expect(errorText(new TypeError('bad'))).toBe('TypeError: bad');
    expect(errorText(new Error('plain'))).toBe('plain');
    expect(errorText(new TypeError('bad'), { name: false })).toBe('bad');
    expect(errorText('text')).toBe('text');
  });
});
