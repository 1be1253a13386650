// The methods beyond the core eight (della, della_linear, nuslerp, multislerp, karcher, model_stock, sce,
// nearswap, ram, passthrough) against float64 references written plainly from mergekit's definitions,
// on random tensors: per tensor max|out - ref| <= 1e-6 * max|ref|, in f32 and f64.
import { philox4x32, randomStream, type FloatArray } from '@hm3/tensor';
import { describe, expect, it } from 'vitest';
import { getMethod } from '../registry.js';
import { gaussian, maxError, rng, runMethod } from './method-harness.test-helper.js';

const NAME = 'model.layers.2.mlp.down_proj.weight';
const SEED = 987654321n;
const ROWS = 24;
const COLS = 40;
const N = ROWS * COLS;
const SHAPE = [ROWS, COLS];

type Vec = number[];

function asArray(v: Vec, f64: boolean): FloatArray {
  return f64 ? Float64Array.from(v) : Float32Array.from(v);
}
function rounded(v: Vec, f64: boolean): Vec {
  return Array.from(asArray(v, f64));
}
function check(out: FloatArray, ref: Vec, tol = 1e-6) {
  const { err, scale } = maxError(out, ref);
  expect(scale).toBeGreaterThan(0);
  expect(err).toBeLessThanOrEqual(tol * scale);
}
const norm = (v: Vec) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const dotOf = (a: Vec, b: Vec) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const sub = (a: Vec, b: Vec) => a.map((x, i) => x - b[i]!);
const add = (a: Vec, b: Vec) => a.map((x, i) => x + b[i]!);

/** base ~ N(0, 0.05); models = base + N(0, 0.02). */
function fixture(seed: number, count: number, f64: boolean) {
  const random = rng(seed);
  const base = rounded(gaussian(N, random, 0.05), f64);
  const models = Array.from({ length: count }, () =>
    rounded(
      gaussian(N, random, 0.02).map((e, i) => base[i]! + e),
      f64,
    ),
  );
  return { base, models };
}

// ---- references ---------------------------------------------------------------------------------------

/** della_magprune keep decisions: p by ascending-|d| rank within each row, uniform words of the stream. */
function refDellaKeep(d: Vec, id: string, density: number, epsilon: number): boolean[] {
  const probs = new Array<number>(d.length).fill(0);
  for (let r = 0; r < ROWS; r++) {
    const idx = Array.from({ length: COLS }, (_, j) => r * COLS + j);
    idx.sort((a, b) => Math.abs(d[a]!) - Math.abs(d[b]!) || a - b);
    idx.forEach((i, rank) => (probs[i] = density - epsilon + (2 * epsilon * rank) / (COLS - 1)));
  }
  const stream = randomStream(SEED, `${NAME}\u0000${id}`);
  const words = new Uint32Array(4);
  return d.map((_, i) => {
    philox4x32(i >> 2, 0, stream.stream0, stream.stream1, stream.key0, stream.key1, words);
    return words[i & 3]! < probs[i]! * 4294967296;
  });
}

function refDella(
  base: Vec,
  models: Vec[],
  weights: number[],
  density: number,
  epsilon: number,
  o: { consensus: boolean; normalize: boolean; rescale: string; lambda: number },
): Vec {
  const deltas = models.map((x, k) => {
    const d = sub(x, base);
    const keep = refDellaKeep(d, `m${k}`, density, epsilon);
    const kept = d.map((v, i) => (keep[i] ? v : 0));
    let scale = 1;
    if (o.rescale === 'l1') {
      const before = d.reduce((s, v) => s + Math.abs(v), 0);
      const after = kept.reduce((s, v) => s + Math.abs(v), 0);
      if (before >= 1e-7 && after >= 1e-7) scale = before / after;
    } else if (o.rescale === 'inverse_density') scale = 1 / density;
    return kept.map((v) => v * scale);
  });
  return base.map((b, i) => {
    const wd = deltas.map((d, k) => weights[k]! * d[i]!);
    let mixed = 0;
    let divisor = 0;
    if (o.consensus) {
      const s = wd.reduce((a, v) => a + v, 0) >= 0 ? 1 : -1;
      wd.forEach((v, k) => {
        if (Math.sign(v) === s) {
          mixed += v;
          divisor += weights[k]!;
        }
      });
      if (divisor === 0) divisor = 1;
    } else {
      mixed = wd.reduce((a, v) => a + v, 0);
      divisor = weights.reduce((a, v) => a + v, 0);
    }
    return b + o.lambda * (o.normalize ? mixed / divisor : mixed);
  });
}

