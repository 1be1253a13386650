import { InvalidArgumentError } from '@hm3/errors';
import { common } from '@hm3/proto';
import { describe, expect, it } from 'vitest';
import { RecipeValidationError, UnknownMethodError } from './errors.js';
import { parseRecipeYaml, recipeFromProto } from './recipe.js';

const DARE_TIES = `
models:
  - model: ./base
  - model: ./math
    parameters:
      weight: 0.6
      density: [0.3, 0.5, 0.7]
  - model: ./code
    parameters:
      weight:
        - filter: self_attn
          value: 0.2
        - filter: mlp
          value: [0.1, 0.9]
        - value: 0.5
      density: 0.5
merge_method: dare_ties
base_model: ./base
parameters:
  normalize: true
  int8_mask: true
  rescale: false
dtype: bfloat16
out_dtype: float16
seed: 18446744073709551615
`;

/** The error a recipe throws, asserted to be a RecipeValidationError. */
function errorOf(yaml: string, source = 'recipes/bad.yaml'): RecipeValidationError {
  try {
    parseRecipeYaml(yaml, source);
  } catch (e) {
    expect(e).toBeInstanceOf(RecipeValidationError);
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as Error).message).toContain(source);
    return e as RecipeValidationError;
  }
  throw new Error('expected the recipe to be refused');
}

const minimal = (body: string) =>
  `merge_method: ties\nbase_model: b\nmodels:\n  - model: b\n  - model: m\n    parameters:\n      weight: 1\n${body}`;

