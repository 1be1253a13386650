// Properties of the methods beyond the core eight (fast-check): copies of one model merge to it,
// permuting the models with their parameters changes nothing, and each method's own limits
// (nuslerp at t = 0 / 1, nearswap bounded by its inputs, density 1 reducing DELLA to its dense forms).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { getMethod } from '../registry.js';
import { maxError, runMethod } from './method-harness.test-helper.js';

const value = fc.double({ min: -2, max: 2, noNaN: true, noDefaultInfinity: true });
const rowsCols = fc.record({ rows: fc.integer({ min: 1, max: 5 }), cols: fc.integer({ min: 2, max: 8 }) });
const vector = (n: number) =>
  fc.array(value, { minLength: n, maxLength: n }).map((v) => Float64Array.from(v));
const weight = fc.double({ min: 0.05, max: 2, noNaN: true });

const caseArb = (minModels: number, maxModels = 4) =>
  rowsCols.chain(({ rows, cols }) =>
    fc.record({
      shape: fc.constant([rows, cols]),
      base: vector(rows * cols),
      models: fc.array(fc.record({ tensor: vector(rows * cols), weight }), {
        minLength: minModels,
        maxLength: maxModels,
      }),
    }),
  );

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-9) {
  const { err, scale } = maxError(a, b);
  expect(err).toBeLessThanOrEqual(tol * Math.max(1, scale));
}

const PERMUTABLE = ['multislerp', 'karcher', 'model_stock', 'sce', 'ram', 'della', 'della_linear'];

