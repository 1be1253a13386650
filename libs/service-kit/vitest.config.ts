import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@hm3/service-kit',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    passWithNoTests: true,
  },
});
