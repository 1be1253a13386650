/**
 * Batched scoring and generation over any CausalLM: teacher-forced logits, loglikelihood of given
 * continuations, greedy generation with the KV cache. Rows are padded (right for scoring, left for
 * generation) and the padding is masked out of attention, so a row's result does not depend on its batch.
 */
import type { CausalLM, ForwardBatch } from './causal-lm.js';
import { InvalidModelInputError } from './errors.js';

/** Added to the attention scores of keys a query may not see (finite: a fully masked row stays finite). */
export const MASKED = -1e30;
export const DEFAULT_BATCH_SIZE = 32;

/** The attention bias [B, 1, S, T] for `seq` new tokens after `past` cached ones, given which keys are real. */
export function attentionBias(keyValid: Uint8Array, batch: number, seq: number, past: number): Float32Array {
  const total = past + seq;
  const bias = new Float32Array(batch * seq * total);
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < seq; s++) {
      const row = (b * seq + s) * total;
      for (let t = 0; t < total; t++)
        bias[row + t] = t <= past + s && keyValid[b * total + t] === 1 ? 0 : MASKED;
    }
  }
  return bias;
}

function checkTokens(lm: CausalLM, sequences: readonly (readonly number[])[], what: string): void {
  if (sequences.length === 0) throw new InvalidModelInputError(`no ${what} to run`);
  sequences.forEach((seq, i) => {
    if (seq.length === 0) throw new InvalidModelInputError(`${what} ${i} is empty`, { index: i });
    const bad = seq.find((t) => !Number.isInteger(t) || t < 0 || t >= lm.vocabSize);
    if (bad !== undefined)
      throw new InvalidModelInputError(
        `${what} ${i} holds token ${bad}, outside the vocabulary [0, ${lm.vocabSize})`,
        { index: i, token: bad },
      );
  });
}

function checkLength(lm: CausalLM, length: number): void {
  if (lm.maxSequence !== undefined && length > lm.maxSequence) {
    throw new InvalidModelInputError(
      `a sequence of ${length} tokens exceeds the sliding window of ${lm.maxSequence}`,
      { length, window: lm.maxSequence },
    );
  }
}

/** Teacher-forced logits of each sequence: [length, V] per sequence, in `batchSize` batches. */
export async function sequenceLogits(
  lm: CausalLM,
  sequences: readonly (readonly number[])[],
  batchSize = DEFAULT_BATCH_SIZE,
): Promise<Float32Array[]> {
  checkTokens(lm, sequences, 'sequence');
  const v = lm.vocabSize;
  const results: Float32Array[] = [];
  for (let start = 0; start < sequences.length; start += batchSize) {
    const rows = sequences.slice(start, start + batchSize);
    const batch = rows.length;
    const seq = Math.max(...rows.map((r) => r.length));
    checkLength(lm, seq);
    const inputIds = new BigInt64Array(batch * seq);
    const positionIds = new BigInt64Array(batch * seq);
    const keyValid = new Uint8Array(batch * seq);
    rows.forEach((r, b) => {
      for (let s = 0; s < seq; s++) {
        inputIds[b * seq + s] = BigInt(s < r.length ? r[s]! : 0);
        positionIds[b * seq + s] = BigInt(s);
        keyValid[b * seq + s] = s < r.length ? 1 : 0;
      }
    });
    const input: ForwardBatch = {
      batch,
      seq,
      past: 0,
      inputIds,
      positionIds,
      attentionBias: attentionBias(keyValid, batch, seq, 0),
      keepCache: false,
    };
    const { logits } = await lm.forward(input, lm.emptyCache(batch));
    rows.forEach((r, b) => results.push(logits.slice(b * seq * v, (b * seq + r.length) * v)));
  }
  return results;
}

export interface LoglikelihoodRequest {
  /** Tokens conditioned on (at least one). */
  readonly context: readonly number[];
  /** Tokens scored. */
  readonly continuation: readonly number[];
}

export interface LoglikelihoodResult {
  /** Sum of log p(continuation token | everything before it). */
  readonly logprob: number;
  /** Whether every continuation token is the argmax of its distribution. */
  readonly greedy: boolean;
}