describe('mergekit YAML recipes', () => {
  it('reads scalars, gradients, filtered lists, dtypes and a 64-bit seed into one typed recipe', () => {
    const r = parseRecipeYaml(DARE_TIES);
    expect(r.method).toBe('dare_ties');
    expect(r.base).toEqual({ uri: './base', modelId: '' });
    expect(r.models.map((m) => [m.ref.uri, m.isBase])).toEqual([
      ['./base', true],
      ['./math', false],
      ['./code', false],
    ]);
    expect(r.models[1]!.parameters['density']).toEqual({ kind: 'gradient', values: [0.3, 0.5, 0.7] });
    expect(r.models[2]!.parameters['weight']).toEqual({
      kind: 'filtered',
      entries: [
        { filter: 'self_attn', value: 0.2 },
        { filter: 'mlp', value: [0.1, 0.9] },
        { filter: null, value: 0.5 },
      ],
    });
    // mergekit's rescale: false is the choice 'none'
    expect(r.parameters['rescale']).toEqual({ kind: 'value', value: 'none' });
    expect(r.parameters['normalize']).toEqual({ kind: 'value', value: true });
    expect([r.dtype, r.outDtype]).toEqual(['BF16', 'F16']);
    expect(r.seed).toBe(18446744073709551615n);
  });

  it('names the field of an out-of-range value', () => {
    const e = errorOf(minimal('parameters:\n  density: 1.5\n'));
    expect(e.issues).toEqual([{ path: 'parameters.density', message: expect.stringContaining('<= 1') }]);
    const g = errorOf(DARE_TIES.replace('[0.3, 0.5, 0.7]', '[0.3, -0.5, 0.7]'));
    expect(g.issues[0]!.path).toBe('models[1].parameters.density[1]');
    expect(g.message).toContain('models[1].parameters.density[1]');
    const f = errorOf(DARE_TIES.replace('value: [0.1, 0.9]', 'value: [0.1, "x"]'));
    expect(f.message).toContain('models[2].parameters.weight');
  });

  it('refuses a misspelt method, suggesting the closest name', () => {
    const e = errorOf(minimal('').replace('merge_method: ties', 'merge_method: dare_tie'));
    expect(e).toBeInstanceOf(UnknownMethodError);
    expect(e.issues[0]!.path).toBe('merge_method');
    expect(e.message).toMatch(/unknown merge method "dare_tie".*did you mean "dare_ties"/);
    expect(
      errorOf(minimal('').replace('merge_method: ties', 'merge_method: frobnicate')).message,
    ).not.toContain('did you mean');
  });

  it('refuses unknown keys and parameters, with their path and a suggestion', () => {
    expect(errorOf(minimal('base_modle: x\n')).issues).toContainEqual({
      path: 'base_modle',
      message: expect.stringContaining('"base_model"'),
    });
    const p = errorOf(minimal('').replace('weight: 1', 'weight: 1\n      densty: 0.5'));
    expect(p.issues[0]).toEqual({
      path: 'models[1].parameters.densty',
      message: expect.stringContaining('"density"'),
    });
    const m = errorOf(minimal('').replace('  - model: m', '  - model: m\n    weight: 2'));
    expect(m.issues[0]!.path).toBe('models[1].weight');
    const scope = errorOf(minimal('').replace('weight: 1', 'weight: 1\n      normalize: false'));
    expect(scope.issues[0]).toEqual({
      path: 'models[1].parameters.normalize',
      message: expect.stringContaining('global'),
    });
  });

  it('reports every issue at once, unknown keys included', () => {
    const e = errorOf(
      minimal('base_modle: x\nparameters:\n  density: 2\n  normalise: true\n').replace(
        'weight: 1',
        'weight: 1\n      wieght: 2',
      ),
    );
    expect(new Set(e.issues.map((i) => i.path))).toEqual(
      new Set(['base_modle', 'models[1].parameters.wieght', 'parameters.density', 'parameters.normalise']),
    );
    expect(e.issues.find((i) => i.path === 'parameters.normalise')!.message).toContain('"normalize"');
  });

  it('requires what the method requires: base model, weights, t, the model count', () => {
    expect(
      errorOf('merge_method: ties\nmodels:\n  - model: a\n    parameters: {weight: 1}\n').issues[0]!.path,
    ).toBe('base_model');
    expect(errorOf('merge_method: ties\nbase_model: b\nmodels:\n  - model: a\n').issues[0]!.path).toBe(
      'models[0].parameters.weight',
    );
    const slerp = 'merge_method: slerp\nbase_model: a\nmodels:\n  - model: a\n  - model: b\n';
    expect(errorOf(slerp).issues[0]!.path).toBe('parameters.t');
    expect(parseRecipeYaml(`${slerp}parameters:\n  t: [0, 0.5, 1]\n`).parameters['t']).toEqual({
      kind: 'gradient',
      values: [0, 0.5, 1],
    });
    const three = errorOf(`${slerp}  - model: c\nparameters:\n  t: 0.5\n`);
    expect(three.issues[0]).toEqual({ path: 'models', message: expect.stringContaining('exactly 1') });
    // a top-level weight serves every model
    expect(
      parseRecipeYaml('merge_method: ties\nbase_model: b\nmodels:\n  - model: a\nparameters:\n  weight: 1\n')
        .models,
    ).toHaveLength(1);
  });

  it('refuses duplicates, slices, bad dtypes, choices and YAML', () => {
    expect(errorOf(minimal('').replace('  - model: m', '  - model: m\n  - model: m')).message).toContain(
      'models[2].model',
    );
    expect(errorOf(minimal('slices: []\n')).issues[0]!.path).toBe('slices');
    expect(errorOf(minimal('dtype: float8\n')).issues[0]!.path).toBe('dtype');
    expect(errorOf(minimal('parameters:\n  rescale: l2\n')).issues[0]).toEqual({
      path: 'parameters.rescale',
      message: expect.stringContaining('l1, inverse_density, none'),
    });
    expect(errorOf('merge_method: [unclosed').issues[0]!.message).toContain('not valid YAML');
    expect(errorOf('- a\n- b\n').issues[0]!.message).toContain('mapping');
    expect(errorOf(minimal('seed: -1\n')).issues[0]!.path).toBe('seed');
  });

  it('linear takes no separate base model', () => {
    const ok = parseRecipeYaml(
      'merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 2}\n',
    );
    expect(ok.base).toBeNull();
    expect(
      errorOf('merge_method: linear\nbase_model: z\nmodels:\n  - model: a\n    parameters: {weight: 1}\n')
        .issues[0]!.path,
    ).toBe('base_model');
  });
});

