/**
 * THE contract of the ArtifactStore port, run against every adapter (local-artifact-store.test.ts).
 */
import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError } from '@hm3/errors';
import type { ArtifactStore } from './ports.js';

export interface ArtifactStoreUnderTest {
  /** A fresh, empty store. */
  store: ArtifactStore;
  /** Removes whatever the store created. */
  dispose(): Promise<void>;
}

/** Fills a checkpoint-like folder whose every file carries `marker`, yielding between files. */
export function checkpointFill(marker: string, delayMs = 0): (dir: string) => Promise<void> {
  return async (dir) => {
    await writeFile(join(dir, 'config.json'), JSON.stringify({ marker }));
    if (delayMs > 0) await sleep(delayMs);
    await mkdir(join(dir, 'tokenizer'));
    await writeFile(join(dir, 'tokenizer', 'tokenizer.json'), `{"marker":"${marker}"}`);
    if (delayMs > 0) await sleep(delayMs);
    await writeFile(join(dir, 'model.safetensors'), Buffer.alloc(64 * 1024, marker));
  };
}

/** The markers found in a checkpoint folder written by checkpointFill (one per file). */
export async function checkpointMarkers(dir: string): Promise<string[]> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { marker: string };
  const tokenizer = JSON.parse(await readFile(join(dir, 'tokenizer', 'tokenizer.json'), 'utf8')) as {
    marker: string;
  };
  const weights = await readFile(join(dir, 'model.safetensors'));
  expect(weights.length).toBe(64 * 1024);
  return [config.marker, tokenizer.marker, weights.subarray(0, 1).toString()];
}

export const INVALID_ARTIFACT_IDS = [
  '',
  '..',
  '../escape',
  'a/b',
  'a\\b',
  '.hidden',
  '.tmp',
  'a..b',
  'nul\0byte',
];

export function describeArtifactStoreContract(
  name: string,
  factory: () => Promise<ArtifactStoreUnderTest>,
): void {
  describe(`ArtifactStore contract [${name}]`, () => {
    let sut: ArtifactStoreUnderTest;
    let store: ArtifactStore;

    beforeEach(async () => {
      sut = await factory();
      store = sut.store;
    });

    afterEach(async () => {
      await sut.dispose();
    });

    it('write fills a folder that then exists under its id, complete', async () => {
      const result = await store.write('ckpt-1', checkpointFill('A'));
      expect(result.id).toBe('ckpt-1');
      expect(result.created).toBe(true);
      expect(await checkpointMarkers(result.path)).toEqual(['A', 'A', 'A']);
      expect(await store.has('ckpt-1')).toBe(true);
      expect(await store.list()).toEqual(['ckpt-1']);
    });

    it('writing an id that exists is success with created: false, and keeps the first content', async () => {
      const first = await store.write('ckpt-1', checkpointFill('A'));
      const second = await store.write('ckpt-1', checkpointFill('B'));
      expect(second).toEqual({ id: 'ckpt-1', path: first.path, created: false });
      expect(await checkpointMarkers(second.path)).toEqual(['A', 'A', 'A']);
      expect(await store.list()).toEqual(['ckpt-1']);
    });

    it('two concurrent writers of one id both succeed, one creates, the folder is complete', async () => {
      const [a, b] = await Promise.all([
        store.write('ckpt-race', checkpointFill('A', 5)),
        store.write('ckpt-race', checkpointFill('B', 5)),
      ]);
      expect([a.created, b.created].sort()).toEqual([false, true]);
      expect(a.path).toBe(b.path);
      const markers = await checkpointMarkers(a.path);
      expect(new Set(markers).size).toBe(1);
      expect(['A', 'B']).toContain(markers[0]);
      expect(await store.list()).toEqual(['ckpt-race']);
    });

    it('a fill that throws rejects with its error and leaves no artifact', async () => {
      const boom = new Error('fill failed');
      await expect(
        store.write('ckpt-1', async (dir) => {
          await writeFile(join(dir, 'config.json'), '{}');
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect(await store.has('ckpt-1')).toBe(false);
      expect(await store.list()).toEqual([]);
      const retry = await store.write('ckpt-1', checkpointFill('C'));
      expect(retry.created).toBe(true);
      expect(await checkpointMarkers(retry.path)).toEqual(['C', 'C', 'C']);
    });

    it('ids with path separators, .., a leading dot or NUL are InvalidArgumentErrors naming the id', async () => {
      let fills = 0;
      const fill = async () => {
        fills += 1;
      };
      for (const id of INVALID_ARTIFACT_IDS) {
        for (const call of [
          () => store.write(id, fill),
          () => store.has(id),
          () => store.open(id),
          () => store.delete(id),
        ]) {
          const error = await call().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error, `id ${JSON.stringify(id)}`).toBeInstanceOf(InvalidArgumentError);
          expect((error as InvalidArgumentError).details.id).toBe(id);
        }
      }
      expect(fills).toBe(0);
      expect(await store.list()).toEqual([]);
    });

    it('open of an absent id is NotFoundError', async () => {
      await expect(store.open('absent')).rejects.toBeInstanceOf(NotFoundError);
    });

    it('delete refuses while a lease is held and succeeds after release', async () => {
      await store.write('ckpt-1', checkpointFill('A'));
      const lease = await store.open('ckpt-1');
      expect(lease.id).toBe('ckpt-1');
      expect(await checkpointMarkers(lease.path)).toEqual(['A', 'A', 'A']);
      expect(await store.delete('ckpt-1')).toBe(false);
      expect(await store.has('ckpt-1')).toBe(true);
      expect(await checkpointMarkers(lease.path)).toEqual(['A', 'A', 'A']);
      lease.release();
      expect(await store.delete('ckpt-1')).toBe(true);
      expect(await store.has('ckpt-1')).toBe(false);
      expect(await store.list()).toEqual([]);
      await expect(store.open('ckpt-1')).rejects.toBeInstanceOf(NotFoundError);
    });

    it('every lease must be released; releasing one twice does not release another', async () => {
      await store.write('ckpt-1', checkpointFill('A'));
      const first = await store.open('ckpt-1');
      const second = await store.open('ckpt-1');
      first.release();
      first.release();
      expect(await store.delete('ckpt-1')).toBe(false);
      second.release();
      expect(await store.delete('ckpt-1')).toBe(true);
    });

    it('a lease on one id does not hold another', async () => {
      await store.write('ckpt-1', checkpointFill('A'));
      await store.write('ckpt-2', checkpointFill('B'));
      const lease = await store.open('ckpt-1');
      expect(await store.delete('ckpt-2')).toBe(true);
      expect(await store.list()).toEqual(['ckpt-1']);
      lease.release();
    });

    it('delete of an absent id is true (nothing held); list is sorted', async () => {
      expect(await store.delete('absent')).toBe(true);
      for (const id of ['c', 'a', 'b']) await store.write(id, checkpointFill(id));
      expect(await store.list()).toEqual(['a', 'b', 'c']);
      const [entries] = await Promise.all([store.list()]);
      expect(entries).toHaveLength(3);
    });

    it('an artifact can be written again after it was deleted', async () => {
      await store.write('ckpt-1', checkpointFill('A'));
      expect(await store.delete('ckpt-1')).toBe(true);
      const again = await store.write('ckpt-1', checkpointFill('B'));
      expect(again.created).toBe(true);
      expect(await checkpointMarkers(again.path)).toEqual(['B', 'B', 'B']);
      expect((await readdir(again.path)).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer']);
    });
  });
}
