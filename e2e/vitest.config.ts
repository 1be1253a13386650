import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@hm3/e2e',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    passWithNoTests: true,
    // FerretDB from tools/infra (shared, a database per scenario) and a Kafka broker of the run's own
    // (tools/infra's, private state and ports): HM3_MONGO_URL / HM3_KAFKA_BROKERS for the tests.
    globalSetup: [fileURLToPath(new URL('./src/global-setup.ts', import.meta.url))],
    // Whole searches over four processes, with kills and consumer-group rebalances.
    testTimeout: 600_000,
    hookTimeout: 180_000,
    // One file at a time, and the tests of a file in order: they share one set of services.
    fileParallelism: false,
    sequence: { concurrent: false },
  },
});
