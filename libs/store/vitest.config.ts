import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@hm3/store',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Starts FerretDB (and Kafka) unless running, and holds a lease on them for the run.
    globalSetup: [fileURLToPath(import.meta.resolve('@hm3/infra/vitest-setup'))],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