/** log p(continuation | context) per request (teacher-forced, batched). */
export async function loglikelihood(
  lm: CausalLM,
  requests: readonly LoglikelihoodRequest[],
  batchSize = DEFAULT_BATCH_SIZE,
): Promise<LoglikelihoodResult[]> {
  requests.forEach((r, i) => {
    if (r.context.length === 0)
      throw new InvalidModelInputError(`request ${i} has an empty context`, { index: i });
    if (r.continuation.length === 0)
      throw new InvalidModelInputError(`request ${i} has an empty continuation`, { index: i });
  });
  const logits = await sequenceLogits(
    lm,
    requests.map((r) => [...r.context, ...r.continuation]),
    batchSize,
  );
  const v = lm.vocabSize;
  return requests.map((r, i) => {
    const rowLogits = logits[i]!;
    let logprob = 0;
    let greedy = true;
    r.continuation.forEach((token, j) => {
      const offset = (r.context.length - 1 + j) * v;
      let max = -Infinity;
      let argmax = 0;
      for (let k = 0; k < v; k++) {
        const x = rowLogits[offset + k]!;
        if (x > max) {
          max = x;
          argmax = k;
        }
      }
      let sum = 0;
      for (let k = 0; k < v; k++) sum += Math.exp(rowLogits[offset + k]! - max);
      logprob += rowLogits[offset + token]! - max - Math.log(sum);
      if (argmax !== token) greedy = false;
    });
    return { logprob, greedy };
  });
}

export interface GenerateOptions {
  readonly maxNewTokens: number;
  /** Generation of a row stops after it emits one of these (included in the output). */
  readonly eosTokenIds?: readonly number[];
  readonly batchSize?: number;
}

/** Greedy decoding with the KV cache: the new tokens of each prompt (prompts left-padded per batch). */
export async function generateGreedy(
  lm: CausalLM,
  prompts: readonly (readonly number[])[],
  options: GenerateOptions,
): Promise<number[][]> {
  checkTokens(lm, prompts, 'prompt');
  if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 0)
    throw new InvalidModelInputError(
      `maxNewTokens must be a non-negative integer, got ${options.maxNewTokens}`,
    );
  const eos = new Set(options.eosTokenIds ?? []);
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const results: number[][] = [];
  for (let start = 0; start < prompts.length; start += batchSize) {
    results.push(
      ...(await generateBatch(lm, prompts.slice(start, start + batchSize), options.maxNewTokens, eos)),
    );
  }
  return results;
}

async function generateBatch(
  lm: CausalLM,
  rows: readonly (readonly number[])[],
  maxNew: number,
  eos: ReadonlySet<number>,
): Promise<number[][]> {
  const batch = rows.length;
  const promptLength = Math.max(...rows.map((r) => r.length));
  checkLength(lm, promptLength + Math.max(0, maxNew - 1));
  const out: number[][] = rows.map(() => []);
  if (maxNew === 0) return out;
  const v = lm.vocabSize;
  // Keys seen so far, per row: left padding is invalid, every generated token is valid.
  const valid: number[][] = rows.map((r) => [
    ...new Array<number>(promptLength - r.length).fill(0),
    ...new Array<number>(r.length).fill(1),
  ]);
  const nextPosition = rows.map((r) => r.length);
  let cache = lm.emptyCache(batch);
  let past = 0;
  let seq = promptLength;
  let inputIds = new BigInt64Array(batch * seq);
  let positionIds = new BigInt64Array(batch * seq);
  rows.forEach((r, b) => {
    const pad = promptLength - r.length;
    for (let s = 0; s < seq; s++) {
      inputIds[b * seq + s] = BigInt(s < pad ? 0 : r[s - pad]!);
      positionIds[b * seq + s] = BigInt(s < pad ? 1 : s - pad);
    }
  });
  const done = new Array<boolean>(batch).fill(false);
  for (let produced = 0; produced < maxNew; produced++) {
    const keyValid = Uint8Array.from(valid.flat());
    const result = await lm.forward(
      { batch, seq, past, inputIds, positionIds, attentionBias: attentionBias(keyValid, batch, seq, past) },
      cache,
    );
    cache = result.cache;
    const next = new BigInt64Array(batch);
    for (let b = 0; b < batch; b++) {
      const offset = (b * seq + seq - 1) * v;
      let best = 0;
      for (let k = 1; k < v; k++) if (result.logits[offset + k]! > result.logits[offset + best]!) best = k;
      if (!done[b]) {
        out[b]!.push(best);
        if (eos.has(best)) done[b] = true;
      }
      next[b] = BigInt(best);
      valid[b]!.push(1);
    }
    if (done.every(Boolean)) break;
    past += seq;
    seq = 1;
    inputIds = next;
    positionIds = BigInt64Array.from(nextPosition, (p) => BigInt(p));
    for (let b = 0; b < batch; b++) nextPosition[b] = nextPosition[b]! + 1;
  }
  return out;
}
