// The Go validator (validator/), built once per machine and source version into
// ~/.cache/hm3/bin/deploy-check-<hash of go.mod, go.sum and the .go files>, under a flock so that
// parallel test files wait for one build instead of racing. A changed source gets a new name, so a
// stale binary is never reused.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FailedPreconditionError, UnavailableError } from '@hm3/errors';
import { cacheDir, VALIDATOR_DIR } from './paths.js';

/** The sources whose hash names the binary, sorted. */
export function validatorSources(dir = VALIDATOR_DIR): string[] {
  const go = readdirSync(dir)
    .filter((f) => f.endsWith('.go'))
    .sort();
  return ['go.mod', 'go.sum', ...go];
}

export function validatorBinaryPath(dir = VALIDATOR_DIR, env: NodeJS.ProcessEnv = process.env): string {
  const hash = createHash('sha256');
  for (const file of validatorSources(dir)) {
    hash
      .update(file)
      .update('\0')
      .update(readFileSync(join(dir, file)))
      .update('\0');
  }
  return join(cacheDir(env), 'bin', `deploy-check-${hash.digest('hex').slice(0, 12)}`);
}

/**
 * Returns the validator binary, building it first when missing (`go build`; the first build on a
 * machine downloads the modules through the Go module proxy into the Go module cache).
 */
export function ensureValidatorBinary(options: { progress?: (line: string) => void } = {}): string {
  const binary = validatorBinaryPath();
  if (existsSync(binary)) return binary;
  mkdirSync(join(cacheDir(), 'bin'), { recursive: true });
  options.progress?.(`deploy-check: building the validator into ${binary} (first run: minutes)`);
  // Under the lock: build only if no other process built it meanwhile; stage, then rename.
  const script = 'test -x "$1" || { go build -trimpath -o "$1.tmp.$$" . && mv "$1.tmp.$$" "$1"; }';
  const result = spawnSync('flock', [`${binary}.lock`, 'sh', '-c', script, 'sh', binary], {
    cwd: VALIDATOR_DIR,
    env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly -buildvcs=false' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error !== undefined) {
    const code = (result.error as NodeJS.ErrnoException).code;
    throw new FailedPreconditionError(
      code === 'ENOENT'
        ? 'deploy-check: `flock` (util-linux) is not installed'
        : `deploy-check: could not run the validator build: ${result.error.message}`,
      { binary },
      result.error,
    );
  }
  if (result.status !== 0 || !existsSync(binary)) {
    const tail = `${result.stdout}${result.stderr}`.split('\n').slice(-30).join('\n');
    throw new UnavailableError(
      `deploy-check: go build of ${VALIDATOR_DIR} failed (exit ${result.status}):\n${tail}`,
      {
        binary,
      },
    );
  }
  return binary;
}
