import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@hm3/deploy-check',
    include: ['src/**/*.test.ts'],
    // The first run on a machine builds the Go validator (module downloads, then compiling
    // k8s.io/api and kustomize: minutes on two cores) and creates the hadolint venv.
    hookTimeout: 20 * 60_000,
    testTimeout: 5 * 60_000,
  },
});
