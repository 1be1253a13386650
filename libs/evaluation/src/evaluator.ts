/**
 * The evaluator core: scores a CausalLM on a task's examples, in batches, deterministically (a row's
 * result does not depend on its batch), reporting progress and keeping one record per example.
 *
 * exact_match is decided by ONE teacher-forced pass over `<bos> prompt answer <eos>`: the example is
 * right when the argmax at every answer position, the end token included, is the gold token. That is
 * greedy decoding's verdict by construction (greedy reproduces the answer exactly when every next-token
 * argmax along the gold path is the gold token) at the cost of one forward pass instead of one per
 * generated token. The examples it gets wrong are then greedy-decoded (KV cache), so each record holds
 * what the model really answers (unless `predictions: false`).
 */
import { generateGreedy, sequenceLogits, loglikelihood, type CausalLM, type TextTokenizer } from '@hm3/model';
import { InvalidArgumentError } from '@hm3/errors';
import { loadDatasetSplit, type DatasetLocation } from './dataset.js';
import { EmptyDatasetError, EvaluationCancelledError } from './errors.js';
import { chrf, topTwo } from './metrics.js';
import { toExamples, validateTaskSpec, type Example, type Metric, type TaskSpec } from './task-spec.js';

export const DEFAULT_EVAL_BATCH_SIZE = 64;
/** Tokens generated beyond the longest answer of the split (as the zoo's trainer does). */
export const GENERATION_SLACK = 4;

/** One scored example, kept for inspection. */
export interface ExampleRecord {
  /** 0-based position in the split. */
  readonly index: number;
  /** 1-based line of the dataset file, when read from one. */
  readonly line?: number;
  readonly prompt: string;
  readonly expected: string;
  /** What the model answers: its greedy continuation (up to the end token), or its chosen choice.
   *  Absent for a wrong exact_match example when predictions are off. */
  readonly predicted?: string;
  readonly correct: boolean;
  /** The example's metric value (1 / 0, or its chrF). */
  readonly score: number;
  /** exact_match: the smallest gap between the two largest logits at the answer positions up to the
   *  first wrong one (how close the verdict came to a tie). */
  readonly minTopGap?: number;
  /** loglikelihood_accuracy: log p(choice | prompt) per choice. */
  readonly choiceLogprobs?: readonly number[];
}

export interface EvaluationResult {
  readonly task: string;
  readonly split: string;
  readonly metric: Metric;
  /** Mean of the records' scores; higher is better. */
  readonly score: number;
  readonly count: number;
  readonly records: readonly ExampleRecord[];
  /** The dataset read (absent when the examples were given). */
  readonly dataset?: { readonly source: string; readonly sha256: string };
  readonly elapsedSeconds: number;
}

export interface EvaluationProgress {
  readonly done: number;
  readonly total: number;
}

export interface EvaluateTaskInput {
  readonly model: CausalLM;
  readonly tokenizer: TextTokenizer;
  readonly task: TaskSpec;
  /** The examples to score (prompts already rendered); default: the task's dataset split. */
  readonly examples?: readonly Example[];
  readonly batchSize?: number;
  readonly onProgress?: (p: EvaluationProgress) => void;
  readonly signal?: AbortSignal;
  /** Where the task's dataset reference may resolve (roots, artifact store). */
  readonly datasets?: DatasetLocation;
  /** The end-of-sequence token; default: the tokenizer's `<eos>`, `</s>`, `<|endoftext|>` or `<|im_end|>`. */
  readonly eosTokenId?: number;
  /** exact_match: greedy-decode the wrong examples so their records say what the model answers;
   *  default true. Off, the score is the same and an evaluation is one pass only. */
  readonly predictions?: boolean;
}

/** The examples of a task's split under its template, before `limit`, and where they came from. */
export async function loadTaskExamples(
  task: TaskSpec,
  location: DatasetLocation = {},
): Promise<{ examples: Example[]; source: string; sha256: string }> {
  const spec = validateTaskSpec(task);
  const loaded = await loadDatasetSplit(
    spec.dataset,
    {
      split: spec.split ?? 'full',
      ...(spec.searchFraction === undefined ? {} : { searchFraction: spec.searchFraction }),
      ...(spec.seed === undefined ? {} : { seed: spec.seed }),
    },
    location,
  );
  return {
    examples: toExamples(spec, loaded.rows, loaded.source),
    source: loaded.source,
    sha256: loaded.sha256,
  };
}

const EOS_NAMES = ['<eos>', '</s>', '<|endoftext|>', '<|im_end|>', '<|eot_id|>'];

