import { describe, expect, it } from 'vitest';
import { InvalidSearchSpecError, parseSearchSpecYaml, specToDocument, validateSearchSpec } from './spec.js';

const good = `
name: zoo
base: zoo:base
experts: [zoo:expert-translate, zoo:expert-math, zoo:expert-code]
objectives:
  - { name: translate, dataset: zoo:translate }
  - { name: math, dataset: zoo:math, max_examples: 64 }
  - { name: code, dataset: { uri: data/code.jsonl }, search_fraction: 0.6 }
budget: { max_evaluations: 100 }
`;

function issueOf(fn: () => unknown): { path: string; message: string } {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidSearchSpecError);
    const e = error as InvalidSearchSpecError;
    expect(e.status).toBe('INVALID_ARGUMENT');
    return e.issues[0]!;
  }
  throw new Error('no error');
}

describe('search spec', () => {
  it('fills the documented defaults', () => {
    const s = parseSearchSpecYaml(good);
    expect(s.strategy).toBe('hm3');
    expect(s.experts.map((e) => e.uri)).toEqual([
      'zoo:expert-translate',
      'zoo:expert-math',
      'zoo:expert-code',
    ]);
    expect(s.upper).toMatchObject({
      method: 'dare_ties',
      density: 0.5,
      lambda: 1,
      optimizer: 'fixed-weights',
    });
    expect(s.objectives[1]).toMatchObject({ task: 'exact_match', maxExamples: 64, searchFraction: 0.7 });
    expect(s.objectives[2]!.searchFraction).toBe(0.6);
    expect(s.budget).toEqual({ maxEvaluations: 100, maxRounds: 0, maxSeconds: 0 });
    expect(s.scalarization).toBe('tchebycheff');
    expect(s.rl.rewardScalarization).toBe('weighted-sum');
    // proto/hm3/v1/policy.proto and @hm3/rl: the critic's and encoder's Adam rate defaults to 3e-3
    expect(s.rl.learningRate).toBe(3e-3);
  });

  it('round-trips through its document form', () => {
    const s = parseSearchSpecYaml(good);
    expect(validateSearchSpec(specToDocument(s))).toEqual(s);
  });

  it('an objective without a dataset names objectives[i].dataset', () => {
    const issue = issueOf(() =>
      parseSearchSpecYaml(
        good.replace('{ name: math, dataset: zoo:math, max_examples: 64 }', '{ name: math }'),
      ),
    );
    expect(issue.path).toBe('objectives[1].dataset');
  });

  it('a budget of 0 names budget.max_evaluations', () => {
    const issue = issueOf(() =>
      parseSearchSpecYaml(good.replace('max_evaluations: 100', 'max_evaluations: 0')),
    );
    expect(issue.path).toBe('budget.max_evaluations');
  });

  it('no budget at all names budget', () => {
    const issue = issueOf(() => parseSearchSpecYaml(good.replace('{ max_evaluations: 100 }', '{}')));
    expect(issue.path).toBe('budget');
  });

  it('unknown keys, unknown strategies and duplicate objective names are refused with their path', () => {
    expect(issueOf(() => parseSearchSpecYaml(`${good}\nstrategy: greedy\n`)).path).toBe('strategy');
    expect(issueOf(() => parseSearchSpecYaml(`${good}\nrl: { epsilon: 0.2 }\n`)).path).toBe('rl');
    expect(issueOf(() => parseSearchSpecYaml(good.replace('name: code', 'name: math'))).path).toBe(
      'objectives[2].name',
    );
    expect(issueOf(() => parseSearchSpecYaml('base: [')).path).toBe('');
  });
});
