import { defineConfig } from 'vitest/config';

// The checks create the Python tool venv on first use (torch: minutes), hence the long timeouts.
export default defineConfig({
  test: {
    name: '@hm3/conformance',
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 1_800_000,
    hookTimeout: 1_800_000,
  },
});
