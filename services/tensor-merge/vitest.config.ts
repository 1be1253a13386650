import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@hm3/tensor-merge',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    passWithNoTests: true,
    // The real Kafka broker and MongoDB-compatible server for the consumer test (HM3_KAFKA_BROKERS / HM3_MONGO_URL).
    globalSetup: [fileURLToPath(import.meta.resolve('@hm3/infra/vitest-setup'))],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // 2 cores are shared: one file at a time.
    fileParallelism: false,
  },
});
