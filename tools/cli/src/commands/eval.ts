/**
 * `hm3 eval <model-dir | path.json> --task <spec> [--split s]`: scores a model folder, or an inference
 * path (JSON: {"pool": [model folders], "steps": [{"poolIndex", "layerIndex", "affine"?}], "headSource"?}),
 * on a task: a task spec JSON file (TaskSpec of @hm3/evaluation: name, dataset {uri}, split,
 * promptTemplate, metric, ...) or a zoo task (`zoo:math`, or just `math`). Prints the score, a progress
 * bar while it runs, and with --records the per-example records (JSONL).
 * Exit codes: 0 ok, 1 runtime failure, 2 bad input.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CommanderError, type Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { Hm3Error, InvalidArgumentError } from '@hm3/errors';
import {
  evaluateTask,
  parseTaskSpec,
  zooTaskSpec,
  ZOO_SCHEME,
  type EvaluationResult,
  type TaskSpec,
} from '@hm3/evaluation';
import {
  modelPath,
  ZOO_MODELS,
  ZOO_SPLITS,
  ZOO_TASKS,
  type ZooModel,
  type ZooSplit,
  type ZooTask,
} from '@hm3/fixtures';
import { loadTokenizer, ModelRuntime, ownPath, readModelConfig, type InferencePath } from '@hm3/model';

export interface EvalCommandOptions {
  task?: string;
  split?: string;
  limit?: string;
  batchSize?: string;
  threads?: string;
  records?: string;
  json?: boolean;
  progress?: boolean;
}

export interface EvalIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Whether progress may draw a bar (a terminal); otherwise it prints a line now and then. */
  tty: boolean;
}

const BAD_INPUT = new Set(['INVALID_ARGUMENT', 'NOT_FOUND', 'FAILED_PRECONDITION', 'ALREADY_EXISTS']);

function exitCodeOf(error: unknown): number {
  return error instanceof Hm3Error && BAD_INPUT.has(error.status) ? 2 : 1;
}

function positiveInt(text: string | undefined, field: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`${field}: "${text}" must be a positive integer`, { field });
  return n;
}

async function readJson(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError(`${what} ${file}: ${(error as Error).message}`, { file }, error);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InvalidArgumentError(
      `${what} ${file} is not JSON: ${(error as Error).message}`,
      { file },
      error,
    );
  }
}

/** The task of `--task`: a zoo task (`zoo:math` or `math`) or a task spec JSON file (paths relative to it). */
export async function resolveTask(task: string, split: string | undefined): Promise<TaskSpec> {
  const zoo = task.startsWith(ZOO_SCHEME) ? task.slice(ZOO_SCHEME.length) : task;
  if ((ZOO_TASKS as readonly string[]).includes(zoo)) {
    const s = split ?? 'search';
    if (!(ZOO_SPLITS as readonly string[]).includes(s)) {
      throw new InvalidArgumentError(`--split: the zoo has the splits ${ZOO_SPLITS.join(', ')}, not "${s}"`, {
        field: 'split',
      });
    }
    return zooTaskSpec(zoo as ZooTask, s as ZooSplit);
  }
  if (task.startsWith(ZOO_SCHEME)) {
    throw new InvalidArgumentError(`--task: "${task}" names no zoo task (${ZOO_TASKS.join(', ')})`, {
      field: 'task',
    });
  }
  const raw = await readJson(task, 'task spec');
  const spec = parseTaskSpec(raw);
  const dataset =
    spec.dataset.uri.startsWith('artifact://') || spec.dataset.uri.startsWith(ZOO_SCHEME)
      ? spec.dataset
      : { ...spec.dataset, uri: path.resolve(path.dirname(task), spec.dataset.uri) };
  return { ...spec, dataset, ...(split === undefined ? {} : { split }) };
}

