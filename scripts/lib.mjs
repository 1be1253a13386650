// Shared steps of the README's two commands (`npm run demo`, `npm test`). Plain Node with no
// dependencies: these scripts run before `npm ci` has installed anything.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs a command in the repo root with inherited output; throws with the command on failure. */
export function sh(command, args, options = {}) {
  const result = spawnSync(command, args, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, NX_DAEMON: 'false', ...options.env },
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    const error = new Error(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}`);
    error.exitCode = result.status ?? 1;
    throw error;
  }
}

/** Times a phase and prints its seconds, so CI logs show where the time goes. */
export async function phase(name, body) {
  const started = Date.now();
  console.log(`\n== ${name}`);
  try {
    return await body();
  } finally {
    console.log(`== ${name}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}

/** `npm ci` when node_modules is missing or older than the lock file. */
export function installIfNeeded() {
  const marker = join(root, 'node_modules', '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) {
    console.log('dependencies are installed');
    return;
  }
  sh('npm', ['ci', '--no-audit', '--no-fund']);
}

/** Builds every package (Nx caches, so an unchanged tree builds in seconds). */
export function build() {
  sh('npx', ['nx', 'run-many', '-t', 'build', '--outputStyle=static']);
}

export function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}
