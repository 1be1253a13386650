import { defineConfig } from 'vitest/config';

// Runs every package's tests in one vitest process (used by `npm test`); each package can also
// run alone with `nx test @hm3/<name>`. The whole-system suite (e2e/: four services as processes) is
// not a project here: `npm test` (scripts/run-tests.mjs) runs it after this run, alone, so its
// services do not compete with the other tests for the CPU; `npm run e2e` runs it by itself.
export default defineConfig({
  test: {
    projects: ['libs/*', 'services/*', 'tools/*'],
  },
});