function modelDir(ref: string, base: string): string {
  if (ref.startsWith(ZOO_SCHEME)) {
    const name = ref.slice(ZOO_SCHEME.length);
    if (!(ZOO_MODELS as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(`"${ref}" names no zoo model (${ZOO_MODELS.join(', ')})`, {
        field: 'model',
      });
    }
    return modelPath(name as ZooModel);
  }
  return path.resolve(base, ref);
}

/** The inference path of the first argument: a model folder (its own layers), or a path JSON file. */
export async function resolveTarget(target: string): Promise<{ path: InferencePath; tokenizerDir: string }> {
  if (!target.endsWith('.json')) {
    const dir = modelDir(target, process.cwd());
    const arch = await readModelConfig(dir);
    return { path: ownPath(dir, arch.numLayers), tokenizerDir: dir };
  }
  const raw = (await readJson(target, 'inference path')) as {
    pool?: unknown;
    steps?: unknown;
    headSource?: unknown;
  };
  if (
    !Array.isArray(raw.pool) ||
    !raw.pool.every((p) => typeof p === 'string') ||
    !Array.isArray(raw.steps)
  ) {
    throw new InvalidArgumentError(
      `${target}: an inference path is {"pool": [model folders], "steps": [{"poolIndex", "layerIndex"}], "headSource"?}`,
      { file: target },
    );
  }
  const pool = (raw.pool as string[]).map((p) => modelDir(p, path.dirname(target)));
  const head = typeof raw.headSource === 'number' ? raw.headSource : pool.length - 1;
  return {
    path: { pool, steps: raw.steps as InferencePath['steps'], headSource: head },
    tokenizerDir: pool[head] ?? pool[pool.length - 1]!,
  };
}

function summary(r: EvaluationResult): string {
  const rate = r.elapsedSeconds > 0 ? r.count / r.elapsedSeconds : 0;
  return (
    `${r.task} (${r.split}): ${r.metric} ${r.score.toFixed(6)} on ${r.count} examples ` +
    `in ${r.elapsedSeconds.toFixed(2)} s (${rate.toFixed(0)} examples/s)`
  );
}

/** Runs `hm3 eval`; returns the exit code (0 ok, 1 runtime failure, 2 bad input). */
export async function runEvalCommand(
  target: string | undefined,
  options: EvalCommandOptions,
  io: EvalIo,
): Promise<number> {
  if (target === undefined || options.task === undefined) {
    io.err(
      'hm3 eval: usage: hm3 eval <model-dir | path.json> --task <spec.json | zoo:task> [--split s] [--limit n]',
    );
    return 2;
  }
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let bar: SingleBar | undefined;
  let runtime: ModelRuntime | undefined;
  try {
    const limit = positiveInt(options.limit, 'limit');
    const batchSize = positiveInt(options.batchSize, 'batch-size');
    const threads = positiveInt(options.threads, 'threads');
    const spec = await resolveTask(options.task, options.split);
    const task = limit === undefined ? spec : { ...spec, limit };
    const resolved = await resolveTarget(target);
    runtime = new ModelRuntime(threads === undefined ? {} : { intraOpThreads: threads });
    const model = await runtime.path(resolved.path);
    const tokenizer = await loadTokenizer(resolved.tokenizerDir);
    let lastLine = 0;
    const result = await evaluateTask({
      model,
      tokenizer,
      task,
      signal: controller.signal,
      ...(batchSize === undefined ? {} : { batchSize }),
      onProgress: (p) => {
        if (options.progress === false) return;
        if (io.tty) {
          if (bar === undefined) {
            bar = new SingleBar({
              format: `eval ${task.name} [{bar}] {percentage}% | {value}/{total} examples | ETA {eta}s`,
              hideCursor: true,
              clearOnComplete: true,
              stream: process.stderr,
            });
            bar.start(p.total, 0);
          }
          bar.update(p.done);
          return;
        }
        const now = Date.now();
        if (now - lastLine >= 1000 || p.done === p.total) {
          lastLine = now;
          io.err(`eval ${task.name}: ${p.done}/${p.total} examples`);
        }
      },
    });
    bar?.stop();
    bar = undefined;
    if (options.records !== undefined) {
      await writeFile(options.records, result.records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    }
    if (options.json) {
      const { records: _records, ...rest } = result;
      io.out(JSON.stringify(rest));
    } else {
      io.out(summary(result));
      if (options.records !== undefined) io.out(`per-example records: ${options.records}`);
    }
    return 0;
  } catch (error) {
    bar?.stop();
    io.err(`hm3 eval: ${error instanceof Error ? error.message : String(error)}`);
    return exitCodeOf(error);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await runtime?.close();
  }
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('Score a model folder or an inference path (path.json) on a task, with a progress bar')
    .argument('[target]', 'a Hugging Face model folder, zoo:<model>, or an inference path JSON file')
    .option('--task <spec>', 'a task spec JSON file, or a zoo task (zoo:translate | zoo:math | zoo:code)')
    .option('--split <split>', "the split (zoo: train | search | heldout; default the spec's, else search)")
    .option('--limit <n>', 'score only the first n examples of the split')
    .option('--batch-size <n>', 'rows per forward pass (default 64)')
    .option('--threads <n>', "threads per onnxruntime operator (default: onnxruntime's)")
    .option(
      '--records <file>',
      'write the per-example records (prompt, expected, predicted, correct) as JSONL',
    )
    .option('--json', 'print the result (without records) as JSON')
    .option('--no-progress', 'no progress bar or progress lines')
    .action(async (target: string | undefined, options: EvalCommandOptions) => {
      const code = await runEvalCommand(target, options, {
        out: (line) => console.log(line),
        err: (line) => console.error(line),
        tty: process.stderr.isTTY === true,
      });
      if (code !== 0) throw new CommanderError(code, 'hm3.eval', `hm3 eval failed with exit code ${code}`);
    });
}
