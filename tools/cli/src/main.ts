import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { registerDemo } from './commands/demo.js';
import { registerEval } from './commands/eval.js';
import { registerFront } from './commands/front.js';
import { registerMerge } from './commands/merge.js';
import { registerRecommend } from './commands/recommend.js';
import { registerSearch } from './commands/search.js';
import { registerServe } from './commands/serve.js';
import { attachRemoteSearch } from './remote/remote-search.js';

const packageJson = createRequire(import.meta.url)('../package.json') as { version: string };

/**
 * Builds the `hm3` program. Only commands that do real work are registered: each issue that lands
 * adds its own (merge, eval, search, front, recommend, serve).
 */
export function buildProgram(): Command {
  const program = new Command('hm3')
    .description(
      'HM3: merge fine-tuned checkpoints of one base model in parameter and architecture space,\n' +
        'and search both for the Pareto front over your tasks.',
    )
    .version(packageJson.version, '-v, --version')
    .showHelpAfterError()
    .exitOverride();
  registerDemo(program);
  registerMerge(program);
  registerEval(program);
  registerSearch(program);
  attachRemoteSearch(program);
  registerFront(program);
  registerRecommend(program);
  registerServe(program);
  return program;
}

/** Runs the CLI; returns the process exit code instead of exiting, so tests can call it. */
export async function run(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    console.error(`hm3: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
