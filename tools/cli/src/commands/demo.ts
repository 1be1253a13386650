import type { Command } from 'commander';
import {
  dasDennis,
  dtlz2,
  hypervolume,
  Moead,
  Nsga2,
  RandomSearch,
  recommendForPreference,
  runOptimiser,
  type AskTellOptimiser,
  type BenchmarkProblem,
} from '@hm3/moo';

/**
 * `hm3 demo`: the largest real job HM3 can run today. The model search (merge -> paths -> evaluation
 * -> front) lands with later issues; until then the demo runs the multi-objective engine that search
 * will use, on a problem whose true Pareto front is known, and says so.
 */
export interface DemoOptions {
  budget: number;
  seed: number;
}

export interface DemoResult {
  problem: string;
  budget: number;
  rows: { optimiser: string; hypervolume: number; frontSize: number }[];
  recommendations: { preference: number[]; objectives: number[] }[];
}

export function runDemo(options: DemoOptions, log: (line: string) => void = console.log): DemoResult {
  const problem = dtlz2(3);
  const populationSize = dasDennis(3, 12).length; // 91, as in the DTLZ2 benchmarks
  const optimisers: AskTellOptimiser[] = [
    new Nsga2(problem, { populationSize, seed: options.seed }),
    new Moead(problem, { populationSize, seed: options.seed }),
    new RandomSearch(problem, { seed: options.seed }),
  ];
  log(`HM3 demo — foundation stage. The model search (merge, inference paths, evaluation) is not built yet;`);
  log(`this runs the multi-objective engine it will use (libs/moo) on ${problem.name} with 3 objectives,`);
  log(`whose true Pareto front is known, at a budget of ${options.budget} evaluations per optimiser.\n`);

  const rows = optimisers.map((optimiser) => {
    const started = Date.now();
    runOptimiser(optimiser, (x) => problem.evaluate(x), {
      budget: options.budget,
      batchSize: populationSize,
    });
    const front = optimiser.front().map((e) => [...e.objectives]);
    const hv = normalisedHypervolume(problem, front);
    log(
      `${optimiser.name.padEnd(8)} hypervolume ${hv.toFixed(4)}  front ${String(front.length).padStart(3)} points  ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return { optimiser: optimiser.name, hypervolume: hv, frontSize: front.length };
  });

  const best = optimisers[0] as AskTellOptimiser;
  const front = best.front().map((e) => [...e.objectives]);
  const directions = problem.directions;
  log(
    `\nRecommendations from the ${best.name} front (objectives minimised; preference = weight per objective):`,
  );
  const recommendations = [
    [1, 0, 0],
    [0.2, 0.6, 0.2],
    [1 / 3, 1 / 3, 1 / 3],
  ].map((preference) => {
    const pick = recommendForPreference(front, preference, { directions });
    const objectives = front[pick.index] as number[];
    log(`  preference ${format(preference).padEnd(22)} -> ${format(objectives)}`);
    return { preference, objectives };
  });
  return { problem: problem.name, budget: options.budget, rows, recommendations };
}

function normalisedHypervolume(problem: BenchmarkProblem, front: number[][]): number {
  return hypervolume(front, { directions: problem.directions, bounds: problem.paretoBounds });
}

function format(values: readonly number[]): string {
  return `(${values.map((v) => v.toFixed(3)).join(', ')})`;
}

function positiveInteger(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0)
      throw new Error(`--${name} must be a positive integer, got "${value}"`);
    return n;
  };
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the largest real job HM3 has today (see README): multi-objective search on DTLZ2')
    .option('--budget <n>', 'evaluations per optimiser', positiveInteger('budget'), 9100)
    .option('--seed <n>', 'random seed (same seed, same result)', positiveInteger('seed'), 1)
    .action((options: DemoOptions) => {
      runDemo(options);
    });
}
