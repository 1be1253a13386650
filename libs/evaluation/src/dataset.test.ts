import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalArtifactStore } from '@hm3/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  datasetDigest,
  loadDatasetSplit,
  parseJsonl,
  registerDataset,
  seededPermutation,
  sha256Hex,
} from './dataset.js';
import {
  DatasetDigestMismatchError,
  DatasetNotFoundError,
  EmptyDatasetError,
  InvalidDatasetError,
  InvalidTaskSpecError,
} from './errors.js';

let dir: string;
const lines = (n: number) =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ prompt: `q${i}=`, answer: `a${i}` })).join('\n') +
  '\n';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'hm3-eval-dataset-'));
  await writeFile(path.join(dir, 'ten.jsonl'), lines(10));
  await mkdir(path.join(dir, 'folder'));
  await writeFile(path.join(dir, 'folder', 'search.jsonl'), lines(3));
  await writeFile(path.join(dir, 'folder', 'heldout.jsonl'), lines(2));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseJsonl', () => {
  it('reads one object per line, skipping blank lines, keeping 1-based line numbers', () => {
    const rows = parseJsonl('{"a":1}\n\n{"a":2}\r\n', 'x.jsonl');
    expect(rows).toEqual([
      { line: 1, fields: { a: 1 } },
      { line: 3, fields: { a: 2 } },
    ]);
  });

  it('reports a malformed line with its number', () => {
    const error = (() => {
      try {
        parseJsonl('{"a":1}\n{"a":2}\n{"a":\n', 'bad.jsonl');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidDatasetError);
    expect((error as InvalidDatasetError).line).toBe(3);
    expect((error as InvalidDatasetError).status).toBe('INVALID_ARGUMENT');
    expect((error as Error).message).toMatch(/^bad\.jsonl:3: malformed JSON/);
  });

  it('refuses a line that is not an object, and an empty dataset', () => {
    expect(() => parseJsonl('[1,2]\n', 'arr.jsonl')).toThrow(/arr\.jsonl:1: a line must be a JSON object/);
    expect(() => parseJsonl('\n  \n', 'empty.jsonl')).toThrow(EmptyDatasetError);
    expect(() => parseJsonl('', 'empty.jsonl')).toThrow(/empty\.jsonl: holds no example/);
  });
});

describe('splits', () => {
  it('a seeded permutation is a permutation, the same for the same seed, different for another', () => {
    const a = seededPermutation(50, 7);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(seededPermutation(50, 7)).toEqual(a);
    expect(seededPermutation(50, 8)).not.toEqual(a);
  });

  it('cuts a single file into disjoint search and held-out parts covering it, in file order', async () => {
    const ref = { uri: path.join(dir, 'ten.jsonl') };
    const search = await loadDatasetSplit(ref, { split: 'search', seed: 3 });
    const heldout = await loadDatasetSplit(ref, { split: 'heldout', seed: 3 });
    const full = await loadDatasetSplit(ref, {});
    expect(search.rows).toHaveLength(7);
    expect(heldout.rows).toHaveLength(3);
    expect(full.rows).toHaveLength(10);
    const lineNumbers = [...search.rows, ...heldout.rows].map((r) => r.line).sort((x, y) => x - y);
    expect(lineNumbers).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(search.rows.map((r) => r.line)).toEqual([...search.rows.map((r) => r.line)].sort((x, y) => x - y));
    expect(search.presplit).toBe(false);
    expect(search.sha256).toBe(sha256Hex(lines(10)));
  });

  it('reads a split file of a folder dataset, and refuses a split a single file cannot give', async () => {
    const search = await loadDatasetSplit({ uri: path.join(dir, 'folder') }, { split: 'search' });
    expect(search.rows).toHaveLength(3);
    expect(search.presplit).toBe(true);
    await expect(loadDatasetSplit({ uri: path.join(dir, 'folder') }, { split: 'train' })).rejects.toThrow(
      DatasetNotFoundError,
    );
    await expect(loadDatasetSplit({ uri: path.join(dir, 'ten.jsonl') }, { split: 'train' })).rejects.toThrow(
      InvalidTaskSpecError,
    );
  });

  it('checks a pinned sha256', async () => {
    const uri = path.join(dir, 'ten.jsonl');
    const sha256 = await datasetDigest(uri);
    await expect(loadDatasetSplit({ uri, sha256 }, {})).resolves.toMatchObject({ sha256 });
    await expect(loadDatasetSplit({ uri, sha256: '0'.repeat(64) }, {})).rejects.toThrow(
      DatasetDigestMismatchError,
    );
  });
});

describe('references', () => {
  it('resolve only inside the configured roots', async () => {
    const roots = [path.join(dir, 'folder')];
    await expect(loadDatasetSplit({ uri: 'search.jsonl' }, {}, { roots })).resolves.toMatchObject({
      presplit: false,
    });
    await expect(loadDatasetSplit({ uri: path.join(dir, 'ten.jsonl') }, {}, { roots })).rejects.toThrow(
      /outside the dataset roots/,
    );
    await expect(loadDatasetSplit({ uri: '../ten.jsonl' }, {}, { roots })).rejects.toThrow(
      InvalidTaskSpecError,
    );
    await symlink(path.join(dir, 'ten.jsonl'), path.join(dir, 'folder', 'escape.jsonl'));
    try {
      await expect(loadDatasetSplit({ uri: 'escape.jsonl' }, {}, { roots })).rejects.toThrow(/symlink/);
    } finally {
      await rm(path.join(dir, 'folder', 'escape.jsonl'));
    }
    await expect(loadDatasetSplit({ uri: 'missing.jsonl' }, {}, { roots })).rejects.toThrow(
      DatasetNotFoundError,
    );
    await expect(loadDatasetSplit({ uri: 'https://example.com/x.jsonl' }, {})).rejects.toThrow(
      InvalidTaskSpecError,
    );
  });

  it('registers datasets content-addressed in the artifact store and reads them back by artifact://', async () => {
    const artifacts = new LocalArtifactStore(path.join(dir, 'artifacts'));
    const file = await registerDataset(artifacts, path.join(dir, 'ten.jsonl'));
    expect(file.uri).toBe(`artifact://${file.id}`);
    expect(file.id).toBe(`dataset-${file.sha256}`);
    expect(file.created).toBe(true);
    const again = await registerDataset(artifacts, path.join(dir, 'ten.jsonl'));
    expect(again).toMatchObject({ id: file.id, created: false });
    const read = await loadDatasetSplit(file, { split: 'search', seed: 3 }, { artifacts });
    const direct = await loadDatasetSplit({ uri: path.join(dir, 'ten.jsonl') }, { split: 'search', seed: 3 });
    expect(read.rows).toEqual(direct.rows);
    expect(read.sha256).toBe(file.sha256);

    const folder = await registerDataset(artifacts, path.join(dir, 'folder'));
    expect(folder.sha256).toBe(await datasetDigest(path.join(dir, 'folder')));
    expect((await loadDatasetSplit(folder, { split: 'heldout' }, { artifacts })).rows).toHaveLength(2);

    await expect(loadDatasetSplit({ uri: 'artifact://dataset-nope' }, {}, { artifacts })).rejects.toThrow(
      DatasetNotFoundError,
    );
    await expect(loadDatasetSplit(file, {}, {})).rejects.toThrow(/no artifact store/);
    await writeFile(path.join(dir, 'broken.jsonl'), '{"prompt":"a"}\nnot json\n');
    await expect(registerDataset(artifacts, path.join(dir, 'broken.jsonl'))).rejects.toThrow(
      /broken\.jsonl:2:/,
    );
  });
});
