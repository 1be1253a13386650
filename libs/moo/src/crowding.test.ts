import { describe, expect, it } from 'vitest';
import { crowdingDistance } from './crowding.js';

describe('crowdingDistance', () => {
  it('gives the boundary points infinity and scales gaps by the range, averaged over objectives', () => {
    const d = crowdingDistance([
      [0, 4],
      [1, 3],
      [3, 1],
      [4, 0],
    ]);
    expect(d[0]).toBe(Infinity);
    expect(d[3]).toBe(Infinity);
    // point 1: objective 0 gap (3 - 0) / 4, objective 1 gap (4 - 1) / 4; mean of the two
    expect(d[1]).toBeCloseTo(0.75, 12);
    expect(d[2]).toBeCloseTo(0.75, 12);
  });

  it('gives every point infinity with two points or fewer, and ignores constant objectives', () => {
    expect(crowdingDistance([[1, 1]])).toEqual([Infinity]);
    expect(
      crowdingDistance([
        [0, 1],
        [1, 1],
        [2, 1],
      ]),
    ).toEqual([Infinity, 0.5, Infinity]); // (2 - 0) / 2 on objective 0, 0 on the constant one, / 2
  });
});
