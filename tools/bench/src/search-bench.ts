import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  frontMembers,
  pairedBootstrap,
  recommend,
  type BootstrapInterval,
  type ScoredCandidate,
  type SearchResult,
} from '@hm3/search';

// `npm run bench -- search`: search quality on the fixture zoo, issue 11's acceptance.
// Every strategy runs at the same evaluation budget (default 300) for each seed (default 3), as its own
// `hm3 search` process (the embedded search: real merges, real paths, real evaluations); the search
// split is capped at --max-examples per objective, the final front is re-scored on the whole held-out
// split. Reported per strategy: held-out hypervolume (mean, min, max over seeds; reference 0 in every
// objective), the best held-out score per task; and for hm3's uniform-preference recommendation,
// paired-bootstrap 95% intervals of the mean-over-tasks held-out difference against the best single
// method and against every expert. Results JSON in tools/bench/results/search-<date>.json, written
// after every run (a cut-short bench still leaves its numbers).

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');
const hm3Bin = join(repoRoot, 'tools/cli/bin/hm3.js');

export const DEFAULT_STRATEGIES = ['hm3', 'param-only', 'arch-only', 'task_arithmetic', 'ties', 'dare_ties'];
const SINGLE = ['task_arithmetic', 'ties', 'dare_ties'];

export function benchSpec(strategy: string, seed: number, budget: number, maxExamples: number): string {
  return [
    `name: bench-${strategy}-s${seed}`,
    'base: zoo:base',
    'experts: [zoo:expert-translate, zoo:expert-math, zoo:expert-code]',
    'objectives:',
    ...['translate', 'math', 'code'].map(
      (t) => `  - { name: ${t}, task: exact_match, dataset: "zoo:${t}", max_examples: ${maxExamples} }`,
    ),
    'preference_count: 4',
    `budget: { max_evaluations: ${budget} }`,
    // `hm3+nsga2`: hm3 with the NSGA-II upper level (weights, densities, lambda searched) instead of w as the weights.
    `strategy: ${strategy.split('+')[0]}`,
    ...(strategy.endsWith('+nsga2') ? ['upper: { optimizer: nsga2 }'] : []),
    'rl: { episodes_per_iteration: 8 }',
    `seed: ${seed}`,
    '',
  ].join('\n');
}

export interface RunRecord {
  strategy: string;
  seed: number;
  seconds: number;
  evaluations: number;
  candidates: number;
  frontSize: number;
  hvSearch: number;
  hvHeldout: number;
  /** Best held-out score per task over the front. */
  bestHeldout: Record<string, number>;
  /** Held-out scores of the uniform-preference recommendation. */
  recommendedHeldout: Record<string, number>;
  recommendedLabel: string;
}

interface Summary {
  strategy: string;
  seeds: number;
  hvHeldout: { mean: number; min: number; max: number };
  bestHeldout: Record<string, number>;
  recommendedHeldoutMean: number;
}

