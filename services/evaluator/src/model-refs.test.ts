import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { modelPath } from '@hm3/fixtures';
import { createInMemoryStore, LocalArtifactStore } from '@hm3/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveModel, type ModelResolver } from './model-refs.js';

let dir: string;
let resolver: ModelResolver;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hm3-model-refs-'));
  await mkdir(path.join(dir, 'models/m1'), { recursive: true });
  await mkdir(path.join(dir, 'outside'));
  await symlink(path.join(dir, 'outside'), path.join(dir, 'models/escape'));
  const artifacts = new LocalArtifactStore(path.join(dir, 'artifacts'));
  await artifacts.write('flat', async (d) => writeFile(path.join(d, 'config.json'), '{}'));
  await artifacts.write('nested', async (d) => {
    await mkdir(path.join(d, 'model'));
    await writeFile(path.join(d, 'model', 'config.json'), '{}');
  });
  const store = createInMemoryStore();
  await store.start();
  await store.models.insert({
    id: 'registered',
    uri: 'm1',
    architecture: 'LlamaForCausalLM',
    dtype: 'BF16',
    files: [],
    createdAt: new Date(),
  });
  resolver = { modelsRoot: path.join(dir, 'models'), artifacts, models: store.models };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('model references', () => {
  it('resolve inside the models root, through the registry, to artifacts (flat or model/) and to the zoo', async () => {
    expect((await resolveModel({ uri: 'm1' }, resolver, 'model')).dir).toBe(path.join(dir, 'models/m1'));
    expect((await resolveModel({ modelId: 'registered' }, resolver, 'model')).dir).toBe(
      path.join(dir, 'models/m1'),
    );
    const flat = await resolveModel({ uri: 'artifact://flat' }, resolver, 'model');
    expect(flat.dir).toBe(path.join(dir, 'artifacts/flat'));
    flat.release();
    const nested = await resolveModel({ uri: 'artifact://nested' }, resolver, 'model');
    expect(nested.dir).toBe(path.join(dir, 'artifacts/nested/model'));
    nested.release();
    expect((await resolveModel({ uri: 'zoo:expert-code' }, resolver, 'model')).dir).toBe(
      modelPath('expert-code'),
    );
  });

  it('refuse what lies outside, and name the field', async () => {
    await expect(resolveModel({ uri: '../outside' }, resolver, 'path.pool[1]')).rejects.toThrow(
      /^path\.pool\[1\]: "\.\.\/outside" is outside the models root/,
    );
    await expect(resolveModel({ uri: 'escape' }, resolver, 'model')).rejects.toThrow(/symlink/);
    await expect(resolveModel({ uri: 'https://x/y' }, resolver, 'model')).rejects.toMatchObject({
      status: 'INVALID_ARGUMENT',
    });
    await expect(resolveModel({ uri: 'zoo:nope' }, resolver, 'model')).rejects.toThrow(/names no zoo model/);
    await expect(resolveModel({ uri: 'missing' }, resolver, 'model')).rejects.toMatchObject({
      status: 'NOT_FOUND',
    });
    await expect(resolveModel({ uri: 'artifact://nope' }, resolver, 'model')).rejects.toMatchObject({
      status: 'NOT_FOUND',
    });
    await expect(resolveModel({ modelId: 'unknown' }, resolver, 'model')).rejects.toMatchObject({
      status: 'NOT_FOUND',
    });
    await expect(resolveModel({}, resolver, 'model')).rejects.toMatchObject({ status: 'INVALID_ARGUMENT' });
  });
});
