import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CommanderError, type Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { InvalidArgumentError, NotFoundError } from '@hm3/errors';
import {
  frontMembers,
  parseSearchSpecYaml,
  STRATEGIES,
  validateSearchSpec,
  specToDocument,
  type ScoredCandidate,
  type SearchEvent,
  type SearchResult,
  type SearchSpec,
} from '@hm3/search';
import { runEmbeddedSearch } from '../embedded/embedded-search.js';
import { exitCodeOf } from './merge.js';

/**
 * `hm3 search <spec.yaml>`: the whole HM3 search in this process (merge executor, model runtime,
 * evaluator, path policy, in-memory store, artifacts under the search folder); a progress bar per
 * round; the front as a table at the end. The folder then serves `hm3 front` and `hm3 recommend`.
 */
export interface SearchIo {
  out: (line: string) => void;
  err: (line: string) => void;
  tty: boolean;
}

export const consoleIo = (): SearchIo => ({
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  tty: process.stderr.isTTY === true,
});

/** Reports progress: a bar per round on a terminal, a line per round otherwise. */
export function progressReporter(io: SearchIo): (event: SearchEvent) => void {
  let bar: SingleBar | undefined;
  let planned = 0;
  let scored = 0;
  let started = Date.now();
  return (event) => {
    switch (event.type) {
      case 'search.started':
        io.err(
          `search ${event.searchId}: strategy ${event.strategy}, ${event.preferences} preferences, budget ${event.budget || 'unbounded'} evaluations`,
        );
        break;
      case 'round.started':
        planned = Math.max(1, event.planned);
        scored = 0;
        started = Date.now();
        if (io.tty) {
          bar = new SingleBar({
            format: `round ${event.round} [{bar}] {value}/{total} candidates | {evaluations} evaluations | {eta}s`,
            hideCursor: true,
            clearOnComplete: true,
            stream: process.stderr,
          });
          bar.start(planned, 0, { evaluations: 0 });
        }
        break;
      case 'candidate.scored':
        scored++;
        bar?.update(Math.min(scored, planned), { evaluations: event.evaluations });
        break;
      case 'round.completed': {
        bar?.stop();
        bar = undefined;
        const s = event.summary;
        io.err(
          `round ${s.round}: ${s.candidatesScored} candidates, ${s.evaluations} evaluations so far, front ${s.frontSize}, hypervolume ${s.hypervolume.toFixed(4)} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
        );
        break;
      }
      case 'heldout.progress':
        if (event.done === event.total) io.err(`held-out: re-scored the ${event.total} front members`);
        break;
      case 'search.completed':
        break;
    }
  };
}

function fmt(values: readonly number[] | undefined): string[] {
  return values === undefined ? [] : values.map((v) => v.toFixed(3));
}

/** The front as a table: one row per member, search / held-out score per objective. */
export function formatFrontTable(result: SearchResult, marked?: string): string[] {
  const members = frontMembers(result);
  const header = ['', '#', ...result.objectives.map((o) => `${o} (search/heldout)`), 'candidate'];
  const rows = members.map((c: ScoredCandidate, i) => {
    const s = fmt(c.search);
    const h = fmt(c.heldout);
    return [
      c.id === marked ? '*' : '',
      String(i),
      ...result.objectives.map((_, k) => `${s[k]} / ${h[k] ?? '-'}`),
      `${c.label}${c.pure && c.pool[0]!.recipe ? ` ${recipeText(c)}` : ''}`,
    ];
  });
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, j) => (j === cells.length - 1 ? cell : cell.padEnd(widths[j]!))).join('  ');
  return [line(header), ...rows.map(line)];
}

function recipeText(c: ScoredCandidate): string {
  const r = c.pool[0]!.recipe!;
  return `(${r.method}: w=${r.terms.map((t) => t.weight.toFixed(2)).join(',')} d=${r.terms.map((t) => t.density.toFixed(2)).join(',')} lambda=${r.lambda.toFixed(2)})`;
}

export function summaryLines(result: SearchResult): string[] {
  return [
    `search ${result.searchId} (${result.strategy}): ${result.state.toLowerCase()} after ${result.rounds.length} rounds, ` +
      `${result.evaluations} evaluations, ${result.candidates.length} candidates, ${result.seconds.toFixed(1)} s (stopped: ${result.stopReason})`,
    `front: ${result.front.length} members; hypervolume ${result.hypervolume.search.toFixed(4)} (search split), ${result.hypervolume.heldout.toFixed(4)} (held-out)`,
  ];
}

export interface SearchCommandOptions {
  out?: string;
  budget?: string;
  strategy?: string;
  seed?: string;
  threads?: string;
}

function positiveInt(text: string, field: string, min = 1): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new InvalidArgumentError(`${field}: "${text}" must be an integer >= ${min}`, { field });
  return n;
}

/** Applies command-line overrides to a parsed spec (validated again, so errors name the field). */
export function withOverrides(spec: SearchSpec, options: SearchCommandOptions, source: string): SearchSpec {
  const doc = specToDocument(spec) as Record<string, unknown> & { budget: Record<string, unknown> };
  if (options.budget !== undefined)
    doc.budget = { ...doc.budget, max_evaluations: positiveInt(options.budget, '--budget') };
  if (options.strategy !== undefined) doc['strategy'] = options.strategy;
  if (options.seed !== undefined) doc['seed'] = positiveInt(options.seed, '--seed', 0);
  return validateSearchSpec(doc, source);
}

export async function loadSpecFile(file: string): Promise<SearchSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new NotFoundError(`cannot read the search spec ${file}`, { file }, cause);
  }
  return parseSearchSpecYaml(text, file);
}

export async function runSearchCommand(
  specFile: string,
  options: SearchCommandOptions,
  io: SearchIo,
): Promise<number> {
  try {
    const spec = withOverrides(await loadSpecFile(specFile), options, specFile);
    const outDir = path.resolve(options.out ?? `hm3-search-${spec.name.replace(/[^A-Za-z0-9._-]+/g, '-')}`);
    const result = await runEmbeddedSearch(spec, {
      specDir: path.dirname(path.resolve(specFile)),
      outDir,
      onEvent: progressReporter(io),
      ...(options.threads !== undefined ? { threads: positiveInt(options.threads, '--threads') } : {}),
    });
    for (const line of summaryLines(result)) io.out(line);
    for (const line of formatFrontTable(result)) io.out(line);
    io.out(
      `wrote ${path.join(outDir, 'search.json')} and ${path.join(outDir, 'front.json')}; next: hm3 front ${outDir}`,
    );
    return 0;
  } catch (error) {
    io.err(`hm3 search: ${error instanceof Error ? error.message : String(error)}`);
    return exitCodeOf(error);
  }
}

export function registerSearch(program: Command): void {
  program
    .command('search')
    .description(
      'Run an HM3 search in this process (no server): merges x inference paths -> the Pareto front',
    )
    .argument('<spec>', 'the search spec (YAML, the fields of hm3.v1.SearchSpec; see docs/search.md)')
    .option('--out <dir>', 'the search folder (default: ./hm3-search-<name>)')
    .option('--budget <n>', 'override budget.max_evaluations')
    .option('--strategy <name>', `override the strategy (${STRATEGIES.join(', ')})`)
    .option('--seed <n>', 'override the seed')
    .option('--threads <n>', 'onnxruntime threads per operator (default 1)')
    .action(async (spec: string, options: SearchCommandOptions) => {
      const code = await runSearchCommand(spec, options, consoleIo());
      if (code !== 0)
        throw new CommanderError(code, 'hm3.search', `hm3 search failed with exit code ${code}`);
    });
}
