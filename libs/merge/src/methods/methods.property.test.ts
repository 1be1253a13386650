// Properties every method keeps (fast-check): N copies of one model merge to it; permuting the models
// with their parameters changes nothing; weight 0 removes a model; density 1 reduces TIES and DARE to
// their dense forms.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { getMethod } from '../registry.js';
import { maxError, runMethod } from './method-harness.test-helper.js';

const GTA_METHODS = [
  'task_arithmetic',
  'ties',
  'dare_linear',
  'dare_ties',
  'breadcrumbs',
  'breadcrumbs_ties',
];
const ALL_MULTI = ['linear', ...GTA_METHODS];

const value = fc.double({ min: -2, max: 2, noNaN: true, noDefaultInfinity: true });
const length = fc.integer({ min: 1, max: 40 });
const vector = (n: number) =>
  fc.array(value, { minLength: n, maxLength: n }).map((v) => Float64Array.from(v));

interface Case {
  base: Float64Array;
  models: { tensor: Float64Array; weight: number; density: number; gamma: number }[];
}

const caseArb = (minModels: number) =>
  length.chain((n) =>
    fc.record({
      base: vector(n),
      models: fc.array(
        fc.record({
          tensor: vector(n),
          weight: fc.double({ min: 0.05, max: 2, noNaN: true }),
          density: fc.double({ min: 0.05, max: 1, noNaN: true }),
          gamma: fc.double({ min: 0, max: 0.3, noNaN: true }),
        }),
        { minLength: minModels, maxLength: 4 },
      ),
    }),
  );

function close(a: ArrayLike<number>, b: ArrayLike<number>) {
  const { err, scale } = maxError(a, b);
  expect(err).toBeLessThanOrEqual(1e-9 * Math.max(1, scale));
}

function paramsFor(method: string, m: Case['models'][number]) {
  const p: Record<string, number> = { weight: m.weight };
  if (['ties', 'dare_linear', 'dare_ties', 'breadcrumbs', 'breadcrumbs_ties'].includes(method))
    p['density'] = m.density;
  if (method.startsWith('breadcrumbs')) p['gamma'] = m.gamma;
  return p;
}

