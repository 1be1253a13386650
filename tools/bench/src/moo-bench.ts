import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  Moead,
  Nsga2,
  RandomSearch,
  dtlz2,
  hypervolume,
  runOptimiser,
  zdt1,
  zdt2,
  zdt3,
  type AskTellOptimiser,
  type BenchmarkProblem,
} from '@hm3/moo';

// `npm run bench -- moo`: @hm3/moo's NSGA-II and MOEA/D against pymoo's, side by side in one run, and
// against random search at every budget. Hypervolume is computed by @hm3/moo for both sides
// (conformance-tested against pymoo's own indicator), reference 1.1 after normalisation:
// - final HV: the final population's non-dominated set (pymoo's res.F), normalised by the true
//   front's ideal and nadir: ours against pymoo's;
// - anytime HV: the non-dominated set of every evaluation so far (the archive; random search has
//   nothing else), normalised by the true ideal and the objective space's worst point, so that
//   every evaluation counts from the first population on: ours against random search.

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');

export const MOO_PROBLEMS: Record<string, { make: () => BenchmarkProblem; population: number }> = {
  zdt1: { make: () => zdt1(), population: 100 },
  zdt2: { make: () => zdt2(), population: 100 },
  zdt3: { make: () => zdt3(), population: 100 },
  dtlz2: { make: () => dtlz2(3), population: 91 },
};

export type Algorithm = 'nsga2' | 'moead' | 'random';

export interface MooBenchConfig {
  problems: string[];
  seeds: number[];
  evaluations: number;
  pymoo: boolean;
  jobs: number;
}

export interface OurRun {
  problem: string;
  algorithm: Algorithm;
  seed: number;
  evaluations: number;
  seconds: number;
  /** Final population's non-dominated set, normalised by the true front. */
  finalHv: number;
  /** Final archive (every evaluation's non-dominated set), normalised by the true front. */
  finalArchiveHv: number;
  /** Anytime HV of the archive after every whole population of evaluations, from 2 on: [evaluations, hv]. */
  trajectory: [number, number][];
}

export interface PymooRun {
  problem: string;
  algorithm: 'nsga2' | 'moead';
  seed: number;
  evaluations: number;
  seconds: number;
  finalHv: number;
}

export function frontHypervolume(problem: BenchmarkProblem, front: readonly (readonly number[])[]): number {
  return hypervolume(front, { directions: problem.directions, bounds: problem.paretoBounds });
}

export function anytimeHypervolume(problem: BenchmarkProblem, front: readonly (readonly number[])[]): number {
  return hypervolume(front, { directions: problem.directions, bounds: problem.objectiveSpaceBounds });
}

function makeOptimiser(
  algorithm: Algorithm,
  problem: BenchmarkProblem,
  population: number,
  seed: number,
): AskTellOptimiser {
  switch (algorithm) {
    case 'nsga2':
      return new Nsga2(problem, { populationSize: population, seed });
    case 'moead':
      return new Moead(problem, {
        populationSize: population,
        seed,
        neighbours: 20,
        neighbourMatingProbability: 0.9,
        scalarisation: { kind: 'tchebycheff' },
      });
    case 'random':
      return new RandomSearch(problem, { seed });
  }
}

/** One run of ours: whole populations of evaluations (as pymoo counts them), the front's HV after each. */
export function runOurs(
  problemName: string,
  algorithm: Algorithm,
  seed: number,
  evaluations: number,
): OurRun {
  const spec = MOO_PROBLEMS[problemName];
  if (spec === undefined) throw new Error(`unknown problem ${problemName}`);
  const problem = spec.make();
  const population = spec.population;
  const budget = Math.ceil(evaluations / population) * population;
  const trajectory: [number, number][] = [];
  const start = performance.now();
  const optimiser = makeOptimiser(algorithm, problem, population, seed);
  runOptimiser(optimiser, (x) => problem.evaluate(x), {
    budget,
    // MOEA/D is sequential (one offspring, one replacement) like pymoo's; NSGA-II is asked as many
    // candidates as results it takes between survivals; random search a population at a time
    batchSize:
      optimiser instanceof Nsga2 ? optimiser.survivalInterval : algorithm === 'moead' ? 1 : population,
    onTell: (o) => {
      if (o.evaluations % population === 0 && o.evaluations >= 2 * population) {
        trajectory.push([
          o.evaluations,
          anytimeHypervolume(
            problem,
            o.archive().map((e) => e.objectives),
          ),
        ]);
      }
    },
  });
  const seconds = (performance.now() - start) / 1000;
  const finalHv = frontHypervolume(
    problem,
    optimiser.front().map((e) => e.objectives),
  );
  const finalArchiveHv = frontHypervolume(
    problem,
    optimiser.archive().map((e) => e.objectives),
  );
  return {
    problem: problemName,
    algorithm,
    seed,
    evaluations: optimiser.evaluations,
    seconds,
    finalHv,
    finalArchiveHv,
    trajectory,
  };
}

/**
 * Starts pymoo's runs in their own processes and returns at once (ours then run here, blocking this
 * event loop, while pymoo's run in parallel); the promise settles with the path of pymoo's results.
 */