/** The tokenizer's end-of-sequence token id, found by its usual names. */
export function findEosTokenId(tokenizer: TextTokenizer): number {
  for (const name of EOS_NAMES) {
    const id = tokenizer.tokenToId(name);
    if (id !== undefined) return id;
  }
  throw new InvalidArgumentError(
    `the tokenizer has no end token (looked for ${EOS_NAMES.join(', ')}); pass eosTokenId`,
  );
}

interface Tokenized {
  readonly context: number[];
  readonly answer: number[];
}

/** Scores a model on a task. */
export async function evaluateTask(input: EvaluateTaskInput): Promise<EvaluationResult> {
  const started = performance.now();
  const task = validateTaskSpec(input.task);
  const split = task.split ?? 'full';
  let all: readonly Example[];
  let dataset: EvaluationResult['dataset'];
  let source = `task ${task.name}`;
  if (input.examples) {
    all = input.examples;
  } else {
    const loaded = await loadTaskExamples(task, input.datasets);
    all = loaded.examples;
    dataset = { source: loaded.source, sha256: loaded.sha256 };
    source = loaded.source;
  }
  if (all.length === 0) throw new EmptyDatasetError(source);
  const examples = task.limit === undefined ? all : all.slice(0, task.limit);
  const batchSize = input.batchSize ?? DEFAULT_EVAL_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new InvalidArgumentError(`batchSize must be a positive integer, got ${batchSize}`, {
      field: 'batchSize',
    });
  }
  const { tokenizer } = input;
  const eos = input.eosTokenId ?? findEosTokenId(tokenizer);
  const tokenized: Tokenized[] = examples.map((ex) => ({
    context: tokenizer.encode(ex.prompt, { addSpecialTokens: true }),
    answer: tokenizer.encode(ex.answer, { addSpecialTokens: false }),
  }));
  const maxNewTokens =
    task.maxNewTokens ??
    Math.max(...all.map((ex) => tokenizer.encode(ex.answer, { addSpecialTokens: false }).length)) +
      GENERATION_SLACK;
  const decode = (ids: readonly number[]): string => {
    const end = ids.indexOf(eos);
    const kept = end < 0 ? ids : ids.slice(0, end);
    return kept.length === 0 ? '' : tokenizer.decode(kept, { skipSpecialTokens: false });
  };
  const ctx: RunContext = {
    lm: input.model,
    examples,
    tokenized,
    eos,
    maxNewTokens,
    batchSize,
    decode,
    encode: (text) => tokenizer.encode(text, { addSpecialTokens: false }),
    predictions: input.predictions ?? true,
    report: (done) => input.onProgress?.({ done, total: examples.length }),
    checkAborted: (done) => {
      if (input.signal?.aborted) throw new EvaluationCancelledError(task.name, done, examples.length);
    },
  };
  let records: ExampleRecord[];
  switch (task.metric) {
    case 'exact_match':
      records = await exactMatch(ctx);
      break;
    case 'chrf':
      records = await chrfRecords(ctx);
      break;
    case 'loglikelihood_accuracy':
      records = await multipleChoice(ctx);
      break;
  }
  const score = records.reduce((s, r) => s + r.score, 0) / records.length;
  return {
    task: task.name,
    split,
    metric: task.metric,
    score,
    count: records.length,
    records,
    ...(dataset === undefined ? {} : { dataset }),
    elapsedSeconds: (performance.now() - started) / 1000,
  };
}

interface RunContext {
  readonly lm: CausalLM;
  readonly examples: readonly Example[];
  readonly tokenized: readonly Tokenized[];
  readonly eos: number;
  readonly maxNewTokens: number;
  readonly batchSize: number;
  readonly decode: (ids: readonly number[]) => string;
  /** Tokens of a continuation (no special tokens). */
  readonly encode: (text: string) => number[];
  readonly predictions: boolean;
  readonly report: (done: number) => void;
  readonly checkAborted: (done: number) => void;
}

/** Indices sorted by a length (stable), cut into batches: rows of a batch pad little. */
function batchesByLength(lengths: readonly number[], batchSize: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize));
  return batches;
}

/** Greedy continuations of the given examples; prompts of one length share a batch (no padding). */
async function greedy(ctx: RunContext, indices: readonly number[]): Promise<Map<number, string>> {
  const byLength = new Map<number, number[]>();
  for (const i of indices) {
    const n = ctx.tokenized[i]!.context.length;
    byLength.set(n, [...(byLength.get(n) ?? []), i]);
  }
  const out = new Map<number, string>();
  for (const length of [...byLength.keys()].sort((a, b) => a - b)) {
    const group = byLength.get(length)!;
    const generated = await generateGreedy(
      ctx.lm,
      group.map((i) => ctx.tokenized[i]!.context),
      { maxNewTokens: ctx.maxNewTokens, eosTokenIds: [ctx.eos], batchSize: ctx.batchSize },
    );
    group.forEach((i, k) => out.set(i, ctx.decode(generated[k]!)));
  }
  return out;
}

