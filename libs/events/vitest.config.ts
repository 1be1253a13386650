import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@hm3/events',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    passWithNoTests: true,
    // The real Kafka broker and MongoDB-compatible server (HM3_KAFKA_BROKERS / HM3_MONGO_URL).
    globalSetup: [fileURLToPath(import.meta.resolve('@hm3/infra/vitest-setup'))],
    // The Kafka tests wait for rebalances, child processes and a broker restart.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // One file at a time: the Kafka file restarts the shared broker; 2 cores are shared.
    fileParallelism: false,
  },
});
