// The in-memory ports keep the adapters' contracts, or unit tests built on them prove nothing.
import { describe, expect, it } from 'vitest';
import type { Grant } from '../../lambdas/core/model.ts';
import { MemoryRecordStore, MemoryStateStore, MemoryTranscriptStore } from '../support/memory.ts';

const grant = (id: string, requestedAt: number): Grant => ({ id, agentId: 'agt_1', agentName: 'a', connection: 'c', status: 'pending', requestedAt, durationSeconds: 60, reason: 'r' }) as Grant;

describe('in-memory ports', () => {
  it('transitions are conditional on the current status, and listings are newest first', async () => {
    const state = new MemoryStateStore();
    await state.createGrant(grant('g1', 1));
    await state.createGrant(grant('g2', 2));
    await expect(state.createGrant(grant('g1', 3))).rejects.toMatchObject({ name: 'AlreadyExistsError', entity: 'grant', key: 'g1' });
    expect(await state.transitionGrant('g1', ['active'], { status: 'revoked' })).toBeUndefined();
    expect((await state.transitionGrant('g1', ['pending'], { status: 'active' }))?.status).toBe('active');
    expect((await state.listGrants({ agentId: 'agt_1' })).map((g) => g.id)).toEqual(['g2', 'g1']);
    // Callers get copies: changing one changes nothing stored.
    (await state.getGrant('g1'))!.status = 'revoked';
    expect((await state.getGrant('g1'))!.status).toBe('active');
  });

  it('fingerprint binding is compare-and-set; transcripts are write-once', async () => {
    const state = new MemoryStateStore();
    expect(await state.bindFingerprint('fp', 'apr_1', undefined, 0)).toBe(true);
    expect(await state.bindFingerprint('fp', 'apr_2', undefined, 0)).toBe(false);
    expect(await state.bindFingerprint('fp', 'apr_2', 'apr_1', 0)).toBe(true);
    const transcripts = new MemoryTranscriptStore();
    await transcripts.put('k', 'one');
    await expect(transcripts.put('k', 'two')).resolves.toBeUndefined();
    expect(await transcripts.get('k')).toBe('one');
  });

  it('any method can be made to fail or hang, and cleared', async () => {
    const records = new MemoryRecordStore();
    records.faults.fail('begin');
    await expect(records.begin({ id: 'r', time: 1 } as never)).rejects.toThrow('begin unavailable');
    records.faults.hang('begin');
    const outcome = await Promise.race([records.begin({ id: 'r', time: 1 } as never).then(() => 'answered'), new Promise((resolve) => setTimeout(resolve, 20, 'hung'))]);
    expect(outcome).toBe('hung');
    records.faults.clear();
    await records.begin({ id: 'r', time: 1 } as never);
    expect(records.records.has('r')).toBe(true);
  });
});
