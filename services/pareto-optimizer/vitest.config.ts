import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@hm3/pareto-optimizer',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    passWithNoTests: true,
    // The MongoDB-compatible server for the journal's contract (HM3_MONGO_URL).
    globalSetup: [fileURLToPath(import.meta.resolve('@hm3/infra/vitest-setup'))],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
