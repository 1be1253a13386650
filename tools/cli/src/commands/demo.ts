import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CommanderError, type Command } from 'commander';
import { recommend, validateSearchSpec, type SearchResult } from '@hm3/search';
import { stringify } from 'yaml';
import { exportMember, runEmbeddedSearch, writeFrontPlot } from '../embedded/embedded-search.js';
import { exitCodeOf } from './merge.js';
import {
  consoleIo,
  formatFrontTable,
  progressReporter,
  summaryLines,
  withOverrides,
  type SearchIo,
} from './search.js';

/**
 * `hm3 demo`: a whole HM3 search on the fixture zoo (a Llama-style base and three experts: translate,
 * math, code), in this process: merges per preference, path policies over {experts, merged}, the
 * front re-scored on held-out data, the plot, and the model recommended for a uniform preference
 * exported as a Hugging Face folder. Sized to finish in a few minutes on two CPU cores.
 */
export const DEMO_BUDGET = 150;
/** Search-split examples per objective and evaluation (the held-out re-scoring uses all 320). */
export const DEMO_MAX_EXAMPLES = 128;

/** The demo's spec (written to <out>/spec.yaml, so `hm3 search <out>/spec.yaml` re-runs it). */
export function demoSpecDocument(budget = DEMO_BUDGET, seed = 1): Record<string, unknown> {
  return {
    name: 'zoo-demo',
    base: 'zoo:base',
    experts: ['zoo:expert-translate', 'zoo:expert-math', 'zoo:expert-code'],
    objectives: ['translate', 'math', 'code'].map((task) => ({
      name: task,
      task: 'exact_match',
      dataset: `zoo:${task}`,
      max_examples: DEMO_MAX_EXAMPLES,
    })),
    preference_count: 4,
    preference_sampling: 'dirichlet',
    budget: { max_evaluations: budget },
    strategy: 'hm3',
    upper: { method: 'dare_ties', parameters: { density: 0.5, lambda: 1 } },
    rl: { episodes_per_iteration: 8 },
    seed,
  };
}

export interface DemoCommandOptions {
  out: string;
  budget?: string;
  seed?: string;
  strategy?: string;
}

export interface DemoOutputs {
  readonly result: SearchResult;
  readonly png: string;
  readonly svg: string;
  readonly recommended: string;
}

export async function runDemo(options: DemoCommandOptions, io: SearchIo): Promise<DemoOutputs> {
  const started = Date.now();
  const out = path.resolve(options.out);
  const spec = withOverrides(validateSearchSpec(demoSpecDocument(), 'demo spec'), options, 'demo spec');
  io.out(
    'HM3 demo: a hierarchical search on the fixture zoo (base + experts translate / math / code, 8 layers, hidden 128).',
  );
  io.out(
    `Upper level: one DARE-TIES merge per preference (w as task weights); lower level: a PPO path policy over {experts, merged}; budget ${spec.budget.maxEvaluations} evaluations.\n`,
  );
  const result = await runEmbeddedSearch(spec, {
    specDir: process.cwd(),
    outDir: out,
    onEvent: progressReporter(io),
  });
  await mkdir(out, { recursive: true });
  await writeFile(
    path.join(out, 'spec.yaml'),
    stringify(demoSpecDocument(spec.budget.maxEvaluations, spec.seed)),
  );
  const k = result.objectives.length;
  const pick = recommend(result, new Array<number>(k).fill(1 / k));
  io.out('');
  for (const line of summaryLines(result)) io.out(line);
  for (const line of formatFrontTable(result, pick.candidate.id)) io.out(line);
  io.out('* recommended for the uniform preference');
  const plot = await writeFrontPlot(result, path.join(out, 'front'), pick.candidate);
  const recommended = path.join(out, 'recommended');
  const exported = await exportMember(pick.candidate, recommended);
  io.out(
    `\nwrote ${path.join(out, 'front.json')}, ${plot.png} (and .svg), ${exported.outDir} (a Hugging Face folder)`,
  );
  io.out(
    `demo finished in ${((Date.now() - started) / 1000).toFixed(0)} s; next: hm3 recommend ${out} --preference 0.6,0.2,0.2`,
  );
  return { result, png: plot.png, svg: plot.svg, recommended: exported.outDir };
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('Run an HM3 search on the fixture zoo: front, plot and recommended model (a few minutes)')
    .option('--out <dir>', 'output folder', 'hm3-demo')
    .option('--budget <n>', `evaluations (default ${DEMO_BUDGET})`)
    .option('--seed <n>', 'random seed (same seed, same result)')
    .option('--strategy <name>', 'hm3 (default), hm3-amortized, param-only, arch-only, random, ...')
    .action(async (options: DemoCommandOptions) => {
      const io = consoleIo();
      try {
        await runDemo(options, io);
      } catch (error) {
        io.err(`hm3 demo: ${error instanceof Error ? error.message : String(error)}`);
        const code = exitCodeOf(error);
        throw new CommanderError(code, 'hm3.demo', `hm3 demo failed with exit code ${code}`);
      }
    });
}
