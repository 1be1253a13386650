import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@hm3/evaluator',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    passWithNoTests: true,
    // The real Kafka broker and MongoDB-compatible server for the Kafka tests (HM3_KAFKA_BROKERS / HM3_MONGO_URL).
    globalSetup: [fileURLToPath(import.meta.resolve('@hm3/infra/vitest-setup'))],
    testTimeout: 120_000,
    // The external evaluator's Python venv is created on the first run (a pip install).
    hookTimeout: 600_000,
    // 2 cores are shared: one file at a time.
    fileParallelism: false,
  },
});
