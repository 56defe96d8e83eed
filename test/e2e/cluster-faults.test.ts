// The harness under faults: a dead apiserver, a stale state dir, a crash at
// start-up. Uses its own AIRLOCK_HOME so the shared cluster is untouched.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { down, isAlive, readState, up } from '../cluster/harness.ts';

const cluster = inject('cluster');

describe.skipIf(!cluster)('test cluster harness under faults', () => {
  const home = mkdtempSync(join(tmpdir(), 'airlock-harness-faults-'));
  afterAll(async () => {
    await down({ home, quiet: true });
    rmSync(home, { recursive: true, force: true });
  });

  it('is idempotent, recovers from a dead apiserver, and leaves no process behind', async () => {
    const first = await up({ home });
    expect(first.started).toBe(true);
    const again = await up({ home });
    expect(again.started).toBe(false);
    expect(again.info.server).toBe(first.info.server);

    const before = readState(home)!;
    process.kill(before.pids.apiserver, 'SIGKILL');
    const recovered = await up({ home });
    expect(recovered.started).toBe(true);
    const after = readState(home)!;
    expect(isAlive(before.pids.etcd)).toBe(false); // the old etcd was stopped, not orphaned
    expect(existsSync(before.stateDir)).toBe(false);

    await down({ home });
    expect(isAlive(after.pids.apiserver)).toBe(false);
    expect(isAlive(after.pids.etcd)).toBe(false);
    expect(existsSync(after.stateDir)).toBe(false);
    expect(readState(home)).toBeUndefined();
  });

  it('reports a crashed apiserver with the tail of its log and cleans up', async () => {
    await expect(up({ home, extraApiserverArgs: ['--no-such-flag'] })).rejects.toThrow(/kube-apiserver exited during start-up[\s\S]*unknown flag: --no-such-flag/);
    expect(readState(home)).toBeUndefined();
  });
});
