// Every method against a float64 reference written plainly from its definition (mergekit's semantics),
// on random tensors: per tensor max|out - ref| <= 1e-6 * max|ref|.
import { bernoulliMask, floatToBf16, numberToBf16Bits, randomStream, type FloatArray } from '@hm3/tensor';
import { describe, expect, it } from 'vitest';
import type { MergeMethod } from '../method.js';
import { getMethod } from '../registry.js';
import { gaussian, maxError, rng, runMethod, type HarnessModel } from './method-harness.test-helper.js';

const NAME = 'model.layers.3.self_attn.q_proj.weight';
const SEED = 20261128n;

// ---- plain f64 references ----------------------------------------------------------------------------

type Vec = number[];
interface RefModel {
  id: string;
  x: Vec;
  weight: number;
  density: number;
  gamma: number;
}

/** Indices ordered by |d| descending, ties by index ascending. */
function byMagnitude(d: Vec): number[] {
  return d.map((_, i) => i).sort((a, b) => Math.abs(d[b]!) - Math.abs(d[a]!) || a - b);
}

function rescaled(d: Vec, keep: boolean[], rescale: string, density: number): Vec {
  const kept = d.map((v, i) => (keep[i] ? v : 0));
  let scale = 1;
  if (rescale === 'l1') {
    const before = d.reduce((s, v) => s + Math.abs(v), 0);
    const after = kept.reduce((s, v) => s + Math.abs(v), 0);
    if (before >= 1e-7 && after >= 1e-7) scale = before / after;
  } else if (rescale === 'inverse_density' && density > 0) scale = 1 / density;
  return kept.map((v) => v * scale);
}

function refSparsify(kind: string, d: Vec, m: RefModel, rescale: string): Vec {
  const n = d.length;
  if (kind === 'none' || m.density >= 1) return d;
  const keep = new Array<boolean>(n).fill(false);
  if (kind === 'magnitude') {
    for (const i of byMagnitude(d).slice(0, Math.floor(m.density * n))) keep[i] = true;
  } else if (kind === 'magnitude_outliers') {
    let nTop = Math.floor(m.gamma * n);
    let nBot = n - Math.floor(m.density * n) - nTop;
    if (nBot < 0) {
      nTop += nBot;
      nBot = 0;
    }
    // ascending order: the reverse of byMagnitude; keep positions [nBot, n - nTop)
    const ascending = byMagnitude(d).reverse();
    for (const i of ascending.slice(nBot, n - nTop)) keep[i] = true;
  } else {
    // DARE: the random keep-mask of (seed, tensor, model) is an input of the definition.
    const mask = new Uint8Array(n);
    bernoulliMask(
      { out: mask, stream: randomStream(SEED, `${NAME}\u0000${m.id}`), density: m.density },
      0,
      n,
    );
    mask.forEach((v, i) => (keep[i] = v === 1));
  }
  return rescaled(d, keep, rescale, m.density);
}

interface GtaRef {
  sparsify: 'none' | 'magnitude' | 'bernoulli' | 'magnitude_outliers';
  consensus: boolean;
  normalize: boolean;
  lambda: number;
  rescale: string;
}

function refGta(base: Vec, models: RefModel[], o: GtaRef): Vec {
  const deltas = models.map((m) =>
    refSparsify(
      o.sparsify,
      m.x.map((v, i) => v - base[i]!),
      m,
      o.rescale,
    ),
  );
  return base.map((b, i) => {
    const wd = models.map((m, k) => m.weight * deltas[k]![i]!);
    let mixed: number;
    let divisor: number;
    if (o.consensus) {
      const elected = wd.reduce((s, v) => s + v, 0) >= 0 ? 1 : -1;
      const agree = wd.map((v) => Math.sign(v) === elected);
      mixed = wd.reduce((s, v, k) => s + (agree[k] ? v : 0), 0);
      divisor = models.reduce((s, m, k) => s + (agree[k] ? m.weight : 0), 0);
      if (divisor === 0) divisor = 1;
    } else {
      mixed = wd.reduce((s, v) => s + v, 0);
      divisor = models.reduce((s, m) => s + m.weight, 0);
      if (Math.abs(divisor) < 1e-8) divisor = 1;
    }
    if (o.normalize) mixed /= divisor;
    return b + o.lambda * mixed;
  });
}

function refLinear(models: RefModel[], normalize: boolean): Vec {
  const total = models.reduce((s, m) => s + m.weight, 0);
  return models[0]!.x.map(
    (_, i) => models.reduce((s, m) => s + m.weight * m.x[i]!, 0) / (normalize ? total : 1),
  );
}

function refSlerp(v0: Vec, v1: Vec, t: number): Vec {
  const norm = (v: Vec) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const unit = (v: Vec) => {
    const n = norm(v);
    return n > 1e-8 ? v.map((x) => x / n) : v;
  };
  const u0 = unit(v0);
  const u1 = unit(v1);
  const cos = u0.reduce((s, x, i) => s + x * u1[i]!, 0);
  if (Math.abs(cos) > 0.9995) return v0.map((x, i) => (1 - t) * x + t * v1[i]!);
  const theta0 = Math.acos(cos);
  const s0 = Math.sin(theta0 - theta0 * t) / Math.sin(theta0);
  const s1 = Math.sin(theta0 * t) / Math.sin(theta0);
  return v0.map((x, i) => s0 * x + s1 * v1[i]!);
}

