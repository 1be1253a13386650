/**
 * The evaluate port of the embedded search: runs a candidate's inference path on the model runtime
 * and scores each objective with @hm3/evaluation's evaluateTask (exact_match by one teacher-forced
 * pass; no greedy re-decoding of wrong answers during a search). `zoo:<task>` datasets are the zoo's
 * own search / held-out files; any other JSONL file is split by search_fraction and split_seed.
 */
import path from 'node:path';
import { InvalidArgumentError, Hm3Error } from '@hm3/errors';
import { evaluateTask, loadTaskExamples, zooTaskSpec, type Example, type TaskSpec } from '@hm3/evaluation';
import { ModelRuntime, type TextTokenizer } from '@hm3/model';
import type { EvaluatePort, EvaluationRequest, EvaluationResult, Objective, Split } from '@hm3/search';
import { zooTaskOf } from './locations.js';

/** Metrics an objective may use here (the datasets are {prompt, answer} lines). */
export const SEARCH_METRICS = ['exact_match', 'chrf'] as const;
type SearchMetric = (typeof SEARCH_METRICS)[number];

function metricOf(objective: Objective, index: number): SearchMetric {
  const name = objective.metric !== '' ? objective.metric : objective.task;
  if (!(SEARCH_METRICS as readonly string[]).includes(name)) {
    const field = objective.metric !== '' ? `objectives[${index}].metric` : `objectives[${index}].task`;
    throw new InvalidArgumentError(
      `${field}: "${name}" is not a metric the embedded evaluator scores (${SEARCH_METRICS.join(', ')})`,
      {
        field,
      },
    );
  }
  return name as SearchMetric;
}

/** The evaluation task of an objective on a split. */
export function taskSpecOf(objective: Objective, index: number, split: Split, specDir: string): TaskSpec {
  const field = `objectives[${index}].dataset`;
  const metric = metricOf(objective, index);
  // max_examples caps search-split evaluations; the final front is re-scored on the whole held-out split.
  const limit = objective.maxExamples > 0 && split === 'search' ? { limit: objective.maxExamples } : {};
  const zoo = zooTaskOf(objective.dataset.uri);
  if (zoo) return { ...zooTaskSpec(zoo, split), name: objective.name, metric, ...limit };
  if (objective.dataset.uri.startsWith('zoo:'))
    throw new InvalidArgumentError(
      `${field}: "${objective.dataset.uri}" names no zoo task (translate, math, code)`,
      { field },
    );
  return {
    name: objective.name,
    dataset: {
      uri: path.resolve(specDir, objective.dataset.uri),
      ...(objective.dataset.sha256 !== '' ? { sha256: objective.dataset.sha256 } : {}),
    },
    split,
    promptTemplate: '{prompt}',
    metric,
    seed: objective.splitSeed,
    searchFraction: objective.searchFraction,
    ...limit,
  };
}

async function loadExamples(
  objective: Objective,
  index: number,
  split: Split,
  specDir: string,
): Promise<Example[]> {
  const task = taskSpecOf(objective, index, split, specDir);
  try {
    const { examples } = await loadTaskExamples(task);
    return task.limit === undefined ? examples : examples.slice(0, task.limit);
  } catch (error) {
    const field = `objectives[${index}].dataset`;
    if (error instanceof Hm3Error)
      throw new Hm3Error(`${field}: ${error.message}`, {
        status: error.status,
        details: { ...error.details, field },
        cause: error,
      });
    throw error;
  }
}

/** Checks every objective's metric and dataset before a search starts (nothing runs on bad input). */
export async function checkObjectives(objectives: readonly Objective[], specDir: string): Promise<void> {
  for (const [i, o] of objectives.entries()) {
    for (const split of ['search', 'heldout'] as const) {
      const examples = await loadExamples(o, i, split, specDir);
      if (examples.length === 0)
        throw new InvalidArgumentError(`objectives[${i}].dataset: the ${split} split is empty`, {
          field: `objectives[${i}].dataset`,
        });
    }
  }
}

export interface LocalEvaluatorOptions {
  readonly specDir: string;
  readonly tokenizer: TextTokenizer;
  readonly eosTokenId?: number;
  readonly batchSize?: number;
  /** Threads per onnxruntime operator (default 1: these sizes run best on one thread). */
  readonly threads?: number;
  /** Bytes of converted weights the runtime keeps (LRU); default: @hm3/model's (a quarter of the memory limit). */
  readonly weightCacheBytes?: number;
}

export class LocalEvaluator implements EvaluatePort {
  /** One runtime for the search: its weight cache is bounded by bytes, so it is never renewed. */
  readonly runtime: ModelRuntime;
  private readonly examples = new Map<string, Promise<Example[]>>();
  evaluations = 0;

  constructor(private readonly options: LocalEvaluatorOptions) {
    this.runtime = new ModelRuntime({
      intraOpThreads: options.threads ?? 1,
      ...(options.weightCacheBytes !== undefined ? { weightCacheBytes: options.weightCacheBytes } : {}),
    });
  }

  private examplesOf(objective: Objective, index: number, split: Split): Promise<Example[]> {
    const key = `${index}:${split}`;
    let entry = this.examples.get(key);
    if (!entry) {
      entry = loadExamples(objective, index, split, this.options.specDir);
      entry.catch(() => this.examples.delete(key));
      this.examples.set(key, entry);
    }
    return entry;
  }

  async evaluate(request: EvaluationRequest): Promise<EvaluationResult> {
    const lm = await this.runtime.path({
      pool: request.path.pool,
      steps: request.path.steps,
      headSource: request.path.headSource,
    });
    const scores: number[] = [];
    const examples: number[] = [];
    const perExample: number[][] = [];
    for (const [k, objective] of request.objectives.entries()) {
      const result = await evaluateTask({
        model: lm,
        tokenizer: this.options.tokenizer,
        task: taskSpecOf(objective, k, request.split, this.options.specDir),
        examples: await this.examplesOf(objective, k, request.split),
        batchSize: this.options.batchSize ?? 64,
        ...(request.signal ? { signal: request.signal } : {}),
        ...(this.options.eosTokenId !== undefined ? { eosTokenId: this.options.eosTokenId } : {}),
        predictions: false,
      });
      scores.push(result.score);
      examples.push(result.count);
      perExample.push(result.records.map((r) => r.score));
    }
    this.evaluations++;
    return { scores, examples, perExample };
  }

  async close(): Promise<void> {
    await this.runtime.close();
  }
}
