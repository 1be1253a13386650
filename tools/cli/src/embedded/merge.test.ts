import { validateRecipeDocument } from '@hm3/merge';
import { describe, expect, it } from 'vitest';
import { recipeDocument } from './merge.js';

describe('recipeDocument', () => {
  const recipe = {
    terms: [
      { expert: 0, weight: 0.5, density: 0.4 },
      { expert: 1, weight: 0, density: 0.4 },
      { expert: 2, weight: 0.25, density: 0.6 },
    ],
    lambda: 0.7,
    seed: 9,
    dtype: 'float32' as const,
    outDtype: 'bfloat16' as const,
  };

  it('maps a search recipe onto a mergekit document the merge lib accepts (zero weights left out)', () => {
    const doc = recipeDocument({ ...recipe, method: 'dare_ties' }, '/m/base', ['/m/a', '/m/b', '/m/c']);
    const parsed = validateRecipeDocument(doc);
    expect(parsed.method).toBe('dare_ties');
    expect(parsed.base?.uri).toBe('/m/base');
    expect(parsed.models.map((m) => m.ref.uri)).toEqual(['/m/a', '/m/c']);
    expect(parsed.models[1]!.parameters['density']).toEqual({ kind: 'value', value: 0.6 });
    expect(parsed.parameters['lambda']).toEqual({ kind: 'value', value: 0.7 });
    expect(parsed.seed).toBe(9n);
    expect(parsed.outDtype).toBe('BF16');
  });

  it('task arithmetic takes no density', () => {
    const doc = recipeDocument({ ...recipe, method: 'task_arithmetic' }, '/m/base', ['/m/a', '/m/b', '/m/c']);
    const parsed = validateRecipeDocument(doc);
    expect(parsed.models.every((m) => m.parameters['density'] === undefined)).toBe(true);
  });
});
