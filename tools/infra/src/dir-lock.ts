// A cross-process lock: `mkdir` is atomic, so the process that creates the folder holds the lock. The
// holder's pid sits inside; a lock whose holder died is taken over. Several vitest processes calling
// ensureKafka() at once are serialised by it.
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { UnavailableError } from '@hm3/errors';
import { isPidAlive } from './process-control.js';

export interface DirLockOptions {
  /** How long to wait for the holder (an install can take minutes). */
  timeoutMs?: number;
  pollMs?: number;
}

/** Runs `fn` while holding the lock at `lockDir`. */
export async function withDirLock<T>(
  lockDir: string,
  fn: () => Promise<T>,
  options: DirLockOptions = {},
): Promise<T> {
  const release = await acquireDirLock(lockDir, options);
  try {
    return await fn();
  } finally {
    release();
  }
}

/** Takes the lock; returns the function that releases it. */
export async function acquireDirLock(lockDir: string, options: DirLockOptions = {}): Promise<() => void> {
  const timeoutMs = options.timeoutMs ?? 20 * 60_000;
  const pollMs = options.pollMs ?? 100;
  const token = `${process.pid}:${randomBytes(6).toString('hex')}`;
  mkdirSync(dirname(lockDir), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, 'owner'), token);
      return () => {
        if (readOwner(lockDir) === token) rmSync(lockDir, { recursive: true, force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    breakIfStale(lockDir);
    if (Date.now() >= deadline) {
      throw new UnavailableError(`timed out after ${timeoutMs} ms waiting for the lock ${lockDir}`, {
        lockDir,
        owner: readOwner(lockDir),
      });
    }
    await sleep(pollMs);
  }
}

function readOwner(lockDir: string): string | undefined {
  try {
    return readFileSync(join(lockDir, 'owner'), 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Removes a lock whose holder is dead. A lock without an owner file is either being created right now
 * or was left by a crash between mkdir and write; it is only broken once it is older than a few seconds.
 */
function breakIfStale(lockDir: string): void {
  const owner = readOwner(lockDir);
  let stale: boolean;
  if (owner === undefined) {
    stale = ageMs(lockDir) > 5_000;
  } else {
    stale = !isPidAlive(Number(owner.split(':')[0]));
  }
  if (!stale) return;
  // Rename first (atomic): of several processes breaking the same stale lock, one wins.
  const grave = `${lockDir}.stale-${randomBytes(6).toString('hex')}`;
  try {
    renameSync(lockDir, grave);
  } catch {
    return;
  }
  rmSync(grave, { recursive: true, force: true });
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}
