import { describe, expect, it } from 'vitest';
import { chrf, topTwo } from './metrics.js';

describe('chrF', () => {
  it('is 1 for identical strings and 0 for nothing in common or an empty hypothesis', () => {
    expect(chrf('hammer', 'hammer')).toBe(1);
    expect(chrf('xyz', 'abc')).toBe(0);
    expect(chrf('', 'abc')).toBe(0);
  });

  it('averages precision and recall over the orders both strings have (worked by hand)', () => {
    // n=1: P 2/2, R 2/3; n=2: P 1/1, R 1/2; n>=3: the hypothesis has none. P = 1, R = 7/12.
    // F2 = 5 P R / (4 P + R) = (35/12) / (55/12) = 7/11.
    expect(chrf('ab', 'abc')).toBeCloseTo(7 / 11, 12);
  });

  it('ignores whitespace, as sacrebleu does by default', () => {
    expect(chrf('a b c', 'abc')).toBe(1);
  });

  it("matches sacrebleu's sentence chrF on the metric card's example (61.576379378113785)", () => {
    const score = chrf(
      'The relationship between Obama and Netanyahu is not exactly friendly.',
      'The ties between Obama and Netanyahu are not particularly friendly.',
    );
    expect(score * 100).toBeCloseTo(61.576379378113785, 9);
  });
});

describe('topTwo', () => {
  it('finds the first maximum and the runner-up', () => {
    const logits = Float32Array.from([0, 5, 1, 5, 3, 9, 2, 1]);
    expect(topTwo(logits, 0, 4)).toEqual({ top: 1, topLogit: 5, second: 3, secondLogit: 5 });
    expect(topTwo(logits, 4, 4)).toEqual({ top: 1, topLogit: 9, second: 0, secondLogit: 3 });
  });
});
