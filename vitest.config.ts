import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/cluster.ts'],
    testTimeout: 60_000,
    hookTimeout: 240_000,
    pool: 'forks',
    // The fault tests make the gateway log errors on purpose; POWERTOOLS_LOG_LEVEL=INFO npm test shows them.
    env: { POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'SILENT' },
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
