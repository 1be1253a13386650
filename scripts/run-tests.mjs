// `npm test`: installs and builds what is missing, starts the real Kafka broker and FerretDB when they
// are not running, runs every test of the workspace (infra-backed ones included) in one vitest run,
// prints the counts, and stops the servers it started.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, installIfNeeded, phase, readJson, root, sh } from './lib.mjs';

const extraArgs = process.argv.slice(2);
/** Counts over every vitest run of this call. */
const totals = { reports: 0, passed: 0, failed: 0, skipped: 0 };
/** Servers this run started, and so stops at the end. */
const started = [];
let exitCode = 0;

try {
  await phase('install', () => installIfNeeded());
  await phase('build', () => build());
  await phase('infra up', async () => {
    const { startKafka, startFerretDb } = await import(join(root, 'tools/infra/dist/index.js'));
    for (const [name, start] of [
      ['Kafka', startKafka],
      ['FerretDB', startFerretDb],
    ]) {
      const outcome = await start();
      if (outcome.started) started.push(name);
      else console.log(`${name} is already running: using it`);
    }
  });
  let failure;
  await phase('test', () => runVitest(extraArgs)).catch((error) => (failure = error));
  // The whole-system suite (e2e/: the four services as processes over Kafka and FerretDB) runs after
  // the rest (also when some of those failed), alone, so its services do not compete with other
  // tests for the CPU. Skipped when arguments select tests, or with HM3_E2E=0.
  if (extraArgs.length === 0 && process.env.HM3_E2E !== '0')
    await phase('e2e', () => runVitest(['--root', 'e2e'])).catch((error) => (failure ??= error));
  if (failure) throw failure;
} catch (error) {
  console.error(`\nnpm test failed: ${error.message}`);
  exitCode = error.exitCode ?? 1;
} finally {
  if (started.length > 0) {
    await phase('infra down', async () => {
      const { stopKafka, stopFerretDb } = await import(join(root, 'tools/infra/dist/index.js'));
      if (started.includes('Kafka')) await stopKafka({ removeData: true });
      if (started.includes('FerretDB')) await stopFerretDb({ removeData: true });
    });
  }
}
if (totals.reports > 1)
  console.log(`\ntests (all): ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(exitCode);

/** One vitest run with a JSON report; prints its counts and adds them to the totals. */
function runVitest(args) {
  const reportDir = mkdtempSync(join(tmpdir(), 'hm3-test-'));
  const report = join(reportDir, 'vitest.json');
  try {
    sh('npx', [
      'vitest',
      'run',
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
      ...args,
    ]);
  } finally {
    printCounts(report);
    rmSync(reportDir, { recursive: true, force: true });
  }
}

/** One plain closing line with the counts, readable by any CI that looks for "N passed, N failed". */
function printCounts(reportPath) {
  try {
    const r = readJson(reportPath);
    // A file whose setup failed has no failed test, only skipped ones: count it as a failure.
    const brokenFiles = r.testResults.filter(
      (file) => file.status === 'failed' && !file.assertionResults.some((t) => t.status === 'failed'),
    ).length;
    const failed = r.numFailedTests + brokenFiles;
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`\ntests: ${r.numPassedTests} passed, ${failed} failed, ${skipped} skipped`);
    totals.reports++;
    totals.passed += r.numPassedTests;
    totals.failed += failed;
    totals.skipped += skipped;
    if (brokenFiles > 0) console.log(`(${brokenFiles} test files failed outside any test, e.g. in setup)`);
  } catch {
    console.log('\ntests: no report was written (vitest did not finish)');
  }
}