async function exactMatch(ctx: RunContext): Promise<ExampleRecord[]> {
  const { lm, examples, tokenized } = ctx;
  const v = lm.vocabSize;
  const sequences = tokenized.map((t) => [...t.context, ...t.answer, ctx.eos]);
  const records: ExampleRecord[] = new Array(examples.length);
  let done = 0;
  for (const batch of batchesByLength(
    sequences.map((s) => s.length),
    ctx.batchSize,
  )) {
    ctx.checkAborted(done);
    const logits = await sequenceLogits(
      lm,
      batch.map((i) => sequences[i]!),
      batch.length,
    );
    const wrong: number[] = [];
    const verdicts = new Map<number, { correct: boolean; minTopGap: number }>();
    batch.forEach((i, row) => {
      const seq = sequences[i]!;
      const start = tokenized[i]!.context.length;
      let correct = true;
      let minTopGap = Infinity;
      // Position p - 1 predicts token p, for every answer token p (the end token included).
      for (let p = start; p < seq.length; p++) {
        const t = topTwo(logits[row]!, (p - 1) * v, v);
        minTopGap = Math.min(minTopGap, t.topLogit - t.secondLogit);
        if (t.top !== seq[p]) {
          correct = false;
          break;
        }
      }
      verdicts.set(i, { correct, minTopGap });
      if (!correct) wrong.push(i);
    });
    const answers =
      ctx.predictions && wrong.length > 0 ? await greedy(ctx, wrong) : new Map<number, string>();
    for (const i of batch) {
      const { correct, minTopGap } = verdicts.get(i)!;
      const ex = examples[i]!;
      const predicted = correct ? ex.answer : answers.get(i);
      records[i] = {
        index: i,
        ...(ex.line === undefined ? {} : { line: ex.line }),
        prompt: ex.prompt,
        expected: ex.answer,
        ...(predicted === undefined ? {} : { predicted }),
        correct,
        score: correct ? 1 : 0,
        minTopGap,
      };
    }
    done += batch.length;
    ctx.report(done);
  }
  return records;
}

async function chrfRecords(ctx: RunContext): Promise<ExampleRecord[]> {
  const { examples, tokenized } = ctx;
  const records: ExampleRecord[] = new Array(examples.length);
  let done = 0;
  for (const batch of batchesByLength(
    tokenized.map((t) => t.context.length),
    ctx.batchSize,
  )) {
    ctx.checkAborted(done);
    const answers = await greedy(ctx, batch);
    for (const i of batch) {
      const ex = examples[i]!;
      const predicted = answers.get(i)!;
      const score = chrf(predicted, ex.answer);
      records[i] = {
        index: i,
        ...(ex.line === undefined ? {} : { line: ex.line }),
        prompt: ex.prompt,
        expected: ex.answer,
        predicted,
        correct: predicted === ex.answer,
        score,
      };
    }
    done += batch.length;
    ctx.report(done);
  }
  return records;
}

async function multipleChoice(ctx: RunContext): Promise<ExampleRecord[]> {
  const { examples, tokenized, lm } = ctx;
  const records: ExampleRecord[] = new Array(examples.length);
  let done = 0;
  for (const batch of batchesByLength(
    tokenized.map((t) => t.context.length),
    ctx.batchSize,
  )) {
    ctx.checkAborted(done);
    const choicesOf = (i: number): readonly string[] => {
      const choices = examples[i]!.choices;
      if (!choices || choices.length === 0) {
        const line = examples[i]!.line;
        throw new InvalidArgumentError(`example ${i} has no choices (loglikelihood_accuracy needs them)`, {
          index: i,
          ...(line === undefined ? {} : { line }),
        });
      }
      return choices;
    };
    const requests = batch.flatMap((i) =>
      choicesOf(i).map((c) => ({ context: tokenized[i]!.context, continuation: ctx.encode(c) })),
    );
    const results = await loglikelihood(lm, requests, ctx.batchSize);
    let k = 0;
    for (const i of batch) {
      const ex = examples[i]!;
      const choices = choicesOf(i);
      const choiceLogprobs = results.slice(k, k + choices.length).map((r) => r.logprob);
      k += choices.length;
      let best = 0;
      choiceLogprobs.forEach((lp, j) => {
        if (lp > choiceLogprobs[best]!) best = j;
      });
      const predicted = choices[best]!;
      const correct = predicted === ex.answer;
      records[i] = {
        index: i,
        ...(ex.line === undefined ? {} : { line: ex.line }),
        prompt: ex.prompt,
        expected: ex.answer,
        predicted,
        correct,
        score: correct ? 1 : 0,
        choiceLogprobs,
      };
    }
    done += batch.length;
    ctx.report(done);
  }
  return records;
}
