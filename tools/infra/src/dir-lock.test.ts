import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { UnavailableError } from '@hm3/errors';
import { acquireDirLock, withDirLock } from './dir-lock.js';

const root = mkdtempSync(join(tmpdir(), 'hm3-lock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('withDirLock', () => {
  it('serialises concurrent holders', async () => {
    const lock = join(root, 'serial.lock');
    let inside = 0;
    let maxInside = 0;
    const order: number[] = [];
    await Promise.all(
      [0, 1, 2, 3, 4].map((i) =>
        withDirLock(
          lock,
          async () => {
            inside += 1;
            maxInside = Math.max(maxInside, inside);
            await sleep(20);
            order.push(i);
            inside -= 1;
          },
          { pollMs: 5 },
        ),
      ),
    );
    expect(maxInside).toBe(1);
    expect(order.sort()).toEqual([0, 1, 2, 3, 4]);
    expect(existsSync(lock)).toBe(false);
  });

  it('releases the lock when the body throws', async () => {
    const lock = join(root, 'throw.lock');
    await expect(withDirLock(lock, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(existsSync(lock)).toBe(false);
  });

  it('takes over a lock whose holder died', async () => {
    const lock = join(root, 'stale.lock');
    const dead = spawnSync('true').pid; // a pid that has exited
    mkdirSync(lock);
    writeFileSync(join(lock, 'owner'), `${dead}:deadbeef`);
    const release = await acquireDirLock(lock, { timeoutMs: 2000, pollMs: 10 });
    expect(existsSync(lock)).toBe(true);
    release();
    expect(existsSync(lock)).toBe(false);
  });

  it('times out behind a live holder with an UnavailableError', async () => {
    const lock = join(root, 'held.lock');
    const release = await acquireDirLock(lock);
    try {
      await expect(acquireDirLock(lock, { timeoutMs: 300, pollMs: 20 })).rejects.toThrow(UnavailableError);
    } finally {
      release();
    }
  });
});
