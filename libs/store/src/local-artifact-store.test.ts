import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeArtifactStoreContract, checkpointFill } from './artifact-store.contract.js';
import { LocalArtifactStore, validateArtifactId } from './local-artifact-store.js';

describeArtifactStoreContract('local folder', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hm3-artifacts-'));
  return { store: new LocalArtifactStore(root), dispose: () => rm(root, { recursive: true, force: true }) };
});

describe('LocalArtifactStore', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'hm3-artifacts-'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('fills inside <root>/.tmp (same volume) and leaves .tmp empty after success, duplicate and failure', async () => {
    const store = new LocalArtifactStore(root);
    let tempDir = '';
    const result = await store.write('ckpt-1', async (dir) => {
      tempDir = dir;
      await checkpointFill('A')(dir);
    });
    expect(dirname(tempDir)).toBe(join(root, '.tmp'));
    expect(result.path).toBe(join(root, 'ckpt-1'));
    await store.write('ckpt-1', checkpointFill('B'));
    await Promise.all([
      store.write('race', checkpointFill('A', 2)),
      store.write('race', checkpointFill('B', 2)),
    ]);
    await expect(
      store.write('broken', async (dir) => {
        await writeFile(join(dir, 'half'), 'x');
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(await store.delete('race')).toBe(true);
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
    expect((await readdir(root)).sort()).toEqual(['.tmp', 'ckpt-1']);
  });

  it('sweeps .tmp entries older than the limit on start and keeps fresh ones', async () => {
    await mkdir(join(root, '.tmp', 'old-writer'), { recursive: true });
    await writeFile(join(root, '.tmp', 'old-writer', 'config.json'), '{}');
    await mkdir(join(root, '.tmp', 'live-writer'));
    const sevenHoursAgo = new Date(Date.now() - 7 * 60 * 60 * 1000);
    await utimes(join(root, '.tmp', 'old-writer'), sevenHoursAgo, sevenHoursAgo);
    await new LocalArtifactStore(root).start();
    expect(await readdir(join(root, '.tmp'))).toEqual(['live-writer']);

    await new LocalArtifactStore(root, { staleTempAfterMs: 0 }).start();
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
  });

  it('the first operation starts the store (creates root and .tmp)', async () => {
    const nested = join(root, 'deep', 'artifacts');
    const store = new LocalArtifactStore(nested);
    expect(await store.list()).toEqual([]);
    expect(await readdir(nested)).toEqual(['.tmp']);
  });

  it('validateArtifactId accepts content ids and rejects names that could escape the root', () => {
    expect(validateArtifactId('sha256-0f3a9c')).toBe('sha256-0f3a9c');
    expect(validateArtifactId('cand_12.v1')).toBe('cand_12.v1');
    expect(() => validateArtifactId('x'.repeat(201))).toThrow(/longer than 200/);
    expect(() => validateArtifactId(42)).toThrow(/non-empty string/);
  });
});