function byName(names: readonly string[], values: readonly number[] | undefined): Record<string, number> {
  return Object.fromEntries(names.map((n, k) => [n, values?.[k] ?? Number.NaN]));
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function record(result: SearchResult, strategy: string, seed: number): RunRecord {
  const members = frontMembers(result);
  const k = result.objectives.length;
  const pick = recommend(result, new Array<number>(k).fill(1 / k)).candidate;
  return {
    strategy,
    seed,
    seconds: result.seconds,
    evaluations: result.evaluations,
    candidates: result.candidates.length,
    frontSize: members.length,
    hvSearch: result.hypervolume.search,
    hvHeldout: result.hypervolume.heldout,
    bestHeldout: byName(
      result.objectives,
      result.objectives.map((_, j) =>
        Math.max(...members.map((m) => m.heldout?.[j] ?? Number.NEGATIVE_INFINITY)),
      ),
    ),
    recommendedHeldout: byName(result.objectives, pick.heldout),
    recommendedLabel: pick.label,
  };
}

function runOne(
  strategy: string,
  seed: number,
  budget: number,
  maxExamples: number,
  work: string,
  reuse: boolean,
  keepArtifacts: boolean,
): SearchResult | undefined {
  const dir = join(work, `${strategy}-s${seed}`);
  const done = join(dir, 'out', 'search.json');
  if (reuse) return existsSync(done) ? (JSON.parse(readFileSync(done, 'utf8')) as SearchResult) : undefined;
  mkdirSync(dir, { recursive: true });
  const specFile = join(dir, 'spec.yaml');
  writeFileSync(specFile, benchSpec(strategy, seed, budget, maxExamples));
  const run = spawnSync(process.execPath, [hm3Bin, 'search', specFile, '--out', join(dir, 'out')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.status !== 0)
    throw new Error(`hm3 search ${strategy} seed ${seed} failed (${run.status}): ${run.stderr.slice(-2000)}`);
  // The merged checkpoints (about 6 MB each, up to one per evaluation) are not needed once scored.
  if (!keepArtifacts) rmSync(join(dir, 'out', 'artifacts'), { recursive: true, force: true });
  return JSON.parse(readFileSync(done, 'utf8')) as SearchResult;
}

function uniformPick(result: SearchResult): ScoredCandidate {
  const k = result.objectives.length;
  return recommend(result, new Array<number>(k).fill(1 / k)).candidate;
}

export async function searchBenchCommand(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      seeds: { type: 'string', default: '3' },
      budget: { type: 'string', default: '300' },
      'max-examples': { type: 'string', default: '64' },
      strategies: { type: 'string', default: DEFAULT_STRATEGIES.join(',') },
      out: { type: 'string' },
      work: { type: 'string', default: join(os.tmpdir(), 'hm3-search-bench') },
      // Re-analyse the runs already in --work (runs not there are left out, not run).
      reuse: { type: 'boolean', default: false },
      'keep-artifacts': { type: 'boolean', default: false },
    },
  });
  const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => i + 1);
  const budget = Number(values.budget);
  const maxExamples = Number(values['max-examples']);
  const strategies = values.strategies.split(',').map((s) => s.trim());
  if (!existsSync(hm3Bin))
    throw new Error(`${hm3Bin} is missing: build the CLI first (npx nx build @hm3/cli)`);
  const date = new Date().toISOString().slice(0, 10);
  const outFile = values.out ?? join(repoRoot, 'tools/bench/results', `search-${date}.json`);
  mkdirSync(dirname(outFile), { recursive: true });
  const started = Date.now();
  const runs: RunRecord[] = [];
  const results = new Map<string, SearchResult>();
  const comparisons: Record<string, unknown>[] = [];
  const save = (complete: boolean) => {
    const summaries: Summary[] = strategies
      .map((strategy) => {
        const rs = runs.filter((r) => r.strategy === strategy);
        if (rs.length === 0) return undefined;
        const hv = rs.map((r) => r.hvHeldout);
        const tasks = Object.keys(rs[0]!.bestHeldout);
        return {
          strategy,
          seeds: rs.length,
          hvHeldout: { mean: mean(hv), min: Math.min(...hv), max: Math.max(...hv) },
          bestHeldout: Object.fromEntries(tasks.map((t) => [t, mean(rs.map((r) => r.bestHeldout[t]!))])),
          recommendedHeldoutMean: mean(rs.map((r) => mean(Object.values(r.recommendedHeldout)))),
        };
      })
      .filter((s): s is Summary => s !== undefined);
    const doc = {
      bench: 'search',
      date: new Date().toISOString(),
      complete,
      machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; load average at the end ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}`,
      command: `npm run bench -- search ${args.join(' ')}`.trim(),
      settings: {
        seeds,
        budget,
        maxExamples,
        strategies,
        heldout: 'the whole held-out split (320 per task)',
      },
      seconds: (Date.now() - started) / 1000,
      summaries,
      comparisons,
      runs,
    };
    writeFileSync(outFile, `${JSON.stringify(doc, null, 2)}\n`);
  };
  for (const seed of seeds) {
    for (const strategy of strategies) {
      const t0 = Date.now();
      const result = runOne(
        strategy,
        seed,
        budget,
        maxExamples,
        values.work,
        values.reuse,
        values['keep-artifacts'],
      );
      if (result === undefined) {
        console.log(`seed ${seed} ${strategy}: no finished run in ${values.work}; left out`);
        continue;
      }
      results.set(`${strategy}/${seed}`, result);
      const r = record(result, strategy, seed);
      runs.push(r);
      console.log(
        `seed ${seed} ${strategy.padEnd(16)} evals ${String(r.evaluations).padStart(3)}  front ${String(r.frontSize).padStart(2)}  ` +
          `HV search ${r.hvSearch.toFixed(4)} heldout ${r.hvHeldout.toFixed(4)}  search ${r.seconds.toFixed(0)} s (wall ${((Date.now() - t0) / 1000).toFixed(0)} s)`,
      );
      save(false);
    }
    // hm3's uniform recommendation against the best single method and every expert, on the same held-out examples
    const hm3 = results.get(`hm3/${seed}`);
    if (hm3) {
      const pick = uniformPick(hm3);
      const singles = SINGLE.map((s) => results.get(`${s}/${seed}`))
        .filter((r): r is SearchResult => r !== undefined)
        .map((r) => frontMembers(r)[0]!);
      const bestSingle = singles.sort((a, b) => mean(b.heldout ?? []) - mean(a.heldout ?? []))[0];
      const against: [string, ScoredCandidate | undefined][] = [
        [`best single method (${bestSingle?.pool[0]?.recipe?.method ?? 'none'})`, bestSingle],
        ...hm3.candidates
          .filter((c) => c.origin === 'seed')
          .map((c): [string, ScoredCandidate] => [c.label, c]),
      ];
      for (const [name, other] of against) {
        if (!other?.heldoutPerExample || !pick.heldoutPerExample) continue;
        const ci: BootstrapInterval = pairedBootstrap(pick.heldoutPerExample, other.heldoutPerExample, {
          samples: 2000,
          seed,
        });
        comparisons.push({ seed, recommended: pick.label, against: name, ...ci });
        console.log(
          `seed ${seed} hm3 uniform recommendation vs ${name}: mean diff ${ci.mean.toFixed(4)} [${ci.lower.toFixed(4)}, ${ci.upper.toFixed(4)}]`,
        );
      }
      save(false);
    }
  }
  save(true);
  console.log(`wrote ${outFile} (${((Date.now() - started) / 60000).toFixed(1)} min)`);
  return 0;
}
