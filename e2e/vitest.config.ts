import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@hm3/e2e',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    passWithNoTests: true,
    // The real Kafka broker and FerretDB from tools/infra (HM3_KAFKA_BROKERS / HM3_MONGO_URL).
    globalSetup: [fileURLToPath(import.meta.resolve('@hm3/infra/vitest-setup'))],
    // Whole searches over four processes, with kills and consumer-group rebalances.
    testTimeout: 600_000,
    hookTimeout: 180_000,
    // One file at a time, and the tests of a file in order: they share one set of services.
    fileParallelism: false,
    sequence: { concurrent: false },
  },
});
