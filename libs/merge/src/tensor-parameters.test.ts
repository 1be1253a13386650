import { describe, expect, it } from 'vitest';
import { MissingParameterError } from './errors.js';
import { parseRecipeYaml } from './recipe.js';
import { getMethod } from './registry.js';
import {
  evaluateSetting,
  gradientT,
  interpolateGradient,
  resolveTensorParameters,
} from './tensor-parameters.js';

describe('parameter resolution per tensor', () => {
  it('interpolates gradients over t = i / (n - 1), as mergekit', () => {
    expect(gradientT(0, 8)).toBe(0);
    expect(gradientT(7, 8)).toBe(1);
    expect(gradientT(0, 1)).toBe(1);
    expect(gradientT(null, 8)).toBe(0);
    expect(interpolateGradient([0, 1], 0.25)).toBeCloseTo(0.25);
    expect(interpolateGradient([0, 0.5, 1, 0], 0.5)).toBeCloseTo(0.75); // scaled 1.5 between 0.5 and 1
    expect(interpolateGradient([0, 0.5, 1, 0], 1)).toBe(0);
    expect(interpolateGradient([3], 0.7)).toBe(3);
  });

  it('takes the first matching filter, falls through when none matches', () => {
    const s = {
      kind: 'filtered' as const,
      entries: [
        { filter: 'mlp', value: 1 },
        { filter: 'self_attn', value: [0, 1] },
      ],
    };
    expect(evaluateSetting(s, 'model.layers.2.mlp.up_proj.weight', 0.5)).toBe(1);
    expect(evaluateSetting(s, 'model.layers.2.self_attn.q_proj.weight', 0.5)).toBe(0.5);
    expect(evaluateSetting(s, 'model.norm.weight', 0)).toBeUndefined();
  });

  it('looks up model, then top level, then the default; the base is left out', () => {
    const recipe = parseRecipeYaml(`
merge_method: ties
base_model: b
models:
  - model: b
  - model: x
    parameters:
      weight: [1, 0]
      density:
        - filter: mlp
          value: 0.2
  - model: y
    parameters:
      weight: 0.5
parameters:
  density: 0.9
  lambda: 2
`);
    const method = getMethod('ties');
    const mlp = resolveTensorParameters(recipe, method, 'model.layers.3.mlp.up_proj.weight', gradientT(3, 4));
    expect(mlp.params).toEqual({
      normalize: true,
      lambda: 2,
      rescale: 'none',
      scope: 'tensor',
      int8_mask: false,
    });
    expect(mlp.models.map((m) => [m.id, m.params])).toEqual([
      ['x', { weight: 0, density: 0.2 }],
      ['y', { weight: 0.5, density: 0.9 }],
    ]);
    const attn = resolveTensorParameters(
      recipe,
      method,
      'model.layers.0.self_attn.o_proj.weight',
      gradientT(0, 4),
    );
    expect(attn.models[0]!.params).toEqual({ weight: 1, density: 0.9 }); // filter missed: top-level density
  });

  it('a required parameter with no value for a tensor is an error naming tensor and model', () => {
    const recipe = parseRecipeYaml(`
merge_method: task_arithmetic
base_model: b
models:
  - model: x
    parameters:
      weight:
        - filter: mlp
          value: 1
`);
    expect(() =>
      resolveTensorParameters(recipe, getMethod('task_arithmetic'), 'model.norm.weight', 0),
    ).toThrow(MissingParameterError);
    expect(() =>
      resolveTensorParameters(recipe, getMethod('task_arithmetic'), 'model.norm.weight', 0),
    ).toThrow(/weight.*x.*model\.norm\.weight/);
  });
});
