import { CommanderError, type Command } from 'commander';
import { InvalidArgumentError } from '@hm3/errors';
import { parsePreference, recommend, type RecommendScalarization } from '@hm3/search';
import { exportMember, readSearch } from '../embedded/embedded-search.js';
import { exitCodeOf } from './merge.js';
import { consoleIo, type SearchIo } from './search.js';

/**
 * `hm3 recommend <search> --preference 0.6,0.2,0.2 [--export <dir>]`: the front member that best fits
 * a preference (chosen on the search split; held-out scores reported), optionally exported as a
 * standalone Hugging Face folder (a merged or source model is copied; an inference path is written as a
 * Llama-family checkpoint with its layers renumbered, affine maps recorded beside it when it has any).
 */
export interface RecommendCommandOptions {
  preference?: string;
  export?: string;
  scalarization?: string;
}

/** --scalarization: weighted-sum (default) or tchebycheff. */
export function scalarizationOption(value: string | undefined): RecommendScalarization {
  if (value === undefined || value === 'weighted-sum' || value === 'tchebycheff')
    return value ?? 'weighted-sum';
  throw new InvalidArgumentError(`--scalarization: "${value}" is not weighted-sum or tchebycheff`, {
    field: 'scalarization',
  });
}

export async function runRecommendCommand(
  search: string,
  options: RecommendCommandOptions,
  io: SearchIo,
): Promise<number> {
  try {
    const { result } = await readSearch(search);
    if (options.preference === undefined)
      throw new InvalidArgumentError('--preference is required, e.g. --preference 0.6,0.2,0.2', {
        field: 'preference',
      });
    const preference = parsePreference(options.preference, result.objectives.length);
    const { candidate, value, scalarization } = recommend(
      result,
      preference,
      scalarizationOption(options.scalarization),
    );
    io.out(`recommended for (${preference.map((w) => w.toFixed(2)).join(', ')}): ${candidate.id}`);
    io.out(`  ${candidate.label}`);
    result.objectives.forEach((o, k) =>
      io.out(
        `  ${o.padEnd(12)} search ${candidate.search[k]!.toFixed(3)}  held-out ${candidate.heldout?.[k]?.toFixed(3) ?? '-'}`,
      ),
    );
    io.out(
      scalarization === 'weighted-sum'
        ? `  weighted sum ${value.toFixed(4)} (search split; the largest on the front)`
        : `  augmented Tchebycheff cost ${value.toFixed(4)} (front normalised to its ideal and nadir; the lowest)`,
    );
    if (options.export !== undefined) {
      const exported = await exportMember(candidate, options.export);
      io.out(
        `exported to ${exported.outDir} (${exported.how === 'copy' ? 'the model as is' : 'the inference path, layers renumbered'}${exported.standalone ? '' : '; it holds affine maps, so only the HM3 runtime runs it as searched'})`,
      );
    }
    return 0;
  } catch (error) {
    io.err(`hm3 recommend: ${error instanceof Error ? error.message : String(error)}`);
    return exitCodeOf(error);
  }
}

export function registerRecommend(program: Command): void {
  program
    .command('recommend')
    .description('Pick the front member that best fits a preference; optionally export it as a HF folder')
    .argument('<search>', 'the search folder written by hm3 search / hm3 demo (or its search.json)')
    .option('--preference <w>', 'one weight per objective, e.g. 0.6,0.2,0.2 (normalised to sum 1)')
    .option('--export <dir>', 'write the chosen model as a standalone Hugging Face folder')
    .option(
      '--scalarization <kind>',
      'weighted-sum (default: best sum of w_k x score) or tchebycheff (balanced)',
    )
    .action(async (search: string, options: RecommendCommandOptions) => {
      const code = await runRecommendCommand(search, options, consoleIo());
      if (code !== 0)
        throw new CommanderError(code, 'hm3.recommend', `hm3 recommend failed with exit code ${code}`);
    });
}
