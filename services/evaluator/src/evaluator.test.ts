// The Evaluator core without transport: records kept beside the score, or (an artifact store that
// refuses writes, e.g. a read-only volume) a warning and the score all the same.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { zooRoot } from '@hm3/fixtures';
import { createInMemoryStore, LocalArtifactStore, type ArtifactStore } from '@hm3/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Evaluator, type EvaluationRequest } from './evaluator.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hm3-evaluator-core-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const request = (candidateId: string): EvaluationRequest => ({
  candidateId,
  target: { kind: 'model', model: { uri: 'expert-code' } },
  objectives: [{ name: 'code', task: 'code', maxExamples: 12 }],
  split: 'heldout',
});

describe('the Evaluator core', () => {
  it('keeps the records beside the score, and scores the same with a weight cache that evicts', async () => {
    const store = createInMemoryStore();
    await store.start();
    const artifacts = new LocalArtifactStore(path.join(dir, 'a'));
    const core = new Evaluator({
      store,
      artifacts,
      modelsRoot: zooRoot,
      datasetRoots: [],
      intraOpThreads: 1,
      weightCacheBytes: 64 * 1024, // below one zoo layer: nothing kept between passes
    });
    try {
      const first = await core.evaluate(request('c1'));
      expect(first.scores[0]).toMatchObject({
        objective: 'code',
        split: 'heldout',
        exampleCount: 12,
        reused: false,
      });
      expect(await artifacts.has(first.scores[0]!.recordsArtifactId!)).toBe(true);
      // A second candidate, every layer read again: the same model, the same score.
      const second = await core.evaluate(request('c2'));
      expect(second.scores[0]!.value).toBe(first.scores[0]!.value);
      const again = await core.evaluate(request('c1'));
      expect(again.scores[0]).toMatchObject({
        reused: true,
        value: first.scores[0]!.value,
        exampleCount: 12,
      });
    } finally {
      await core.close();
    }
  });

  it('refuses a negative weight-cache budget before any model is touched', () => {
    const store = createInMemoryStore();
    const artifacts = new LocalArtifactStore(path.join(dir, 'c'));
    expect(
      () => new Evaluator({ store, artifacts, modelsRoot: zooRoot, datasetRoots: [], weightCacheBytes: -1 }),
    ).toThrow(/weightCacheBytes/);
  });

  it('scores all the same when the artifact store refuses the records, and says so', async () => {
    const store = createInMemoryStore();
    await store.start();
    const local = new LocalArtifactStore(path.join(dir, 'b'));
    const readOnly: ArtifactStore = {
      write: () => Promise.reject(new Error('EROFS: read-only file system')),
      has: (id) => local.has(id),
      open: (id) => local.open(id),
      delete: (id) => local.delete(id),
      list: () => local.list(),
    };
    const warnings: string[] = [];
    const core = new Evaluator({
      store,
      artifacts: readOnly,
      modelsRoot: zooRoot,
      datasetRoots: [],
      intraOpThreads: 1,
      onWarning: (m, d) => warnings.push(`${m}: ${String(d['error'])}`),
    });
    try {
      const outcome = await core.evaluate(request('c3'));
      expect(outcome.scores[0]!.recordsArtifactId).toBeUndefined();
      expect((await store.scores.get('c3', 'code', 'heldout'))?.value).toBe(outcome.scores[0]!.value);
      expect(warnings).toEqual([
        'per-example records not kept: the artifact store refused them: EROFS: read-only file system',
      ]);
    } finally {
      await core.close();
    }
  });

  it('gives its model runtimes flushDenormals (default off)', async () => {
    const store = createInMemoryStore();
    const artifacts = new LocalArtifactStore(path.join(dir, 'f'));
    const base = { store, artifacts, modelsRoot: zooRoot, datasetRoots: [] };
    const [plain, flushing] = [new Evaluator(base), new Evaluator({ ...base, flushDenormals: true })];
    try {
      expect(plain.runtime('cpu').flushDenormals).toBe(false);
      expect(flushing.runtime('cpu').flushDenormals).toBe(true);
      expect(flushing.runtime('cpu')).toBe(flushing.runtime('cpu')); // one runtime per device
    } finally {
      await Promise.all([plain.close(), flushing.close()]);
    }
  });
});
