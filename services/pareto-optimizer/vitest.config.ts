import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@hm3/pareto-optimizer',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    passWithNoTests: true,
  },
});
