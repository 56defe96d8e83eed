// core/on-first-use.ts: a part loaded on first use is loaded once, and a load
// that fails refuses the request that needed it and is tried again next time.
import { describe, expect, it } from 'vitest';
import { onFirstUse, partOnFirstUse } from '../../lambdas/core/on-first-use.ts';
import { AirlockError } from '../../lambdas/core/status.ts';

describe('onFirstUse', () => {
  it('loads once, on the first call', async () => {
    let loads = 0;
    const load = onFirstUse(
      async () => ({ loaded: ++loads }),
      (error) => new Error(String(error)),
    );
    expect(loads).toBe(0);
    const [first, second] = await Promise.all([load(), load()]);
    expect(first).toBe(second);
    expect(await load()).toEqual({ loaded: 1 });
    expect(loads).toBe(1);
  });

  it('a failed load is the caller’s error, and the next call loads again', async () => {
    let attempts = 0;
    const load = partOnFirstUse('gateway_unavailable', 'the YAML parser', async () => {
      attempts++;
      if (attempts === 1) throw new Error("Cannot find module 'chunk-X.mjs'");
      return 'parser';
    });
    const refused = await load().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AirlockError);
    expect(refused).toMatchObject({ status: 503, code: 'gateway_unavailable' });
    expect((refused as Error).message).toMatch(/could not load the YAML parser \(Cannot find module 'chunk-X.mjs'\), so the request was refused; nothing was forwarded or changed/);
    expect(await load()).toBe('parser');
    expect(attempts).toBe(2);
  });
});
