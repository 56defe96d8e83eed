import { describe, expect, it } from 'vitest';
import { hashAgentKey, newAgentKey, verifyAgentKey } from '../../lambdas/core/agent-keys.ts';

describe('agent keys', () => {
  it('are stored only as a salted scrypt hash and verify', async () => {
    const key = newAgentKey();
    const hash = await hashAgentKey(key);
    expect(hash).not.toContain(key);
    expect(hash).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(await hashAgentKey(key)).not.toBe(hash);
    expect(await verifyAgentKey(key, hash)).toBe(true);
    expect(await verifyAgentKey(`${key}x`, hash)).toBe(false);
    expect(await verifyAgentKey('wrong', hash)).toBe(false);
    expect(await verifyAgentKey(key, 'garbage')).toBe(false);
  });
});
