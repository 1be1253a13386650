// `npm run demo`: installs and builds what is missing, then runs `hm3 demo`, the largest real job
// HM3 can do today (see the README).
import { build, installIfNeeded, phase, sh } from './lib.mjs';

try {
  await phase('install', () => installIfNeeded());
  await phase('build', () => build());
  await phase('demo', () => sh('node', ['tools/cli/bin/hm3.js', 'demo', ...process.argv.slice(2)]));
} catch (error) {
  console.error(`\nnpm run demo failed: ${error.message}`);
  process.exit(error.exitCode ?? 1);
}
