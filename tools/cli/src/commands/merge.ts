import { readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CommanderError, Option, type Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { Hm3Error, InvalidArgumentError } from '@hm3/errors';
import {
  checkOutputDir,
  defaultThreads,
  executeMerge,
  formatBytes,
  formatMethodList,
  formatPlanSummary,
  materializeEmrTask,
  parseByteSize,
  parseRecipeYaml,
  planMerge,
  type MergeProgress,
} from '@hm3/merge';
import { tiesBandedBackend } from '@hm3/tensor';

/**
 * `hm3 merge <recipe.yaml> <out-dir>`: a mergekit YAML recipe merged into a Hugging Face folder, streaming
 * tensor by tensor within --max-memory. `--validate` plans (reads configs and safetensors headers only)
 * and prints the plan; `--list-methods` prints every method with its parameters and defaults.
 * Exit codes: 0 ok, 1 runtime failure, 2 bad input (recipe, model folders, sizes, memory bound).
 */
export interface MergeCommandOptions {
  validate?: boolean;
  listMethods?: boolean;
  maxMemory?: string;
  threads?: string;
  outShardSize: string;
  nonFinite: 'error' | 'warn';
  progress?: boolean;
  /** emr: materialise this task (model name) as a plain HF folder instead of writing the shared layout. */
  task?: string;
}

export interface MergeIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Whether progress may draw a bar (a terminal); otherwise it prints a line now and then. */
  tty: boolean;
}

const BAD_INPUT = new Set(['INVALID_ARGUMENT', 'NOT_FOUND', 'FAILED_PRECONDITION', 'ALREADY_EXISTS']);

/** The exit code of an error: 2 for bad input, 1 for anything else. */
export function exitCodeOf(error: unknown): number {
  return error instanceof Hm3Error && BAD_INPUT.has(error.status) ? 2 : 1;
}

function positiveInt(text: string, field: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`${field}: "${text}" must be a positive integer`, { field });
  return n;
}

