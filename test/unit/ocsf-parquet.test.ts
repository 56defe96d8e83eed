// The scheduled Security Lake export (core/ocsf-parquet.ts) on the in-memory
// record store: the last whole period, OCSF Parquet files per event day under
// region=/accountId=/eventDay=, read back with hyparquet (the writer's companion reader).
import { parquetReadObjects } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { exportPeriodToSecurityLake, securityLakeKey } from '../../lambdas/core/ocsf-parquet.ts';
import type { RequestRecord } from '../../lambdas/core/model.ts';
import { MemoryRecordStore } from '../support/memory.ts';

const MIDNIGHT = Date.UTC(2026, 10, 21);

function record(id: string, time: number, decision: RequestRecord['decision'], status: number): RequestRecord {
  return {
    id,
    time,
    agentId: 'agt_1',
    agent: 'deployer',
    connection: 'prod',
    method: 'GET',
    path: '/api/v1/namespaces/prod/pods',
    query: 'limit=500',
    verb: 'list',
    apiGroup: '',
    resource: 'pods',
    subresource: '',
    namespace: 'prod',
    name: '',
    decision,
    reason: 'rule 1 (allow)',
    phase: 'complete',
    status,
    durationMs: 9,
    transcriptKey: `t/${id}.json`,
  };
}

describe('OCSF Parquet for Security Lake', () => {
  it('writes the last whole period, one file per event day, in OCSF shape', async () => {
    const records = new MemoryRecordStore();
    // The period is 00:00–01:00 (it ends 15 minutes of lag before now, on the hour): one record before it, one after.
    for (const item of [
      record('req_before', MIDNIGHT - 1_800_000, 'allowed', 200),
      record('req_a', MIDNIGHT + 300_000, 'allowed', 200),
      record('req_b', MIDNIGHT + 600_000, 'denied', 403),
      record('req_late', MIDNIGHT + 3_700_000, 'allowed', 200),
    ])
      await records.begin(item);
    const written = new Map<string, Uint8Array>();
    const result = await exportPeriodToSecurityLake({
      records,
      put: async (key, body) => void written.set(key, body),
      prefix: 'ext/airlock/',
      region: 'eu-west-1',
      accountId: '123456789012',
      cloudProvider: 'AWS',
      periodMs: 3_600_000,
      lagMs: 15 * 60_000,
      now: MIDNIGHT + 3_600_000 + 20 * 60_000,
    });
    expect(result).toMatchObject({ from: MIDNIGHT, to: MIDNIGHT + 3_600_000, events: 2 });
    expect([...written.keys()]).toEqual(['ext/airlock/region=eu-west-1/accountId=123456789012/eventDay=20261121/airlock-20261121T000000000Z.parquet']);
    const day2 = written.get(securityLakeKey('ext/airlock', { region: 'eu-west-1', accountId: '123456789012' }, MIDNIGHT, 'airlock-20261121T000000000Z.parquet'))!;
    const rows = await parquetReadObjects({ file: day2.buffer.slice(day2.byteOffset, day2.byteOffset + day2.byteLength) as ArrayBuffer });
    expect(rows.map((row) => (row as { metadata: { uid: string } }).metadata.uid)).toEqual(['req_a', 'req_b']);
    expect(rows[1]).toMatchObject({
      class_uid: 6003,
      category_uid: 6,
      activity_id: 2,
      type_uid: 600302n,
      status_id: 2,
      status_code: '403',
      metadata: { uid: 'req_b', version: '1.3.0', product: { name: 'Airlock' } },
      actor: { user: { name: 'deployer', uid: 'agt_1' } },
      api: { operation: 'list', response: { code: 403 } },
      http_request: { http_method: 'GET', url: { path: '/api/v1/namespaces/prod/pods', query_string: 'limit=500' } },
      resources: [{ type: 'pods', namespace: 'prod' }],
      cloud: { provider: 'AWS', region: 'eu-west-1', account: { uid: '123456789012' } },
      unmapped: { airlock_decision: 'denied' },
    });
    expect((rows[1] as { time: Date }).time).toEqual(new Date(MIDNIGHT + 600_000));
  });
});
