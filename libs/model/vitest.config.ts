import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Model tests run real onnxruntime sessions (and, in conformance, transformers): generous timeouts.
  test: {
    name: '@hm3/model',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    passWithNoTests: true,
    testTimeout: 120_000,
  },
});