function slerpPair(a: Vec, b: Vec, t: number): Vec {
  const cos = dotOf(a, b) / (Math.max(norm(a), 1e-7) * Math.max(norm(b), 1e-7));
  const theta = Math.acos(Math.min(1, Math.max(-1, cos)));
  if (Math.abs(Math.sin(theta)) < 1e-8) return a.map((x, i) => (1 - t) * x + t * b[i]!);
  return a.map((x, i) => (Math.sin((1 - t) * theta) * x + Math.sin(t * theta) * b[i]!) / Math.sin(theta));
}

function refNuslerp(base: Vec | null, x0: Vec, x1: Vec, w0: number, w1: number, mode: string): Vec {
  const t = w1 / (w0 + w1);
  const a = base === null ? x0 : sub(x0, base);
  const b = base === null ? x1 : sub(x1, base);
  let out = new Array<number>(N).fill(0);
  if (mode === 'flatten') out = slerpPair(a, b, t);
  else if (mode === 'rows') {
    for (let r = 0; r < ROWS; r++) {
      const s = slerpPair(a.slice(r * COLS, (r + 1) * COLS), b.slice(r * COLS, (r + 1) * COLS), t);
      s.forEach((v, j) => (out[r * COLS + j] = v));
    }
  } else {
    for (let c = 0; c < COLS; c++) {
      const col = (v: Vec) => Array.from({ length: ROWS }, (_, r) => v[r * COLS + c]!);
      slerpPair(col(a), col(b), t).forEach((v, r) => (out[r * COLS + c] = v));
    }
  }
  return base === null ? out : add(out, base);
}

function refMultislerp(base: Vec | null, xs: Vec[], weights: number[]): Vec {
  const total = weights.reduce((a, b) => a + b, 0);
  const w = weights.map((v) => v / total);
  const vs = xs.map((x) => (base === null ? x : sub(x, base)));
  const norms = vs.map(norm);
  const units = vs.map((v, k) => v.map((x) => x / (norms[k]! + 1e-8)));
  let mean = units[0]!.map((_, i) => units.reduce((s, u, k) => s + w[k]! * u[i]!, 0));
  mean = mean.map((x) => x / norm(mean));
  const tangent = mean.map((_, i) =>
    units.reduce((s, u, k) => s + w[k]! * (u[i]! - dotOf(u, mean) * mean[i]!), 0),
  );
  const tn = norm(tangent) + 1e-8;
  const avg = norms.reduce((s, n, k) => s + n * w[k]!, 0);
  const res = mean.map((m, i) => (m * Math.cos(tn) + (tangent[i]! * Math.sin(tn)) / tn) * avg);
  return base === null ? res : add(res, base);
}

function refKarcher(xs: Vec[], maxIter: number, tol: number): Vec {
  const a = 1 / xs.length;
  const norms = xs.map(norm);
  const units = xs.map((x, k) => x.map((v) => v / norms[k]!));
  let u = units[0]!.map((_, i) => units.reduce((s, un) => s + a * un[i]!, 0));
  u = u.map((v) => v / norm(u));
  for (let it = 0; it < maxIter; it++) {
    let T = u.map(() => 0);
    for (const ui of units) {
      const d = Math.min(1, Math.max(-1, dotOf(u, ui)));
      const th = Math.acos(d);
      if (th < tol) continue;
      T = T.map((v, i) => v + a * (th / Math.sin(th)) * (ui[i]! - d * u[i]!));
    }
    const nT = norm(T);
    if (nT < tol) break;
    u = u.map((v, i) => Math.cos(nT) * v + Math.sin(nT) * (T[i]! / nT));
    const nu = norm(u);
    u = u.map((v) => v / nu);
  }
  const s = norms.reduce((acc, n) => acc + a * n, 0);
  return u.map((v) => s * v);
}