// ---- fixtures ------------------------------------------------------------------------------------------

const N = 48 * 64;

function fixture(seed: number, count: number) {
  const random = rng(seed);
  const base = gaussian(N, random, 0.05);
  const models = Array.from({ length: count }, (_, k) => ({
    id: `expert-${k}`,
    x: gaussian(N, random, 0.01).map((noise, i) => base[i]! + noise),
    weight: [0.6, 0.3, -0.2, 1.1][k]!,
    density: [0.5, 0.7, 0.3, 0.9][k]!,
    gamma: [0.01, 0.05, 0.02, 0.1][k]!,
  }));
  return { base, models };
}

function asArray(v: Vec, f64: boolean): FloatArray {
  return f64 ? Float64Array.from(v) : Float32Array.from(v);
}

/** The reference sees exactly the values the method sees (f32 inputs rounded first). */
function rounded(v: Vec, f64: boolean): Vec {
  return Array.from(asArray(v, f64));
}

function check(out: FloatArray, ref: Vec) {
  const { err, scale } = maxError(out, ref);
  expect(scale).toBeGreaterThan(0);
  expect(err).toBeLessThanOrEqual(1e-6 * scale);
}

const GTA: Record<string, Omit<GtaRef, 'normalize' | 'lambda' | 'rescale'>> = {
  task_arithmetic: { sparsify: 'none', consensus: false },
  ties: { sparsify: 'magnitude', consensus: true },
  dare_linear: { sparsify: 'bernoulli', consensus: false },
  dare_ties: { sparsify: 'bernoulli', consensus: true },
  breadcrumbs: { sparsify: 'magnitude_outliers', consensus: false },
  breadcrumbs_ties: { sparsify: 'magnitude_outliers', consensus: true },
};

function defaultOf(method: MergeMethod, name: string) {
  return method.params.find((p) => p.name === name)?.default;
}

describe.each([false, true])('methods against a float64 reference (compute f64: %s)', (f64) => {
  for (const [name, shape] of Object.entries(GTA)) {
    const method = getMethod(name);
    const variants: { normalize: boolean; lambda: number; rescale: string }[] = [
      {
        normalize: defaultOf(method, 'normalize') as boolean,
        lambda: 1,
        rescale: (defaultOf(method, 'rescale') as string) ?? 'none',
      },
      {
        normalize: !(defaultOf(method, 'normalize') as boolean),
        lambda: 0.7,
        rescale: shape.sparsify === 'none' ? 'none' : 'inverse_density',
      },
    ];
    if (shape.sparsify !== 'none') variants.push({ normalize: true, lambda: 1.3, rescale: 'l1' });
    it.each(variants)(`${name} %o`, (variant) => {
      const fx = fixture(name.length * 31 + (f64 ? 1 : 0), 3);
      const base = rounded(fx.base, f64);
      const models = fx.models.map((m) => ({ ...m, x: rounded(m.x, f64) }));
      const params: Record<string, string | number | boolean> = {
        normalize: variant.normalize,
        lambda: variant.lambda,
      };
      if (shape.sparsify !== 'none') params['rescale'] = variant.rescale;
      const harness: HarnessModel[] = models.map((m) => ({
        id: m.id,
        tensor: asArray(m.x, f64),
        params: {
          weight: m.weight,
          ...(shape.sparsify === 'none' ? {} : { density: m.density }),
          ...(shape.sparsify === 'magnitude_outliers' ? { gamma: m.gamma } : {}),
        },
      }));
      const out = runMethod(method, asArray(base, f64), harness, params, { name: NAME, seed: SEED });
      expect(out).toBeInstanceOf(f64 ? Float64Array : Float32Array);
      check(out, refGta(base, models, { ...shape, ...variant }));
    });
  }

  it.each([true, false])('linear (normalize %s)', (normalize) => {
    const fx = fixture(5, 3);
    const models = fx.models.map((m) => ({ ...m, x: rounded(m.x, f64), weight: Math.abs(m.weight) }));
    const out = runMethod(
      getMethod('linear'),
      null,
      models.map((m) => ({ id: m.id, tensor: asArray(m.x, f64), params: { weight: m.weight } })),
      { normalize },
    );
    check(out, refLinear(models, normalize));
  });

  it.each([0, 0.3, 0.5, 1])('slerp (t = %s), and its lerp fallback for near-colinear tensors', (t) => {
    const fx = fixture(11, 1);
    const v0 = rounded(fx.base, f64);
    const v1 = rounded(gaussian(N, rng(99), 0.05), f64);
    const run = (a: Vec, b: Vec) =>
      runMethod(getMethod('slerp'), asArray(a, f64), [{ id: 'other', tensor: asArray(b, f64) }], { t });
    check(run(v0, v1), refSlerp(v0, v1, t));
    const near = rounded(
      gaussian(N, rng(7), 0.001).map((e, i) => v0[i]! + e),
      f64,
    );
    const cos = v0.reduce((s, a, i) => s + a * near[i]!, 0) / Math.hypot(...v0) / Math.hypot(...near);
    expect(cos).toBeGreaterThan(0.9995); // the lerp branch
    check(run(v0, near), refSlerp(v0, near, t));
  });
});

