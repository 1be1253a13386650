import path from 'node:path';
import { CommanderError, type Command } from 'commander';
import { parsePreference, recommend } from '@hm3/search';
import { readSearch, writeFrontPlot } from '../embedded/embedded-search.js';
import { exitCodeOf } from './merge.js';
import { scalarizationOption } from './recommend.js';
import { consoleIo, formatFrontTable, summaryLines, type SearchIo } from './search.js';

/**
 * `hm3 front <search>`: the final front of a search folder as a table (search / held-out scores),
 * and its plot (every candidate, the front, the point recommended for --preference marked; a pairwise
 * scatter matrix for 3+ objectives) as SVG and PNG.
 */
export interface FrontCommandOptions {
  plot?: string | false;
  preference?: string;
  scalarization?: string;
}

export async function runFrontCommand(
  search: string,
  options: FrontCommandOptions,
  io: SearchIo,
): Promise<number> {
  try {
    const { result, dir } = await readSearch(search);
    const k = result.objectives.length;
    const preference = options.preference
      ? parsePreference(options.preference, k)
      : new Array<number>(k).fill(1 / k);
    const pick = recommend(result, preference, scalarizationOption(options.scalarization));
    for (const line of summaryLines(result)) io.out(line);
    for (const line of formatFrontTable(result, pick.candidate.id)) io.out(line);
    io.out(`* recommended for preference (${preference.map((w) => w.toFixed(2)).join(', ')})`);
    if (options.plot !== false) {
      const base = path.resolve(options.plot ?? path.join(dir, 'front'));
      const files = await writeFrontPlot(result, base, pick.candidate);
      io.out(`plot: ${files.png} and ${files.svg}`);
    }
    return 0;
  } catch (error) {
    io.err(`hm3 front: ${error instanceof Error ? error.message : String(error)}`);
    return exitCodeOf(error);
  }
}

export function registerFront(program: Command): void {
  program
    .command('front')
    .description('Print the Pareto front of a search folder and plot it (PNG and SVG)')
    .argument('<search>', 'the search folder written by hm3 search / hm3 demo (or its search.json)')
    .option('--plot <base>', 'write the plot to <base>.png and <base>.svg (default: <search>/front)')
    .option('--no-plot', 'print the table only')
    .option(
      '--preference <w>',
      'mark the member recommended for this preference, e.g. 0.6,0.2,0.2 (default: uniform)',
    )
    .action(async (search: string, options: FrontCommandOptions) => {
      const code = await runFrontCommand(search, options, consoleIo());
      if (code !== 0) throw new CommanderError(code, 'hm3.front', `hm3 front failed with exit code ${code}`);
    });
}
