import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, NotFoundError } from '@hm3/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactIdOf, resolveModelFolder } from './models-root.js';

let base: string;
let root: string;

beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'hm3-models-root-'));
  root = path.join(base, 'models');
  await mkdir(path.join(root, 'org', 'model-a'), { recursive: true });
  await mkdir(path.join(base, 'secret'), { recursive: true });
  await symlink(path.join(base, 'secret'), path.join(root, 'escape'));
  await symlink(path.join(root, 'org', 'model-a'), path.join(root, 'alias'));
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('resolveModelFolder', () => {
  it('resolves relative paths, absolute paths inside the root and symlinks that stay inside', async () => {
    const a = path.join(root, 'org', 'model-a');
    await expect(resolveModelFolder(root, 'org/model-a', 'base')).resolves.toBe(a);
    await expect(resolveModelFolder(root, a, 'base')).resolves.toBe(a);
    await expect(resolveModelFolder(root, 'alias', 'base')).resolves.toBe(a);
    await expect(resolveModelFolder(root, 'org/../org/model-a', 'base')).resolves.toBe(a);
  });

  it.each([
    ['../secret', 'outside the models root'],
    ['org/../../secret', 'outside the models root'],
    ['/etc', 'outside the models root'],
    ['escape', 'through a symlink'],
    ['https://example.com/model', 'not a path inside the models root'],
    ['', 'empty model reference'],
  ])('refuses %j with INVALID_ARGUMENT naming the field', async (uri, why) => {
    const error = await resolveModelFolder(root, uri, 'models[1].model').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toContain('models[1].model');
    expect((error as Error).message).toContain(why);
  });

  it('reports a missing folder inside the root as NOT_FOUND', async () => {
    await expect(resolveModelFolder(root, 'org/none', 'base')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('reads artifact references', () => {
    expect(artifactIdOf('artifact://abc')).toBe('abc');
    expect(artifactIdOf('org/model')).toBeNull();
  });
});