/** bf16 bits as an ordered integer (sign-magnitude -> monotone), to count ulps. */
function bf16Order(bits: number): number {
  return bits & 0x8000 ? -(bits & 0x7fff) : bits;
}

describe('bf16 output', () => {
  it.each([...Object.keys(GTA), 'linear', 'slerp'])(
    '%s: within 1 ulp of round-to-nearest-even of the f64 result, bit-identical for >= 99.9%%',
    (name) => {
      const method = getMethod(name);
      const fx = fixture(77, name === 'slerp' ? 1 : 3);
      const base = rounded(fx.base, false);
      const models = fx.models.map((m) => ({ ...m, x: rounded(m.x, false), weight: Math.abs(m.weight) }));
      const shape = GTA[name];
      const harness: HarnessModel[] = models.map((m) => ({
        id: m.id,
        tensor: Float32Array.from(m.x),
        params: {
          weight: m.weight,
          ...(shape && shape.sparsify !== 'none' ? { density: m.density } : {}),
          ...(shape?.sparsify === 'magnitude_outliers' ? { gamma: m.gamma } : {}),
        },
      }));
      const params: Record<string, number | string | boolean> = name === 'slerp' ? { t: 0.4 } : {};
      const out = runMethod(method, Float32Array.from(base), harness, params, { name: NAME, seed: SEED });
      const ref =
        name === 'linear'
          ? refLinear(models, true)
          : name === 'slerp'
            ? refSlerp(base, models[0]!.x, 0.4)
            : refGta(base, models, {
                ...shape!,
                normalize: defaultOf(method, 'normalize') as boolean,
                lambda: 1,
                rescale: (defaultOf(method, 'rescale') as string | undefined) ?? 'none',
              });
      const bits = floatToBf16(out, new Uint16Array(out.length));
      let identical = 0;
      ref.forEach((r, i) => {
        const want = numberToBf16Bits(r);
        const d = Math.abs(bf16Order(bits[i]!) - bf16Order(want));
        expect(d).toBeLessThanOrEqual(1);
        if (d === 0) identical++;
      });
      expect(identical / ref.length).toBeGreaterThanOrEqual(0.999);
    },
  );
});

describe('method edge cases', () => {
  it('breadcrumbs keeps the top entries when floor(gamma * n) = 0 (mergekit would wipe the delta)', () => {
    const base = new Float64Array(10);
    const x = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const out = runMethod(getMethod('breadcrumbs'), base, [
      { id: 'a', tensor: x, params: { weight: 1, density: 0.5, gamma: 0.01 } },
    ]);
    expect(Array.from(out)).toEqual([0, 0, 0, 0, 0, 6, 7, 8, 9, 10]);
    const gamma = runMethod(getMethod('breadcrumbs'), base, [
      { id: 'a', tensor: x, params: { weight: 1, density: 0.5, gamma: 0.2 } },
    ]);
    expect(Array.from(gamma)).toEqual([0, 0, 0, 4, 5, 6, 7, 8, 0, 0]);
  });

  it('TIES elects a zero sum as positive and averages agreeing entries only', () => {
    const base = Float64Array.from([0, 0, 0]);
    const out = runMethod(getMethod('ties'), base, [
      { id: 'a', tensor: Float64Array.from([1, 2, -3]), params: { weight: 1 } },
      { id: 'b', tensor: Float64Array.from([-1, 4, -1]), params: { weight: 1 } },
    ]);
    expect(Array.from(out)).toEqual([1, 3, -2]);
  });

  it('DARE masks depend on seed, tensor and model, and are reproducible', () => {
    const base = new Float32Array(4096);
    const x = Float32Array.from({ length: 4096 }, (_, i) => 1 + (i % 7));
    const run = (seed: bigint, name: string, id: string) =>
      runMethod(
        getMethod('dare_linear'),
        base,
        [{ id, tensor: x, params: { weight: 1, density: 0.5 } }],
        { rescale: 'none' },
        { seed, name },
      );
    expect(run(1n, 'w', 'a')).toEqual(run(1n, 'w', 'a'));
    expect(run(1n, 'w', 'a')).not.toEqual(run(2n, 'w', 'a'));
    expect(run(1n, 'w', 'a')).not.toEqual(run(1n, 'v', 'a'));
    expect(run(1n, 'w', 'a')).not.toEqual(run(1n, 'w', 'b'));
  });

  it('linear refuses weights summing to 0 under normalize, naming the tensor', () => {
    const x = new Float32Array(3);
    expect(() =>
      runMethod(
        getMethod('linear'),
        null,
        [
          { id: 'a', tensor: x, params: { weight: 1 } },
          { id: 'b', tensor: x, params: { weight: -1 } },
        ],
        {},
        { name: 'model.norm.weight' },
      ),
    ).toThrow(/model\.norm\.weight/);
  });
});
