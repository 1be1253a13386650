import { defineConfig } from 'vitest/config';

// Runs every package's tests in one vitest process (used by `npm test`); each package can also
// run alone with `nx test @hm3/<name>`. The whole-system suite (e2e/: four services as processes,
// ~6 minutes per scenario) runs with `npm run e2e`; it is not in `npm test` while its budget-60
// scenario is red (issue 12 stays open for it: front 5 members vs 6 non-dominated stored scores).
export default defineConfig({
  test: {
    projects: ['libs/*', 'services/*', 'tools/*'],
  },
});