function refModelStock(base: Vec, xs: Vec[], rowLength: number): Vec {
  const out = new Array<number>(N).fill(0);
  const K = xs.length;
  for (let r0 = 0; r0 < N; r0 += rowLength) {
    const b = base.slice(r0, r0 + rowLength);
    const ds = xs.map((x) => sub(x.slice(r0, r0 + rowLength), b));
    const cos: number[] = [];
    for (let i = 0; i < K; i++)
      for (let j = i + 1; j < K; j++)
        cos.push(dotOf(ds[i]!, ds[j]!) / Math.max(norm(ds[i]!) * norm(ds[j]!), 1e-6));
    const c = cos.reduce((s, v) => s + v, 0) / cos.length;
    const t = (K * c) / (1 + (K - 1) * c);
    for (let i = 0; i < rowLength; i++) {
      const avg = xs.reduce((s, x) => s + x[r0 + i]!, 0) / K;
      out[r0 + i] = t * avg + (1 - t) * b[i]!;
    }
  }
  return out;
}

function refSce(base: Vec, xs: Vec[], topk: number): Vec {
  let ds = xs.map((x) => sub(x, base));
  const K = ds.length;
  if (topk < 1) {
    const variance = base.map((_, i) => {
      const m = ds.reduce((s, d) => s + d[i]!, 0) / K;
      return ds.reduce((s, d) => s + (d[i]! - m) ** 2, 0) / K;
    });
    const k = Math.floor(topk * variance.filter((v) => v !== 0).length);
    const order = variance.map((_, i) => i).sort((a, b) => variance[b]! - variance[a]! || a - b);
    const keep = new Set(order.slice(0, k));
    ds = ds.map((d) => d.map((v, i) => (keep.has(i) ? v : 0)));
  }
  const raw = ds.map((d) => d.reduce((s, v) => s + v * v, 0) / N);
  const total = raw.reduce((a, b) => a + b, 0);
  const w = raw.map((v) => v / total);
  return base.map((b, i) => {
    const s = ds.reduce((acc, d) => acc + d[i]!, 0) >= 0 ? 1 : -1;
    let num = 0;
    let den = 0;
    ds.forEach((d, k) => {
      if (Math.sign(d[i]!) === s) {
        num += w[k]! * d[i]!;
        den += w[k]!;
      }
    });
    return b + num / (den === 0 ? 1 : den);
  });
}

function refNearswap(base: Vec, x: Vec, t: number): Vec {
  return base.map((b, i) => {
    const diff = Math.abs(b - x[i]!);
    const w = diff === 0 ? 1 : Math.min(1, t / diff);
    return w * x[i]! + (1 - w) * b;
  });
}

function refRam(base: Vec, xs: Vec[], epsilon: number): Vec {
  return base.map((b, i) => {
    const changed = xs.map((x) => x[i]! - b).filter((d) => Math.abs(d) > epsilon);
    if (changed.length === 0) return b;
    const sum = changed.reduce((s, d) => s + d, 0);
    return b + (changed.length === 1 ? sum : sum / changed.length);
  });
}

// ---- tests --------------------------------------------------------------------------------------------

const ctx = { name: NAME, seed: SEED, shape: SHAPE };

