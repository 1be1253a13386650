// `npm run proto:check` (repository root): fails when the contracts and the committed code disagree.
//
// 1. Regenerates libs/proto/src/gen and fails if git then sees any change there (modified, deleted or
//    untracked files): generated code is committed and must match proto/ exactly.
// 2. `buf lint` (STANDARD + COMMENTS; proto/onnx is excluded in buf.yaml).
// 3. `buf breaking` (FILE rules) against the main branch. When there is nothing to compare against
//    (main has no proto/ yet, as on the commit that introduces the contracts, or no main branch is
//    present in this clone) it says so and passes. HM3_PROTO_BREAKING_AGAINST=<buf input> overrides
//    the comparison target (e.g. '.git#ref=<sha>').
//
// Runs every step and reports each; exits 1 if any failed.
import { execFileSync, spawnSync } from 'node:child_process';
import { buf, bufBin, generate, repoRoot } from './generate.mjs';

const GEN = 'libs/proto/src/gen';

function git(args) {
  return execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8' });
}

function gitOk(args) {
  return spawnSync('git', args, { cwd: repoRoot, stdio: 'ignore' }).status === 0;
}

function runBuf(args) {
  const result = spawnSync(bufBin, args, { cwd: repoRoot, stdio: 'inherit' });
  if (result.error) throw result.error;
  return result.status === 0;
}

function checkDrift() {
  const changed = generate();
  if (changed.length > 0) console.log(`regenerated: ${changed.join(', ')}`);
  const status = git(['status', '--porcelain', '--untracked-files=all', '--', GEN]).trim();
  if (status === '') {
    console.log(`${GEN} matches proto/`);
    return true;
  }
  console.error(`${GEN} differs from what proto/ generates (commit the regenerated files):\n${status}`);
  const diff = git(['diff', '--stat', '--', GEN]).trim();
  if (diff !== '') console.error(diff);
  return false;
}

function checkLint() {
  const ok = runBuf(['lint']);
  console.log(ok ? 'buf lint: ok' : 'buf lint: FAILED');
  return ok;
}

/** The buf input to compare against, or undefined (with the reason printed) when there is none. */
function breakingTarget() {
  const override = process.env.HM3_PROTO_BREAKING_AGAINST;
  if (override) return override;
  const candidates = [
    { ref: 'refs/heads/main', input: '.git#branch=main' },
    { ref: 'refs/remotes/origin/main', input: '.git#ref=refs/remotes/origin/main' },
  ];
  const found = candidates.find((c) => gitOk(['rev-parse', '--verify', '--quiet', `${c.ref}^{commit}`]));
  if (!found) {
    console.log('buf breaking: no main branch in this clone: nothing to compare against, skipped');
    return undefined;
  }
  const protoOnMain = git(['ls-tree', '-d', '--name-only', found.ref, '--', 'proto']).trim();
  if (protoOnMain === '') {
    console.log(
      `buf breaking: ${found.ref} has no proto/ yet (the contracts are new): nothing to compare against, skipped`,
    );
    return undefined;
  }
  return found.input;
}

function checkBreaking() {
  const against = breakingTarget();
  if (against === undefined) return true;
  const ok = runBuf(['breaking', '--against', against]);
  console.log(ok ? `buf breaking against ${against}: ok` : `buf breaking against ${against}: FAILED`);
  return ok;
}

// Make sure buf itself runs before blaming the protos.
buf(['--version']);
const results = [
  ['generated code', checkDrift()],
  ['lint', checkLint()],
  ['breaking', checkBreaking()],
];
const failed = results.filter(([, ok]) => !ok).map(([name]) => name);
if (failed.length > 0) {
  console.error(`proto:check FAILED: ${failed.join(', ')}`);
  process.exit(1);
}
console.log('proto:check: ok');
