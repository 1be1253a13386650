import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MissingTokenizerError } from './errors.js';
import { randomModels, type RandomModels } from './fixtures.test-helper.js';
import { loadTokenizer } from './tokenizer.js';

let models: RandomModels;
beforeAll(async () => {
  models = await randomModels();
}, 900_000);

describe('loadTokenizer', () => {
  it('loads tokenizer.json and round-trips text (char-level vocabulary)', async () => {
    const t = await loadTokenizer(models.base);
    const ids = t.encode('Hello, world 42');
    expect(ids).toHaveLength(15);
    expect(ids[0]).toBe(t.tokenToId('H'));
    expect(t.decode(ids)).toBe('Hello, world 42');
  });

  it('fails with MissingTokenizerError naming the file when tokenizer.json is absent', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hm3-model-notok-'));
    try {
      await cp(path.join(models.base, 'config.json'), path.join(dir, 'config.json'));
      const error = await loadTokenizer(dir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MissingTokenizerError);
      expect((error as MissingTokenizerError).file).toBe(path.join(dir, 'tokenizer.json'));
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
