import { describe, expect, it } from 'vitest';
import { checkResults, parseMooArgs, runOurs, type OurRun, type PymooRun } from './moo-bench.js';

describe('moo bench', () => {
  it('parses its arguments with the acceptance configuration as default', () => {
    expect(parseMooArgs([])).toEqual({
      problems: ['zdt1', 'zdt2', 'zdt3', 'dtlz2'],
      seeds: [1, 2, 3, 4, 5],
      evaluations: 25000,
      pymoo: true,
      jobs: 2,
    });
    expect(parseMooArgs(['--seeds', '1', '--evals=5000', '--problems', 'dtlz2', '--no-pymoo'])).toMatchObject(
      {
        seeds: [1],
        evaluations: 5000,
        problems: ['dtlz2'],
        pymoo: false,
      },
    );
    expect(() => parseMooArgs(['--problems', 'zdt9'])).toThrow(/unknown problem/);
    expect(() => parseMooArgs(['--seeds', '0'])).toThrow(/--seeds/);
  });

  it('runs ours in whole populations and records the anytime hypervolume from 2 populations', () => {
    const run = runOurs('dtlz2', 'nsga2', 1, 400);
    expect(run.evaluations).toBe(455); // 5 populations of 91
    expect(run.trajectory.map(([e]) => e)).toEqual([182, 273, 364, 455]);
    expect(run.trajectory[3]![1]).toBeGreaterThan(run.trajectory[0]![1]);
    expect(run.finalArchiveHv).toBeGreaterThanOrEqual(run.finalHv);
  });

  it('checks ours >= pymoo - 1% and ours > random at every budget', () => {
    const ours = (
      algorithm: OurRun['algorithm'],
      finalHv: number,
      trajectory: [number, number][],
    ): OurRun => ({
      problem: 'zdt1',
      algorithm,
      seed: 1,
      evaluations: 300,
      seconds: 0,
      finalHv,
      finalArchiveHv: finalHv,
      trajectory,
    });
    const pymoo = (algorithm: PymooRun['algorithm'], finalHv: number): PymooRun => ({
      problem: 'zdt1',
      algorithm,
      seed: 1,
      evaluations: 300,
      seconds: 0,
      finalHv,
    });
    const checks = checkResults(
      [
        ours('nsga2', 0.8, [
          [200, 0.5],
          [300, 0.6],
        ]),
        ours('moead', 0.7, [
          [200, 0.4],
          [300, 0.7],
        ]),
        ours('random', 0.1, [
          [200, 0.45],
          [300, 0.5],
        ]),
      ],
      [pymoo('nsga2', 0.805), pymoo('moead', 0.72)],
      ['zdt1'],
    );
    expect(checks.map((c) => c.pass)).toEqual([true, true, false, false]);
    expect(checks[3]!.detail).toMatch(/lost at 200/);
  });
});
