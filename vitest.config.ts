import { defineConfig } from 'vitest/config';

// Runs every package's tests in one vitest process (used by `npm test`); each package can also
// run alone with `nx test @hm3/<name>`.
export default defineConfig({
  test: {
    projects: ['libs/*', 'services/*', 'tools/*', 'e2e'],
  },
});
