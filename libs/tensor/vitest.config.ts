import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@hm3/tensor',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    passWithNoTests: true,
    testTimeout: 30_000,
  },
});