function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - m * 60)} s`;
}

function progressLine(p: MergeProgress): string {
  const pct = p.bytesTotal > 0 ? (100 * p.bytesDone) / p.bytesTotal : 100;
  return (
    `merge ${pct.toFixed(1)}%  tensors ${p.tensorsDone}/${p.tensorsTotal}  ` +
    `${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}  ${formatBytes(p.bytesPerSecond)}/s  ETA ${formatDuration(p.etaSeconds)}`
  );
}

/** Runs `hm3 merge`; returns the exit code (0 ok, 1 runtime failure, 2 bad input). */
export async function runMergeCommand(
  recipePath: string | undefined,
  outDir: string | undefined,
  options: MergeCommandOptions,
  io: MergeIo,
): Promise<number> {
  if (options.listMethods) {
    io.out(formatMethodList());
    return 0;
  }
  if (recipePath === undefined || (outDir === undefined && !options.validate)) {
    io.err(
      'hm3 merge: usage: hm3 merge <recipe.yaml> <out-dir> [--validate] [--max-memory 2GB] [--threads n] [--out-shard-size 5GB]',
    );
    return 2;
  }
  if (options.task !== undefined && outDir !== undefined && !options.validate) {
    // `hm3 merge <emr-output> <out> --task t`: materialise from an emr output folder
    if (
      await stat(recipePath)
        .then((s) => s.isDirectory())
        .catch(() => false)
    ) {
      try {
        const result = await materializeEmrTask(recipePath, options.task, outDir);
        io.out(`materialised task ${options.task} of ${recipePath} into ${result.outDir}`);
        return 0;
      } catch (error) {
        io.err(`hm3 merge: ${error instanceof Error ? error.message : String(error)}`);
        return exitCodeOf(error);
      }
    }
  }
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let bar: SingleBar | undefined;
  try {
    const maxMemory =
      options.maxMemory === undefined
        ? Math.floor(os.totalmem() / 2)
        : parseByteSize(options.maxMemory, 'max_memory');
    const shardBytes = parseByteSize(options.outShardSize, 'out_shard_size');
    const threads =
      options.threads === undefined ? defaultThreads() : positiveInt(options.threads, 'threads');
    let text: string;
    try {
      text = await readFile(recipePath, 'utf8');
    } catch (error) {
      throw new InvalidArgumentError(
        `${recipePath}: cannot read the recipe (${(error as Error).message})`,
        { file: recipePath },
        error,
      );
    }
    const recipe = parseRecipeYaml(text, recipePath);
    if (options.task !== undefined && recipe.method !== 'emr') {
      throw new InvalidArgumentError(`--task needs an emr recipe (${recipePath} uses ${recipe.method})`, {
        field: 'task',
      });
    }
    const plan = await planMerge(recipe, { maxMemory, source: recipePath });
    if (outDir !== undefined) await checkOutputDir(outDir);
    // --task with a recipe: the emr layout goes to a temporary folder beside the output, then one task is materialised
    const mergeDir =
      options.task !== undefined && outDir !== undefined
        ? `${path.resolve(outDir)}.emr-${process.pid}`
        : outDir;
    if (options.validate) {
      io.out(formatPlanSummary(plan));
      io.out(
        `valid: nothing was read beyond configs and headers, nothing written${outDir === undefined ? '' : ` (output would be ${path.resolve(outDir)})`}`,
      );
      return 0;
    }
    for (const w of plan.warnings) io.err(`warning: ${w}`);
    const backend = tiesBandedBackend();
    if (backend.kind === 'js')
      io.err(
        `warning: the WebAssembly merge kernels did not load (${backend.reason}); bf16 ties and task_arithmetic run on the JS kernels, several times slower`,
      );
    let lastLine = 0;
    if (options.progress !== false && io.tty) {
      bar = new SingleBar({
        format:
          'merge [{bar}] {percentage}% | tensors {tensors} | {done}/{total_bytes} | {speed}/s | ETA {eta_text}',
        hideCursor: true,
        clearOnComplete: false,
        stream: process.stderr,
      });
      bar.start(plan.inputBytes, 0, {
        tensors: `0/${plan.tensors.length}`,
        done: '0 B',
        total_bytes: formatBytes(plan.inputBytes),
        speed: '-',
        eta_text: '?',
      });
    }
    const result = await executeMerge(plan, mergeDir!, {
      shardBytes,
      threads,
      nonFinite: options.nonFinite,
      signal: controller.signal,
      onWarning: (w) => {
        if (!plan.warnings.includes(w)) io.err(`warning: ${w}`);
      },
      onProgress: (p) => {
        if (options.progress === false) return;
        if (bar !== undefined) {
          bar.update(p.bytesDone, {
            tensors: `${p.tensorsDone}/${p.tensorsTotal}`,
            done: formatBytes(p.bytesDone),
            speed: formatBytes(p.bytesPerSecond),
            eta_text: formatDuration(p.etaSeconds),
          });
          return;
        }
        const now = Date.now();
        if (now - lastLine >= 500 || p.tensorsDone === p.tensorsTotal) {
          lastLine = now;
          io.err(progressLine(p));
        }
      },
    });
    bar?.stop();
    bar = undefined;
    for (const t of result.emr?.tasks ?? [])
      io.out(`emr task ${t.task} (${t.model}): masks ${formatBytes(t.maskBytes)}`);
    if (options.task !== undefined && mergeDir !== undefined && outDir !== undefined) {
      try {
        const done = await materializeEmrTask(mergeDir, options.task, outDir);
        io.out(
          `materialised task ${options.task} into ${done.outDir} (recipe sha256 ${result.recipeSha256})`,
        );
      } finally {
        await rm(mergeDir, { recursive: true, force: true });
      }
      return 0;
    }
    io.out(
      `merged ${result.tensors} tensors (${formatBytes(result.totalBytes)}) into ${result.outDir} in ${result.seconds.toFixed(1)} s; ` +
        `recipe sha256 ${result.recipeSha256}`,
    );
    return 0;
  } catch (error) {
    bar?.stop();
    io.err(`hm3 merge: ${error instanceof Error ? error.message : String(error)}`);
    return exitCodeOf(error);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description(
      'Merge the models of a mergekit YAML recipe into a Hugging Face folder, streaming within --max-memory',
    )
    .argument(
      '[recipe]',
      'the recipe (mergekit YAML: merge_method, base_model, models, parameters, dtype, ...)',
    )
    .argument('[out-dir]', 'the output folder (must not exist, or be empty)')
    .option('--validate', 'plan and check everything without reading weights; print the plan and exit')
    .option('--list-methods', 'print every merge method with its parameters and defaults')
    .option('--max-memory <size>', 'bound on tensor buffers, e.g. 2GB (default: half of RAM)')
    .option(
      '--threads <n>',
      `worker threads for the kernels of large tensors (default: the machine's cores, at most 8: ${defaultThreads()} here)`,
    )
    .option('--out-shard-size <size>', 'shard size of the output', '5GB')
    .addOption(
      new Option('--non-finite <policy>', 'NaN/Inf in an input').choices(['error', 'warn']).default('error'),
    )
    .option('--no-progress', 'no progress bar or progress lines')
    .option(
      '--task <model>',
      "emr: write that task's model as a plain HF folder (the first argument may be an emr output folder)",
    )
    .action(async (recipe: string | undefined, outDir: string | undefined, options: MergeCommandOptions) => {
      const code = await runMergeCommand(recipe, outDir, options, {
        out: (line) => console.log(line),
        err: (line) => console.error(line),
        tty: process.stderr.isTTY === true,
      });
      if (code !== 0) throw new CommanderError(code, 'hm3.merge', `hm3 merge failed with exit code ${code}`);
    });
}
