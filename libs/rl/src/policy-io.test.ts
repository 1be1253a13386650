import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@hm3/errors';
import { LayerPool } from './layer-pool.js';
import { PathPolicy } from './path-policy.js';
import { loadPolicy, savePolicy } from './policy-io.js';
import { Rng } from './random.js';
import type { Tensor } from './autodiff.js';
import type { GruCell } from './layers.js';

function smallPolicy(seed: number): PathPolicy {
  const rng = new Rng(seed);
  const pool = new LayerPool(
    [0, 1, 2].map((m) => ({
      id: `m${m}`,
      layers: 4,
      hiddenSize: 16,
      layerFeatures: Array.from({ length: 4 }, () => [rng.normal(), rng.normal()]),
    })),
  );
  return new PathPolicy(pool, { tMax: 5, objectives: 2, amortised: true, gruHidden: 8, headHidden: 8, seed });
}

describe('policy save / load (safetensors)', () => {
  it('round-trips every parameter bit for bit, with settings and pool', () => {
    const policy = smallPolicy(4);
    const episodes = policy.propose([
      [0.3, 0.7],
      [1, 0],
    ]);
    policy.update(episodes, [0.5, 0.1]);
    const bytes = savePolicy(policy);
    const loaded = loadPolicy(bytes);
    expect(loaded.settings).toEqual(policy.settings);
    expect(loaded.pool.models).toEqual(policy.pool.models);
    for (const [name, t] of policy.params.byName)
      expect(Array.from(loaded.params.byName.get(name)!.data)).toEqual(Array.from(t.data));
    const a = policy.propose([[0.2, 0.8]], 'greedy')[0]!;
    const b = loaded.propose([[0.2, 0.8]], 'greedy')[0]!;
    expect(b.path).toEqual(a.path);
    expect(loaded.initialOutputs([0.5, 0.5])).toEqual(policy.initialOutputs([0.5, 0.5]));
    // The header is plain safetensors: 8-byte length + JSON with F64 tensors.
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<
      string,
      { dtype: string }
    >;
    expect(header['actor.log_std']?.dtype).toBe('F64');
  });

  it('rejects truncated bytes and files that are not a path policy', () => {
    const bytes = savePolicy(smallPolicy(5));
    expect(() => loadPolicy(bytes.subarray(0, 4))).toThrow(InvalidArgumentError);
    expect(() => loadPolicy(bytes.subarray(0, bytes.length - 8))).toThrow();
  });
});

describe('PathPolicy proposals', () => {
  it('proposes T_max-step paths inside the pool; greedy is deterministic; seeds reproduce', () => {
    const p1 = smallPolicy(6);
    const p2 = smallPolicy(6);
    const e1 = p1.propose([
      [0.5, 0.5],
      [0.9, 0.1],
    ]);
    const e2 = p2.propose([
      [0.5, 0.5],
      [0.9, 0.1],
    ]);
    expect(e1.map((e) => e.path)).toEqual(e2.map((e) => e.path));
    for (const e of e1) {
      expect(e.path).toHaveLength(5);
      for (const s of e.path) expect(() => p1.pool.actionOf(s)).not.toThrow();
      expect(e.logProbs.every(Number.isFinite)).toBe(true);
    }
    const g1 = p1.propose([[0.5, 0.5]], 'greedy')[0]!;
    const g2 = p1.propose([[0.5, 0.5]], 'greedy')[0]!;
    expect(g1.path).toEqual(g2.path);
  });

  it("nearestActions returns the M' nearest embeddings in order", () => {
    const p = new PathPolicy(
      new LayerPool([
        { id: 'a', layers: 4 },
        { id: 'b', layers: 4 },
      ]),
      { mPrime: 3 },
    );
    const D = p.pool.embeddingDim;
    const target = p.pool.actionOf({ poolIndex: 1, layerIndex: 2 });
    const proto = p.pool.embeddings.slice(target * D, (target + 1) * D);
    const near = p.nearestActions(proto, 0, -1);
    expect(near).toHaveLength(3);
    expect(near[0]).toBe(target);
    const d = (a: number) =>
      Array.from(
        { length: D },
        (_, j) => ((proto[j] as number) - (p.pool.embeddings[a * D + j] as number)) ** 2,
      ).reduce((x, y) => x + y);
    for (let a = 0; a < p.pool.size; a++)
      if (!near.includes(a)) expect(d(a)).toBeGreaterThanOrEqual(d(near[2]!));
  });
});

describe('fast look-ahead GRU', () => {
  it('equals GruCell.forward on the same (episode, action) pairs', async () => {
    const { add, gatherRows, matmul, noGrad, tensor } = await import('./autodiff.js');
    const policy = smallPolicy(8);
    const internals = policy as unknown as { gru: GruCell; stepInput(actions: ArrayLike<number>): Tensor };
    const rng = new Rng(9);
    const H = policy.settings.gruHidden;
    const h = tensor(
      Array.from({ length: 3 * H }, () => rng.normal()),
      3,
      H,
    );
    const rowsB = [0, 0, 1, 2, 2];
    const rowsA = [1, 5, 0, 11, 3];
    noGrad(() => {
      const table = add(
        matmul(internals.stepInput(Array.from({ length: policy.pool.size }, (_, a) => a)), internals.gru.wi),
        internals.gru.bi,
      );
      const fast = policy.gruCandidates(table, h, rowsB, rowsA);
      const slow = internals.gru.forward(internals.stepInput(rowsA), gatherRows(h, rowsB));
      for (let i = 0; i < slow.size; i++) expect(fast.data[i]).toBeCloseTo(slow.data[i] as number, 12);
    });
  });
});
