import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@hm3/errors';
import { LayerPool } from './layer-pool.js';
import { PathPolicy } from './path-policy.js';
import { loadPolicy, savePolicy } from './policy-io.js';
import { Rng } from './random.js';
import { syntheticPool } from './synthetic.js';

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
    expect(loaded.episodesSeen).toBe(2); // the epsilon schedule goes on where it was
    expect(loaded.epsilonNow()).toBe(policy.epsilonNow());
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

  it('loads an amortised policy saved before preferenceActor / epsilonScope / followTarget / objectiveValueCoef existed with them off', () => {
    const policy = new PathPolicy(syntheticPool(2, 3, new Rng(2)), {
      tMax: 3,
      objectives: 2,
      amortised: true,
      preferenceActor: false,
      epsilonScope: 'candidates',
      gruHidden: 6,
      headHidden: 6,
      seed: 3,
    });
    const bytes = savePolicy(policy);
    // Rewrite the header as an older version wrote it: settings without the four fields.
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as {
      __metadata__: Record<string, string>;
    };
    const settings = JSON.parse(header.__metadata__['settings']!) as Record<string, unknown>;
    delete settings['preferenceActor'];
    delete settings['epsilonScope'];
    delete settings['followTarget'];
    delete settings['objectiveValueCoef'];
    header.__metadata__['settings'] = JSON.stringify(settings);
    const json = new TextEncoder().encode(JSON.stringify(header));
    const old = new Uint8Array(8 + json.length + (bytes.length - 8 - n));
    new DataView(old.buffer).setBigUint64(0, BigInt(json.length), true);
    old.set(json, 8);
    old.set(bytes.subarray(8 + n), 8 + json.length);
    const loaded = loadPolicy(old);
    expect(loaded.settings.preferenceActor).toBe(false);
    expect(loaded.settings.epsilonScope).toBe('candidates');
    expect(loaded.settings.followTarget).toBe('preference');
    expect(loaded.settings.objectiveValueCoef).toBe(0);
    expect(loaded.initialOutputs([0.4, 0.6])).toEqual(policy.initialOutputs([0.4, 0.6]));
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

describe('the no-tape propose', () => {
  it('records the values and log-densities the tape computes, and picks the critic argmax', () => {
    for (const [amortised, preferenceCritic, preferenceActor] of [
      [false, false, false],
      [true, false, false],
      [true, true, false],
      [true, true, true],
    ] as const) {
      const policy = new PathPolicy(syntheticPool(3, 6, new Rng(4)), {
        tMax: 5,
        objectives: 2,
        amortised,
        preferenceCritic,
        preferenceActor,
        gruHidden: 12,
        headHidden: 10,
        mPrime: 4,
        seed: 8,
      });
      const rng = new Rng(10);
      for (const t of policy.params.list) for (let i = 0; i < t.size; i++) t.data[i]! += 0.3 * rng.normal();
      const w = [0.3, 0.7];
      const H = policy.settings.gruHidden;
      const D = policy.pool.embeddingDim;
      const A = policy.pool.size;
      for (const mode of ['greedy', 'explore'] as const)
        // Several episodes per state (the look-ahead rows are shared) and one of another preference.
        for (const e of policy.propose([w, w, w, w, w, [0.6, 0.4]], mode)) {
          const W = Float64Array.from(e.preference);
          let h: Float64Array = new Float64Array(H);
          let last = A;
          for (let t = 0; t < policy.tMax; t++) {
            const { mean, pathValue } = policy.heads(h, [t], [last], W);
            expect(e!.values[t]).toBeCloseTo(policy.valueScale(t) * pathValue[0]!, 10);
            let lp = -policy.logStd.data.reduce((x, y) => x + y, 0) - 0.5 * Math.log(2 * Math.PI) * D;
            for (let j = 0; j < D; j++)
              lp -= 0.5 * ((e!.protos[t * D + j]! - mean[j]!) / Math.exp(policy.logStd.data[j]!)) ** 2;
            expect(e!.logProbs[t]).toBeCloseTo(lp, 8);
            const a = e!.actions[t]!;
            if (mode === 'greedy') {
              // The critic's argmax among the M' nearest of the mean, by the tape's arithmetic.
              const near = policy.nearestActions(mean, 0, t === 0 ? -1 : last);
              const hs = new Float64Array(near.length * H);
              near.forEach((_, i) => hs.set(h, i * H));
              const prefs = new Float64Array(near.length * 2);
              near.forEach((_, i) => prefs.set(W, i * 2));
              const v = policy.heads(
                policy.encodeStep(hs, near),
                near.map(() => t + 1),
                near,
                prefs,
              ).pathValue;
              expect(a).toBe(near[v.indexOf(Math.max(...v))]);
            }
            h = policy.encodeStep(h, [a]);
            last = a;
          }
        }
    }
  });
});