describe.each([false, true])('remaining methods against a float64 reference (compute f64: %s)', (f64) => {
  it.each([
    { name: 'della', consensus: true, normalize: true, rescale: 'l1', lambda: 1 },
    { name: 'della', consensus: true, normalize: false, rescale: 'inverse_density', lambda: 0.8 },
    { name: 'della_linear', consensus: false, normalize: false, rescale: 'l1', lambda: 1 },
    { name: 'della_linear', consensus: false, normalize: true, rescale: 'none', lambda: 1.2 },
  ])('$name %o', (o) => {
    const { base, models } = fixture(3, 3, f64);
    const weights = [0.5, 0.3, 0.9];
    const out = runMethod(
      getMethod(o.name),
      asArray(base, f64),
      models.map((x, k) => ({
        id: `m${k}`,
        tensor: asArray(x, f64),
        params: { weight: weights[k]!, density: 0.4, epsilon: 0.2 },
      })),
      { normalize: o.normalize, rescale: o.rescale, lambda: o.lambda },
      ctx,
    );
    check(out, refDella(base, models, weights, 0.4, 0.2, o));
  });

  it.each([
    ['flatten', true],
    ['rows', true],
    ['columns', true],
    ['flatten', false],
    ['rows', false],
  ] as const)('nuslerp over %s (base: %s)', (mode, withBase) => {
    const { base, models } = fixture(4, 2, f64);
    const params: Record<string, boolean> =
      mode === 'flatten' ? {} : { nuslerp_flatten: false, nuslerp_row_wise: mode === 'columns' };
    const out = runMethod(
      getMethod('nuslerp'),
      withBase ? asArray(base, f64) : null,
      models.map((x, k) => ({ id: `m${k}`, tensor: asArray(x, f64), params: { weight: [0.3, 0.9][k]! } })),
      params,
      ctx,
    );
    check(out, refNuslerp(withBase ? base : null, models[0]!, models[1]!, 0.3, 0.9, mode));
  });

  it.each([true, false])('multislerp (base: %s)', (withBase) => {
    const { base, models } = fixture(5, 3, f64);
    const weights = [0.2, 0.5, 0.8];
    const out = runMethod(
      getMethod('multislerp'),
      withBase ? asArray(base, f64) : null,
      models.map((x, k) => ({ id: `m${k}`, tensor: asArray(x, f64), params: { weight: weights[k]! } })),
      {},
      ctx,
    );
    check(out, refMultislerp(withBase ? base : null, models, weights));
  });

  it('karcher', () => {
    const { models } = fixture(6, 3, f64);
    const spread = models.map((x, k) =>
      x.map((v, i) => v * (1 + 0.3 * k) + (k === 2 ? 0.03 * Math.sin(i) : 0)),
    );
    const inputs = spread.map((x) => rounded(x, f64));
    const out = runMethod(
      getMethod('karcher'),
      null,
      inputs.map((x, k) => ({ id: `m${k}`, tensor: asArray(x, f64) })),
      { max_iter: 25, tol: 1e-9 },
      ctx,
    );
    check(out, refKarcher(inputs, 25, 1e-9));
  });

  it.each([false, true])('model_stock (filter_wise: %s)', (filterWise) => {
    const { base, models } = fixture(7, 3, f64);
    const out = runMethod(
      getMethod('model_stock'),
      asArray(base, f64),
      models.map((x, k) => ({ id: `m${k}`, tensor: asArray(x, f64) })),
      { filter_wise: filterWise },
      ctx,
    );
    check(out, refModelStock(base, models, filterWise ? COLS : N));
  });

  it.each([1, 0.3])('sce (select_topk %s)', (topk) => {
    const { base, models } = fixture(8, 3, f64);
    const out = runMethod(
      getMethod('sce'),
      asArray(base, f64),
      models.map((x, k) => ({ id: `m${k}`, tensor: asArray(x, f64) })),
      { select_topk: topk },
      ctx,
    );
    check(out, refSce(base, models, topk));
  });

  it.each([0.001, 0.02, 10])('nearswap (t %s)', (t) => {
    const { base, models } = fixture(9, 1, f64);
    const x = models[0]!.map((v, i) => (i % 7 === 0 ? base[i]! : v)); // some identical entries
    const out = runMethod(
      getMethod('nearswap'),
      asArray(base, f64),
      [{ id: 'o', tensor: asArray(x, f64) }],
      { t },
      ctx,
    );
    check(out, refNearswap(base, x, t));
  });

  it.each([1e-5, 0.02])('ram (epsilon %s)', (epsilon) => {
    const { base, models } = fixture(10, 3, f64);
    const out = runMethod(
      getMethod('ram'),
      asArray(base, f64),
      models.map((x, k) => ({ id: `m${k}`, tensor: asArray(x, f64) })),
      { epsilon },
      ctx,
    );
    check(out, refRam(base, models, epsilon));
  });

  it('passthrough (scale 1 and 0.25)', () => {
    const { models } = fixture(11, 1, f64);
    const x = models[0]!;
    const run = (scale: number) =>
      runMethod(
        getMethod('passthrough'),
        null,
        [{ id: 'o', tensor: asArray(x, f64), params: { scale } }],
        {},
        ctx,
      );
    check(run(1), x, 0);
    check(
      run(0.25),
      x.map((v) => v * 0.25),
    );
  });
});