describe('proto MergeRecipe', () => {
  const ref = (uri: string, modelId = ''): common.ModelRef => ({ uri, modelId });
  const scalar = (value: number): common.ParamValue => ({ value: { $case: 'scalar', value } });
  const message = (over: Partial<common.MergeRecipe> = {}): common.MergeRecipe => ({
    method: 'ties',
    base: ref('/models/base', 'base-id'),
    models: [
      {
        model: ref('/models/a', 'a-id'),
        parameters: {
          weight: scalar(0.5),
          density: { value: { $case: 'gradient', value: { values: [0.2, 0.8] } } },
        },
      },
      {
        model: ref('/models/b'),
        parameters: {
          weight: {
            value: {
              $case: 'filtered',
              value: {
                entries: [
                  { filter: 'mlp', value: { $case: 'scalar', value: 1 } },
                  { filter: '', value: { $case: 'scalar', value: 0.3 } },
                ],
              },
            },
          },
        },
      },
    ],
    slices: [],
    dtype: common.DType.F32,
    outDtype: common.DType.BF16,
    seed: 42n,
    parameters: {
      normalize: { value: { $case: 'flag', value: false } },
      rescale: { value: { $case: 'choice', value: 'inverse_density' } },
    },
    tokenizerSource: { kind: common.TokenizerSourceKind.BASE },
    ...over,
  });

  it('maps to the same typed recipe as YAML', () => {
    const r = recipeFromProto(message());
    expect(r.method).toBe('ties');
    expect(r.base).toEqual({ uri: '/models/base', modelId: 'base-id' });
    expect(r.models[0]!.ref).toEqual({ uri: '/models/a', modelId: 'a-id' });
    expect(r.models[0]!.parameters['density']).toEqual({ kind: 'gradient', values: [0.2, 0.8] });
    expect(r.models[1]!.parameters['weight']).toEqual({
      kind: 'filtered',
      entries: [
        { filter: 'mlp', value: 1 },
        { filter: null, value: 0.3 },
      ],
    });
    expect(r.parameters['rescale']).toEqual({ kind: 'value', value: 'inverse_density' });
    expect([r.dtype, r.outDtype, r.seed, r.tokenizerSource]).toEqual(['F32', 'BF16', 42n, { kind: 'base' }]);
  });

  it('maps slices (frankenmerges) to the same recipe as their YAML', () => {
    const r = recipeFromProto(
      message({
        method: 'passthrough',
        base: undefined,
        models: [],
        parameters: {},
        tokenizerSource: undefined,
        slices: [
          {
            sources: [
              { model: { uri: '/models/a', modelId: '' }, layerStart: 0, layerEnd: 3, parameters: {} },
            ],
            parameters: {},
          },
          {
            sources: [
              { model: { uri: '/models/b', modelId: '' }, layerStart: 2, layerEnd: 4, parameters: {} },
            ],
            parameters: {},
          },
        ],
      }),
    );
    const yaml = parseRecipeYaml(
      'merge_method: passthrough\nslices:\n  - sources: [{model: /models/a, layer_range: [0, 3]}]\n' +
        '  - sources: [{model: /models/b, layer_range: [2, 4]}]\ndtype: float32\nout_dtype: bfloat16\nseed: 42\n',
    );
    expect(r.slices).toEqual(yaml.slices);
    expect(r.models.map((m) => m.ref.uri)).toEqual(['/models/a', '/models/b']);
  });

  it('names proto fields in errors', () => {
    expect(() => recipeFromProto(message({ method: 'tiess' }))).toThrow(
      /method: unknown merge method "tiess".*"ties"/,
    );
    expect(() => recipeFromProto(message({ base: undefined }))).toThrow(/MergeRecipe: .*base: required/);
    const bad = message();
    bad.models[0]!.parameters['density'] = scalar(2);
    expect(() => recipeFromProto(bad)).toThrow(/models\[0\]\.parameters\.density: must be <= 1/);
  });
});
