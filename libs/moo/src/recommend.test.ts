import { describe, expect, it } from 'vitest';
import { kneePoint, recommendForPreference } from './recommend.js';

describe('recommendation', () => {
  const front = [
    [1, 0],
    [0.9, 0.8],
    [0.5, 0.9],
    [0, 1],
  ];

  it('finds the knee: the point farthest beyond the line through the extremes', () => {
    expect(kneePoint(front).index).toBe(1);
    expect(kneePoint(front).score).toBeGreaterThan(0);
    // 3 objectives
    const front3 = [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
      [0.7, 0.7, 0.7],
      [0.4, 0.4, 0.2],
    ];
    expect(kneePoint(front3).index).toBe(3);
  });

  it('picks the point that suits a preference', () => {
    expect(recommendForPreference(front, [1, 0]).index).toBe(0);
    expect(recommendForPreference(front, [0, 1]).index).toBe(3);
    expect(recommendForPreference(front, [0.5, 0.5]).index).toBe(1);
    expect(recommendForPreference(front, [0.5, 0.5], { scalarisation: { kind: 'weighted-sum' } }).index).toBe(
      1,
    );
  });

  it('rejects an empty front, NaN objectives and negative preferences', () => {
    expect(() => kneePoint([])).toThrow(/empty front/);
    expect(() => kneePoint([[1, Number.NaN]])).toThrow(/index 0/);
    expect(() => recommendForPreference(front, [1.2, -0.2])).toThrow(/negative/);
  });
});
