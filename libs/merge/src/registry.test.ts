import { describe, expect, it } from 'vitest';
import { UnknownMethodError } from './errors.js';
import { closestName, formatMethodList, getMethod, listMethods, registerMethod } from './registry.js';

describe('method registry', () => {
  it('registers the nineteen built-in methods, each declaring typed parameters with descriptions', () => {
    expect(listMethods().map((m) => m.name)).toEqual([
      'linear',
      'task_arithmetic',
      'ties',
      'dare_linear',
      'dare_ties',
      'breadcrumbs',
      'breadcrumbs_ties',
      'slerp',
      'della',
      'della_linear',
      'nuslerp',
      'multislerp',
      'karcher',
      'model_stock',
      'sce',
      'nearswap',
      'ram',
      'passthrough',
      'emr',
    ]);
    for (const m of listMethods()) {
      for (const p of m.params) {
        expect(p.description.length).toBeGreaterThan(10);
        expect(p.required === true || p.default !== undefined).toBe(true);
      }
    }
  });

  it("uses mergekit's defaults", () => {
    const d = (method: string, param: string) =>
      getMethod(method).params.find((p) => p.name === param)?.default;
    expect([
      d('linear', 'normalize'),
      d('task_arithmetic', 'normalize'),
      d('ties', 'normalize'),
      d('dare_ties', 'normalize'),
    ]).toEqual([true, false, true, false]);
    expect([
      d('dare_linear', 'rescale'),
      d('dare_ties', 'rescale'),
      d('ties', 'rescale'),
      d('breadcrumbs', 'rescale'),
    ]).toEqual(['l1', 'l1', 'none', 'none']);
    expect([d('ties', 'density'), d('breadcrumbs', 'gamma'), d('ties', 'lambda')]).toEqual([1, 0.01, 1]);
  });

  it('suggests the closest name for a misspelt method', () => {
    expect(() => getMethod('slurp')).toThrow(UnknownMethodError);
    expect(() => getMethod('Task_Arithmetic')).toThrow(/did you mean "task_arithmetic"/);
    expect(closestName('zzzzzz', ['ties'])).toBeNull();
    expect(() => registerMethod(getMethod('ties'))).toThrow(/already registered/);
  });

  it('lists every method with its parameters and defaults (hm3 merge --list-methods)', () => {
    const text = formatMethodList();
    expect(text).toContain('dare_ties  (base model + >= 1 models)');
    expect(text).toMatch(/- rescale \(global, l1 \| inverse_density \| none, default l1\)/);
    expect(text).toMatch(/- t \(global, number in \[0, 1\], required\)/);
    expect(text).toMatch(/- density \(per model, number in \[0, 1\], default 1\)/);
  });
});