describe('della in expectation', () => {
  it('keeps the smallest |delta| of each row with probability density - epsilon and the largest with density + epsilon', () => {
    const rows = 4000;
    const cols = 8;
    const delta = Float64Array.from({ length: rows * cols }, (_, i) => ((i % cols) + 1) * (i % 2 ? -1 : 1));
    const base = new Float64Array(rows * cols);
    const out = runMethod(
      getMethod('della_linear'),
      base,
      [{ id: 'x', tensor: delta, params: { weight: 1, density: 0.5, epsilon: 0.3 } }],
      { rescale: 'none' },
      { name: NAME, seed: 5n, shape: [rows, cols] },
    );
    const kept = new Array<number>(cols).fill(0);
    out.forEach((v, i) => {
      if (v !== 0) kept[i % cols]!++;
    });
    const rate = kept.map((k) => k / rows);
    // ranks 0..7 -> p = 0.2 + 0.6 * rank / 7; 4000 draws: sd <= 0.008
    rate.forEach((r, rank) => expect(Math.abs(r - (0.2 + (0.6 * rank) / 7))).toBeLessThan(0.035));
    // and rescale l1 keeps the L1 norm of the delta
    const l1 = runMethod(
      getMethod('della_linear'),
      base,
      [{ id: 'x', tensor: delta, params: { weight: 1, density: 0.5, epsilon: 0.3 } }],
      {},
      { name: NAME, seed: 5n, shape: [rows, cols] },
    );
    const sum = (v: ArrayLike<number>) => Array.from(v).reduce((s, x) => s + Math.abs(x), 0);
    expect(sum(l1) / sum(delta)).toBeCloseTo(1, 9);
  });

  it('refuses an epsilon that takes density +/- epsilon outside (0, 1)', () => {
    const x = Float64Array.from([1, 2, 3, 4]);
    expect(() =>
      runMethod(getMethod('della'), new Float64Array(4), [
        { id: 'x', tensor: x, params: { weight: 1, density: 0.9, epsilon: 0.15 } },
      ]),
    ).toThrow(/epsilon 0.15 must keep density/);
  });
});

describe('emr shared model', () => {
  it.each([false, true])('theta_base + tau_uni (elected sign, largest agreeing magnitude), f64 %s', (f64) => {
    const { base, models } = fixture(12, 3, f64);
    const out = runMethod(
      getMethod('emr'),
      asArray(base, f64),
      models.map((x, k) => ({ id: `m${k}`, tensor: asArray(x, f64) })),
      {},
      ctx,
    );
    const ref = base.map((b, i) => {
      const d = models.map((x) => x[i]! - b);
      const sign = d.reduce((a, v) => a + v, 0) >= 0 ? 1 : -1;
      const agreeing = d.filter((v) => Math.sign(v) === sign).map(Math.abs);
      return b + sign * (agreeing.length === 0 ? 0 : Math.max(...agreeing));
    });
    check(out, ref);
    // one task alone: its own model
    const alone = runMethod(
      getMethod('emr'),
      asArray(base, f64),
      [{ id: 'x', tensor: asArray(models[0]!, f64) }],
      {},
      ctx,
    );
    check(alone, models[0]!);
  });
});