describe('remaining method properties', () => {
  it.each(['multislerp', 'karcher', 'model_stock', 'sce', 'ram', 'della', 'della_linear'])(
    '%s: copies of one model merge to that model',
    (name) => {
      const method = getMethod(name);
      fc.assert(
        fc.property(caseArb(1, 1), fc.integer({ min: 2, max: 4 }), (c, copies) => {
          const x = c.models[0]!.tensor;
          const models = Array.from({ length: copies }, (_, k) => ({
            id: `copy-${k}`,
            tensor: x,
            params: { weight: 0.5 + k, density: 1 },
          }));
          // multislerp has no direction for a zero (task) vector, as mergekit
          if (name === 'multislerp') fc.pre(x.some((v, i) => Math.abs(v - c.base[i]!) > 1e-3));
          // karcher: a tensor of norm <= tol (1e-5) counts as zero, as mergekit
          if (name === 'karcher') fc.pre(Math.hypot(...x) > 1e-4);
          // model_stock: a task vector of norm < 1e-3 meets the 1e-6 clamp of |d_i||d_j| (cos -> 0)
          if (name === 'model_stock') fc.pre(x.reduce((a, v, i) => a + (v - c.base[i]!) ** 2, 0) > 1e-4);
          const params: Record<string, number | boolean> =
            name === 'ram' ? { epsilon: 0 } : name.startsWith('della') ? { normalize: true } : {};
          const out = runMethod(method, c.base, models, params, { shape: c.shape });
          // karcher and multislerp work on directions and norms: exact up to rounding
          close(out, x, ['karcher', 'multislerp', 'model_stock'].includes(name) ? 1e-6 : 1e-9);
        }),
        { numRuns: 30 },
      );
    },
  );

  it.each(PERMUTABLE)('%s: permuting the models with their parameters changes nothing', (name) => {
    const method = getMethod(name);
    fc.assert(
      fc.property(caseArb(2), fc.nat(), (c, rot) => {
        // sce and della vote on signs of sums: on multiples of 1/8 the sums are exact, so an exact
        // cancellation does not depend on the summation order (it does in floating point, as in mergekit)
        const exact = name === 'sce' || name === 'della';
        const q = (v: Float64Array) => (exact ? v.map((x) => Math.round(x * 8) / 8) : v);
        const base = q(c.base);
        const models = c.models.map((m, k) => ({
          id: `m${k}`,
          tensor: q(m.tensor),
          params: { weight: exact ? 1 : m.weight, density: 0.5, epsilon: 0.1 },
        }));
        if (name === 'multislerp' || name === 'karcher') {
          // on the sphere: the start (the normalised mean direction) must be well defined
          const origin = name === 'multislerp' ? base : new Float64Array(base.length);
          const mean = new Float64Array(c.base.length);
          for (const m of models) {
            const d = m.tensor.map((v, i) => v - origin[i]!);
            const n = Math.hypot(...d);
            fc.pre(n > 1e-3);
            d.forEach((v, i) => (mean[i] = mean[i]! + v / n / models.length));
          }
          fc.pre(Math.hypot(...mean) > 0.1);
        }
        const r = rot % models.length;
        const permuted = [...models.slice(r), ...models.slice(0, r)].reverse();
        const run = (ms: typeof models) => runMethod(method, base, ms, {}, { shape: c.shape });
        close(run(permuted), run(models), 1e-7);
      }),
      { numRuns: 30 },
    );
  });

  it('nuslerp: weights (1, 0) give the first model, (0, 1) the second, swapping both changes nothing', () => {
    const method = getMethod('nuslerp');
    fc.assert(
      fc.property(caseArb(2, 2), fc.boolean(), fc.boolean(), (c, withBase, flatten) => {
        const [a, b] = c.models as [
          { tensor: Float64Array; weight: number },
          { tensor: Float64Array; weight: number },
        ];
        const run = (wa: number, wb: number, swap = false) => {
          const ms = [
            { id: 'a', tensor: a.tensor, params: { weight: wa } },
            { id: 'b', tensor: b.tensor, params: { weight: wb } },
          ];
          return runMethod(
            method,
            withBase ? c.base : null,
            swap ? ms.reverse() : ms,
            { nuslerp_flatten: flatten },
            {
              shape: c.shape,
            },
          );
        };
        close(run(1, 0), a.tensor, 1e-7);
        close(run(0, 1), b.tensor, 1e-7);
        close(run(a.weight, b.weight, true), run(a.weight, b.weight), 1e-7);
      }),
      { numRuns: 40 },
    );
  });

  it('nearswap: each output element lies between the base and the other model', () => {
    fc.assert(
      fc.property(caseArb(1, 1), fc.double({ min: 1e-6, max: 3, noNaN: true }), (c, t) => {
        const x = c.models[0]!.tensor;
        const out = runMethod(getMethod('nearswap'), c.base, [{ id: 'x', tensor: x }], { t });
        out.forEach((v, i) => {
          expect(v).toBeGreaterThanOrEqual(Math.min(c.base[i]!, x[i]!) - 1e-12);
          expect(v).toBeLessThanOrEqual(Math.max(c.base[i]!, x[i]!) + 1e-12);
        });
        // t at least the largest gap: the other model exactly
        const gap = Math.max(...c.base.map((b, i) => Math.abs(b - x[i]!)));
        close(runMethod(getMethod('nearswap'), c.base, [{ id: 'x', tensor: x }], { t: gap + 1 }), x);
      }),
      { numRuns: 40 },
    );
  });

  it('density 1 reduces della to TIES and della_linear to task arithmetic', () => {
    fc.assert(
      fc.property(caseArb(1), fc.boolean(), (c, normalize) => {
        const models = c.models.map((m, k) => ({
          id: `m${k}`,
          tensor: m.tensor,
          params: { weight: m.weight, density: 1 },
        }));
        const run = (name: string) =>
          runMethod(getMethod(name), c.base, models, { normalize }, { shape: c.shape });
        close(run('della'), run('ties'));
        close(run('della_linear'), run('task_arithmetic'));
      }),
      { numRuns: 40 },
    );
  });

  it('passthrough with scale 1 is the model itself, bit for bit', () => {
    fc.assert(
      fc.property(caseArb(1, 1), (c) => {
        const x = Float32Array.from(c.models[0]!.tensor);
        expect(Array.from(runMethod(getMethod('passthrough'), null, [{ id: 'x', tensor: x }]))).toEqual(
          Array.from(x),
        );
      }),
      { numRuns: 20 },
    );
  });
});
