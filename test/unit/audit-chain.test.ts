// Tamper evidence (core/audit-chain.ts) on the in-memory ports: records sealed
// concurrently by several agents form one gap-free chain per agent and day; an
// edited record, a deleted one, a replaced or missing transcript are each found.
import { describe, expect, it } from 'vitest';
import { CHAIN_START, chainPartition, partitionOwns, sealRecord, verifyChains } from '../../lambdas/core/audit-chain.ts';
import type { RequestRecord } from '../../lambdas/core/model.ts';
import { MemoryRecordStore, MemoryTranscriptStore } from '../support/memory.ts';

const DAY = Date.UTC(2026, 10, 20);

function record(id: string, agent: string, time: number): RequestRecord {
  return {
    id,
    time,
    agentId: `agt_${agent}`,
    agent,
    connection: 'prod',
    method: 'GET',
    path: '/api/v1/namespaces/default/pods',
    query: '',
    verb: 'list',
    apiGroup: '',
    resource: 'pods',
    subresource: '',
    namespace: 'default',
    name: '',
    decision: 'allowed',
    reason: 'rule 1 (allow verbs [list])',
    phase: 'started',
    status: 200,
    transcriptKey: `transcripts/prod/${id}.json`,
  };
}

async function world(count: number, agents: string[]) {
  const records = new MemoryRecordStore();
  const transcripts = new MemoryTranscriptStore();
  const all = agents.flatMap((agent) => Array.from({ length: count }, (_, index) => record(`req_${agent}_${index}`, agent, DAY + index * 1000)));
  for (const item of all) await records.begin(item);
  // All at once: the same agent's completions race for the next place in its chain.
  const sealed = await Promise.all(
    all.map(async (item) => {
      const transcript = JSON.stringify({ id: item.id, response: { status: 200 } });
      await transcripts.put(item.transcriptKey!, transcript);
      return sealRecord(records, item, transcript, () => DAY + 86_000_000, { phase: 'complete' });
    }),
  );
  const verify = async () =>
    verifyChains({ since: DAY, records: [...records.records.values()], heads: await records.listChainHeads(DAY), readTranscript: async (item) => transcripts.get(item.transcriptKey!) });
  return { records, transcripts, sealed, verify };
}

describe('the record hash chain', () => {
  it('gives each agent its own gap-free chain per day, whatever order the completions land in', async () => {
    const { records, sealed, verify } = await world(12, ['alpha', 'beta']);
    expect(sealed.every((outcome) => outcome.chainError === undefined)).toBe(true);
    const alpha = [...records.records.values()].filter((item) => item.agent === 'alpha').map((item) => item.chain!);
    expect(alpha.map((link) => link.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, index) => index + 1));
    expect(new Set(alpha.map((link) => link.partition))).toEqual(new Set([chainPartition({ connection: 'prod', agentId: 'agt_alpha', time: DAY })]));
    expect(alpha.find((link) => link.seq === 1)!.prev).toBe(CHAIN_START);
    expect(records.heads.size).toBe(2);
    const report = await verify();
    expect(report).toMatchObject({ records: 24, partitions: 2, transcripts: 24, problems: [] });
    for (const item of records.records.values()) expect(item.transcriptSha256).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("takes an agent's many concurrent completions in turn in this process: none left unchained, one chain", async () => {
    // 16 kubectl-style parallel requests of one agent used to race for the head and give up after 40 tries.
    const { records, sealed, verify } = await world(64, ['alpha']);
    expect(sealed.map((outcome) => outcome.chainError).filter(Boolean)).toEqual([]);
    expect(records.heads.size).toBe(1);
    expect((await verify()).problems).toEqual([]);
  });

  it("names each process's chains by writer, and a chain owns only its connection's, agent's and day's records", () => {
    const item = { connection: 'prod', agentId: 'agt_alpha', time: DAY + 5000 };
    const mine = chainPartition(item);
    expect(mine).toMatch(/^prod\/agt_alpha\/w[A-Za-z0-9_-]{8}\/2026-11-20$/);
    expect(partitionOwns(mine, item)).toBe(true);
    expect(partitionOwns(chainPartition(item, 'wOtherInst'), item)).toBe(true);
    expect(partitionOwns(mine, { ...item, agentId: 'agt_beta' })).toBe(false);
    expect(partitionOwns(mine, { ...item, connection: 'staging' })).toBe(false);
    expect(partitionOwns(mine, { ...item, time: DAY + 86_400_000 })).toBe(false);
    expect(partitionOwns(`${mine}/extra`, item)).toBe(false);
  });

  it('finds an edited record', async () => {
    const { records, verify } = await world(4, ['alpha']);
    records.records.get('req_alpha_2')!.decision = 'denied';
    expect((await verify()).problems).toEqual([expect.objectContaining({ kind: 'edited', recordId: 'req_alpha_2' })]);
  });

  it('finds a deleted record, in the middle or at the end', async () => {
    const { records, verify } = await world(4, ['alpha']);
    const last = [...records.records.values()].find((item) => item.chain!.seq === 4)!;
    const middle = [...records.records.values()].find((item) => item.chain!.seq === 2)!;
    records.records.delete(middle.id);
    records.records.delete(last.id);
    const problems = (await verify()).problems;
    expect(problems.map((problem) => [problem.kind, problem.seq])).toEqual([
      ['gap', 2],
      ['gap', 4],
    ]);
  });

  it('finds a replaced and a missing transcript', async () => {
    const { transcripts, verify } = await world(3, ['alpha']);
    transcripts.objects.set('transcripts/prod/req_alpha_0.json', JSON.stringify({ id: 'req_alpha_0', response: { status: 404 } }));
    transcripts.objects.delete('transcripts/prod/req_alpha_1.json');
    const problems = (await verify()).problems;
    expect(problems.map((problem) => [problem.kind, problem.recordId])).toEqual(
      expect.arrayContaining([
        ['transcript-replaced', 'req_alpha_0'],
        ['transcript-missing', 'req_alpha_1'],
      ]),
    );
    expect(problems).toHaveLength(2);
  });

  it('reports a completed record without a link, and leaves one still in flight alone', async () => {
    const { records, verify } = await world(2, ['alpha']);
    await records.begin(record('req_open', 'alpha', DAY + 50_000));
    const stripped = records.records.get('req_alpha_1')!;
    delete stripped.chain;
    const report = await verify();
    expect(report.unfinished).toEqual(['req_open']);
    expect(report.problems.map((problem) => problem.kind).sort()).toEqual(['gap', 'unchained']);
  });

  it('still completes the record when the chain cannot be joined', async () => {
    const records = new MemoryRecordStore();
    const item = record('req_x', 'alpha', DAY);
    await records.begin(item);
    records.faults.fail('chainHead');
    const outcome = await sealRecord(records, item, '{}', () => DAY, { phase: 'complete' });
    expect(outcome.chainError).toBeDefined();
    expect(records.records.get('req_x')).toMatchObject({ phase: 'complete', transcriptSha256: expect.stringMatching(/^sha256:/) });
    expect(records.records.get('req_x')!.chain).toBeUndefined();
  });
});