function startPymoo(config: MooBenchConfig, workDir: string): Promise<string> {
  const venv = execFileSync('bash', [join(repoRoot, 'tools/python/ensure-venv.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  const configPath = join(workDir, 'pymoo-config.json');
  const outPath = join(workDir, 'pymoo-out.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      evaluations: config.evaluations,
      seeds: config.seeds,
      problems: config.problems.map((name) => ({ name, population: MOO_PROBLEMS[name]!.population })),
      algorithms: ['nsga2', 'moead'],
    }),
  );
  const child = spawn(
    join(venv, 'bin/python'),
    [join(here, '../python/pymoo_moo_bench.py'), configPath, outPath, String(config.jobs)],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  return new Promise<string>((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolvePromise(outPath) : reject(new Error(`pymoo bench exited with ${code}`)),
    );
  });
}

export interface MooBenchResult {
  config: MooBenchConfig;
  ours: OurRun[];
  pymoo: PymooRun[];
  pymooVersion?: string;
  checks: { name: string; pass: boolean; detail: string }[];
}

const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
const sd = (xs: readonly number[]): number => {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
};

/** The acceptance checks: ours >= pymoo - 1% (final mean HV), ours > random at every budget from 2 populations. */
export function checkResults(
  ours: readonly OurRun[],
  pymoo: readonly PymooRun[],
  problems: readonly string[],
): MooBenchResult['checks'] {
  const checks: MooBenchResult['checks'] = [];
  for (const problem of problems) {
    const random = ours.filter((r) => r.problem === problem && r.algorithm === 'random');
    for (const algorithm of ['nsga2', 'moead'] as const) {
      const mine = ours.filter((r) => r.problem === problem && r.algorithm === algorithm);
      const theirs = pymoo.filter((r) => r.problem === problem && r.algorithm === algorithm);
      if (theirs.length > 0) {
        const a = mean(mine.map((r) => r.finalHv));
        const b = mean(theirs.map((r) => r.finalHv));
        checks.push({
          name: `${problem} ${algorithm}: mean final HV >= pymoo's - 1%`,
          pass: a >= 0.99 * b,
          detail: `ours ${a.toFixed(5)} vs pymoo ${b.toFixed(5)} (${(((a - b) / b) * 100).toFixed(2)}%)`,
        });
      }
      const budgets = mine[0]?.trajectory.map(([e]) => e) ?? [];
      const losses = budgets.filter((_, k) => {
        const a = mean(mine.map((r) => r.trajectory[k]![1]));
        const b = mean(random.map((r) => r.trajectory[k]![1]));
        return !(a > b);
      });
      checks.push({
        name: `${problem} ${algorithm}: mean anytime HV beats random search's at every budget from 2 populations`,
        pass: budgets.length > 0 && losses.length === 0,
        detail:
          losses.length === 0
            ? `${budgets.length} budgets, all won`
            : `lost at ${losses.join(', ')} evaluations`,
      });
    }
  }
  return checks;
}

export function formatTables(result: MooBenchResult): string {
  const lines: string[] = [];
  const { config, ours, pymoo } = result;
  lines.push(
    'Final HV (final population, normalised by the true front, reference 1.1), mean ± sd over seeds:',
  );
  lines.push('');
  lines.push(
    `| problem | algorithm | ours | pymoo ${result.pymooVersion ?? '-'} | ours vs pymoo | ours, archive | ours s/run | pymoo s/run |`,
  );
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const problem of config.problems) {
    for (const algorithm of ['nsga2', 'moead', 'random'] as const) {
      const mine = ours.filter((r) => r.problem === problem && r.algorithm === algorithm);
      const theirs = pymoo.filter((r) => r.problem === problem && r.algorithm === algorithm);
      const a = mine.map((r) => r.finalHv);
      const b = theirs.map((r) => r.finalHv);
      const cmp = b.length > 0 ? `${(((mean(a) - mean(b)) / mean(b)) * 100).toFixed(2)}%` : '-';
      lines.push(
        `| ${problem} | ${algorithm} | ${mean(a).toFixed(5)} ± ${sd(a).toFixed(5)} | ${b.length > 0 ? `${mean(b).toFixed(5)} ± ${sd(b).toFixed(5)}` : '-'} | ${cmp} | ${mean(mine.map((r) => r.finalArchiveHv)).toFixed(5)} | ${mean(mine.map((r) => r.seconds)).toFixed(1)} | ${theirs.length > 0 ? mean(theirs.map((r) => r.seconds)).toFixed(1) : '-'} |`,
      );
    }
  }
  lines.push('');
  const populationsShown = [2, 5, 10, 25, 50, 100, 250];
  lines.push(
    'Anytime HV (archive of all evaluations, normalised by the true ideal and the worst point of the objective space, reference 1.1), mean over seeds, by budget in populations:',
  );
  lines.push('');
  lines.push(`| problem | algorithm | ${populationsShown.map((p) => `${p} pop`).join(' | ')} |`);
  lines.push(`|---|---|${populationsShown.map(() => '---').join('|')}|`);
  for (const problem of config.problems) {
    const population = MOO_PROBLEMS[problem]!.population;
    for (const algorithm of ['nsga2', 'moead', 'random'] as const) {
      const mine = ours.filter((r) => r.problem === problem && r.algorithm === algorithm);
      const cells = populationsShown.map((p) => {
        const k = mine[0]?.trajectory.findIndex(([e]) => e === p * population) ?? -1;
        return k < 0 ? '-' : mean(mine.map((r) => r.trajectory[k]![1])).toFixed(4);
      });
      lines.push(`| ${problem} | ${algorithm} | ${cells.join(' | ')} |`);
    }
  }
  lines.push('');
  for (const c of result.checks) lines.push(`${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
  return lines.join('\n');
}

export function parseMooArgs(args: readonly string[]): MooBenchConfig {
  const { values } = parseArgs({
    args: [...args],
    options: {
      seeds: { type: 'string', default: '5' },
      evals: { type: 'string', default: '25000' },
      problems: { type: 'string', default: Object.keys(MOO_PROBLEMS).join(',') },
      'no-pymoo': { type: 'boolean', default: false },
      jobs: { type: 'string', default: '2' },
    },
    strict: true,
  });
  const seeds = Number(values.seeds);
  const evaluations = Number(values.evals);
  const jobs = Number(values.jobs);
  const problems = values.problems.split(',').filter((p) => p !== '');
  for (const p of problems)
    if (!(p in MOO_PROBLEMS))
      throw new Error(`unknown problem ${p} (known: ${Object.keys(MOO_PROBLEMS).join(', ')})`);
  if (!Number.isInteger(seeds) || seeds < 1)
    throw new Error(`--seeds must be a positive integer, got ${values.seeds}`);
  if (!Number.isInteger(evaluations) || evaluations < 1)
    throw new Error(`--evals must be a positive integer, got ${values.evals}`);
  if (!Number.isInteger(jobs) || jobs < 1)
    throw new Error(`--jobs must be a positive integer, got ${values.jobs}`);
  return {
    problems,
    seeds: Array.from({ length: seeds }, (_, i) => i + 1),
    evaluations,
    pymoo: !values['no-pymoo'],
    jobs,
  };
}

export async function runMooBench(
  config: MooBenchConfig,
  log: (line: string) => void = console.log,
): Promise<MooBenchResult> {
  const workDir = mkdtempSync(join(tmpdir(), 'hm3-moo-bench-'));
  try {
    // pymoo runs in its own processes while ours run here
    const pymooOut = config.pymoo ? startPymoo(config, workDir) : undefined;
    pymooOut?.catch(() => undefined);
    const ours: OurRun[] = [];
    for (const problem of config.problems) {
      for (const algorithm of ['nsga2', 'moead', 'random'] as const) {
        for (const seed of config.seeds) {
          const run = runOurs(problem, algorithm, seed, config.evaluations);
          ours.push(run);
          log(
            `ours  ${problem} ${algorithm} seed ${seed}: ${run.seconds.toFixed(1)}s, ${run.evaluations} evaluations, HV ${run.finalHv.toFixed(5)}`,
          );
        }
      }
    }
    const pymoo: PymooRun[] = [];
    let pymooVersion: string | undefined;
    if (pymooOut !== undefined) {
      const raw = JSON.parse(readFileSync(await pymooOut, 'utf8')) as {
        pymoo: string;
        runs: {
          problem: string;
          algorithm: 'nsga2' | 'moead';
          seed: number;
          evaluations: number;
          seconds: number;
          front: number[][];
        }[];
      };
      pymooVersion = raw.pymoo;
      for (const r of raw.runs) {
        const problem = MOO_PROBLEMS[r.problem]!.make();
        pymoo.push({
          problem: r.problem,
          algorithm: r.algorithm,
          seed: r.seed,
          evaluations: r.evaluations,
          seconds: r.seconds,
          finalHv: frontHypervolume(problem, r.front),
        });
      }
    }
    const result: MooBenchResult = {
      config,
      ours,
      pymoo,
      checks: checkResults(ours, pymoo, config.problems),
    };
    if (pymooVersion !== undefined) result.pymooVersion = pymooVersion;
    return result;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** The `moo` bench command: runs, prints the tables, writes results JSON; exit code 1 when a check fails. */
export async function mooBenchCommand(args: readonly string[]): Promise<number> {
  const config = parseMooArgs(args);
  const started = new Date();
  const result = await runMooBench(config);
  const table = formatTables(result);
  console.log(
    `\n@hm3/moo vs pymoo: ${config.evaluations} evaluations, seeds ${config.seeds.join(',')}, HV normalised by the true front, reference 1.1\n`,
  );
  console.log(table);
  const resultsDir = join(here, '../results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `moo-${started.toISOString().slice(0, 10)}.json`);
  writeFileSync(
    file,
    JSON.stringify({ startedAt: started.toISOString(), node: process.version, ...result }, null, 2),
  );
  console.log(`\nresults: ${file}`);
  return result.checks.every((c) => c.pass) ? 0 : 1;
}