describe('method properties', () => {
  it.each(ALL_MULTI)('%s: N copies of one model (normalize, density 1) merge to that model', (name) => {
    const method = getMethod(name);
    fc.assert(
      fc.property(caseArb(1), fc.integer({ min: 1, max: 4 }), (c, copies) => {
        const model = c.models[0]!;
        const models = Array.from({ length: copies }, (_, k) => ({
          id: `copy-${k}`,
          tensor: model.tensor,
          params: {
            weight: c.models[k % c.models.length]!.weight,
            ...(name === 'linear' || name === 'task_arithmetic' ? {} : { density: 1 }),
          },
        }));
        const out = runMethod(method, c.base, models, { normalize: true });
        close(out, model.tensor);
      }),
      { numRuns: 40 },
    );
  });

  it.each(ALL_MULTI)('%s: permuting the models with their parameters changes nothing', (name) => {
    const method = getMethod(name);
    fc.assert(
      fc.property(caseArb(2), fc.nat(), fc.boolean(), (c, rot, normalize) => {
        const models = c.models.map((m, k) => ({
          id: `m${k}`,
          tensor: m.tensor,
          params: paramsFor(name, m),
        }));
        const r = rot % models.length;
        const permuted = [...models.slice(r), ...models.slice(0, r)].reverse();
        const params = name === 'linear' ? { normalize: true } : { normalize };
        close(runMethod(method, c.base, permuted, params), runMethod(method, c.base, models, params));
      }),
      { numRuns: 40 },
    );
  });

  it.each(ALL_MULTI)('%s: a model of weight 0 is as if absent', (name) => {
    const method = getMethod(name);
    fc.assert(
      fc.property(caseArb(2), fc.boolean(), (c, normalize) => {
        const models = c.models.map((m, k) => ({
          id: `m${k}`,
          tensor: m.tensor,
          params: paramsFor(name, m),
        }));
        const zeroed = models.map((m, k) => (k === 0 ? { ...m, params: { ...m.params, weight: 0 } } : m));
        const params = name === 'linear' ? { normalize: true } : { normalize };
        close(runMethod(method, c.base, zeroed, params), runMethod(method, c.base, models.slice(1), params));
      }),
      { numRuns: 40 },
    );
  });

  it('density 1 reduces TIES, DARE and breadcrumbs to their dense forms', () => {
    fc.assert(
      fc.property(
        caseArb(1),
        fc.boolean(),
        fc.double({ min: 0.1, max: 2, noNaN: true }),
        (c, normalize, lambda) => {
          const models = c.models.map((m, k) => ({
            id: `m${k}`,
            tensor: m.tensor,
            params: { weight: m.weight, density: 1 },
          }));
          const dense = (name: string) => runMethod(getMethod(name), c.base, models, { normalize, lambda });
          const plain = runMethod(
            getMethod('task_arithmetic'),
            c.base,
            models.map((m) => ({ ...m, params: { weight: m.params.weight } })),
            { normalize, lambda },
          );
          close(dense('dare_linear'), plain);
          close(dense('breadcrumbs'), plain);
          const tiesDense = dense('ties');
          close(dense('dare_ties'), tiesDense);
          close(dense('breadcrumbs_ties'), tiesDense);
          // and TIES without trimming is the sign-elected disjoint mean of the full task vectors
          const ref = c.base.map((b, i) => {
            const wd = models.map((m) => m.params.weight * (m.tensor[i]! - b));
            const s = wd.reduce((a, v) => a + v, 0) >= 0 ? 1 : -1;
            let num = 0;
            let den = 0;
            wd.forEach((v, k) => {
              if (Math.sign(v) === s) {
                num += v;
                den += models[k]!.params.weight;
              }
            });
            return b + lambda * (normalize ? num / (den === 0 ? 1 : den) : num);
          });
          close(tiesDense, ref);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('slerp of a model with itself is that model, for any t', () => {
    fc.assert(
      fc.property(length.chain(vector), fc.double({ min: 0, max: 1, noNaN: true }), (x, t) => {
        close(runMethod(getMethod('slerp'), x, [{ id: 'same', tensor: x }], { t }), x);
      }),
      { numRuns: 40 },
    );
  });
});

describe('elementwise declarations', () => {
  const ALL = [...ALL_MULTI, 'slerp', 'della', 'della_linear', 'ram', 'nearswap', 'passthrough'];
  const SINGLE = new Set(['slerp', 'nearswap', 'passthrough']);
  const variants: Record<string, Record<string, number | string | boolean>>[] = [
    { global: {}, model: { density: 1 } },
    { global: { rescale: 'inverse_density' }, model: { density: 0.5 } },
    { global: { rescale: 'l1' }, model: { density: 0.5 } },
    { global: { rescale: 'none' }, model: { density: 0.6, gamma: 0.1 } },
  ] as never;

  it.each(ALL)('%s: when it says elementwise, row blocks merge to the same tensor as the whole', (name) => {
    const method = getMethod(name);
    fc.assert(
      fc.property(caseArb(1), fc.nat(), fc.nat(), (c, v, cutRaw) => {
        const variant = variants[v % variants.length]!;
        const specNames = new Set(method.params.map((p) => p.name));
        const pick = (o: Record<string, unknown>) =>
          Object.fromEntries(Object.entries(o).filter(([k]) => specNames.has(k)));
        const models = (SINGLE.has(name) ? c.models.slice(0, 1) : c.models).map((m, k) => ({
          id: `m${k}`,
          tensor: m.tensor,
          params: { weight: m.weight, ...pick(variant['model']!) } as Record<string, number>,
        }));
        const params = {
          ...(name === 'slerp' || name === 'nearswap' ? { t: 0.3 } : {}),
          ...pick(variant['global']!),
        } as Record<string, string | number>;
        const defaults = Object.fromEntries(
          method.params.filter((p) => p.default !== undefined).map((p) => [p.name, p.default!]),
        );
        const resolved = {
          params: { ...defaults, ...params },
          models: models.map((m) => ({ params: { ...defaults, ...m.params } })),
        };
        if (!method.elementwise(resolved)) return;
        const n = c.base.length;
        const cut = cutRaw % (n + 1);
        const whole = runMethod(method, c.base, models, params, { seed: 3n });
        const block = (from: number, to: number) =>
          runMethod(
            method,
            c.base.subarray(from, to),
            models.map((m) => ({ ...m, tensor: m.tensor.subarray(from, to) })),
            params,
            { seed: 3n, elementOffset: from },
          );
        const joined = Float64Array.from([...block(0, cut), ...block(cut, n)]);
        close(joined, whole);
      }),
      { numRuns: 40 },
    );
  });

  it('declares the whole-tensor cases non-elementwise', () => {
    const m = (density: number) => [{ params: { weight: 1, density } }];
    expect(getMethod('ties').elementwise({ params: {}, models: m(0.5) })).toBe(false);
    expect(getMethod('ties').elementwise({ params: {}, models: m(1) })).toBe(true);
    expect(getMethod('dare_ties').elementwise({ params: { rescale: 'l1' }, models: m(0.5) })).toBe(false);
    expect(
      getMethod('dare_linear').elementwise({ params: { rescale: 'inverse_density' }, models: m(0.5) }),
    ).toBe(true);
    expect(getMethod('slerp').elementwise({ params: { t: 0.5 }, models: m(1) })).toBe(false);
  });
});
