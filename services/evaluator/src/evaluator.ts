/**
 * The core of EvaluatorService, free of transport: resolves the target (a model, or an inference path
 * over a pool of models), turns each objective into a task spec, scores it with @hm3/evaluation and
 * records the score (ScoresRepository, unique on candidate / objective / split) with its per-example
 * records in the artifact store. A (candidate, objective, split) already scored is answered from the
 * store, never evaluated twice.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '@hm3/errors';
import {
  BUILTIN_TASKS,
  evaluateTask,
  objectiveTaskSpec,
  type DatasetRef,
  type EvaluationResult,
  type ObjectiveSpec,
  type TaskDefinition,
} from '@hm3/evaluation';
import {
  checkWeightCacheBytes,
  loadTokenizer,
  ModelRuntime,
  ownPath,
  readModelConfig,
  type Affine,
  type CausalLM,
  type Device,
  type TextTokenizer,
} from '@hm3/model';
import type { ArtifactStore, ScoreRecord, Store } from '@hm3/store';
import { resolveModel, type ModelRefSpec, type ResolvedModel } from './model-refs.js';

export type EvalSplit = 'search' | 'heldout' | 'full';

export interface PathStepSpec {
  readonly poolIndex: number;
  readonly layerIndex: number;
  readonly affine?: Affine;
}

export type EvalTarget =
  | { readonly kind: 'model'; readonly model: ModelRefSpec }
  | {
      readonly kind: 'path';
      readonly pool: readonly ModelRefSpec[];
      readonly steps: readonly PathStepSpec[];
      readonly headSource?: number;
    };

export interface EvaluationRequest {
  /** The candidate scored; empty: nothing is recorded (an ad-hoc evaluation). */
  readonly candidateId: string;
  readonly searchId?: string;
  readonly target: EvalTarget;
  readonly objectives: readonly ObjectiveSpec[];
  readonly split: EvalSplit;
  readonly device?: Device;
}

export interface ObjectiveScore {
  readonly objective: string;
  readonly metric: string;
  readonly split: EvalSplit;
  readonly value: number;
  readonly exampleCount: number;
  /** True when the score was read from the store, not computed now. */
  readonly reused: boolean;
  /** The artifact holding the per-example records (records.jsonl). */
  readonly recordsArtifactId?: string;
}

export interface EvaluationOutcome {
  readonly candidateId: string;
  readonly scores: readonly ObjectiveScore[];
  readonly elapsedSeconds: number;
}

export interface ObjectiveProgress {
  readonly objective: string;
  readonly done: number;
  readonly total: number;
}

export interface EvaluateOptions {
  readonly onProgress?: (progress: ObjectiveProgress) => void;
  readonly signal?: AbortSignal;
}

export interface EvaluatorOptions {
  readonly store: Pick<Store, 'scores' | 'models'>;
  readonly artifacts: ArtifactStore;
  /** Folder every model path resolves inside. */
  readonly modelsRoot: string;
  /** Folders dataset paths resolve inside (artifact:// datasets are always readable). */
  readonly datasetRoots: readonly string[];
  readonly defaultDevice?: Device;
  /** Operator threads of the model runtime (default: onnxruntime's). */
  readonly intraOpThreads?: number;
  readonly batchSize?: number;
  readonly tasks?: readonly TaskDefinition[];
  /**
   * Bytes of converted model weights each device's runtime keeps between evaluations, least recently
   * used evicted first (ModelRuntime's `weightCacheBytes`); default a quarter of the process's memory.
   */
  readonly weightCacheBytes?: number;
  /**
   * Flush denormal floats to zero in the model runtimes (ModelRuntime's `flushDenormals`; default
   * false): faster batch scoring, as the runtime bench measures it, but from the first session on,
   * float32 subnormals read as 0 in all JavaScript of the main thread. For a process that only scores
   * (`hm3 serve evaluator` turns it on), not one that also merges checkpoints.
   */
  readonly flushDenormals?: boolean;
  /** Keep per-example records in the artifact store (default true). */
  readonly keepRecords?: boolean;
  /** Called once per objective scored (computed or read from the store), with its seconds. */
  readonly onScored?: (score: ObjectiveScore, seconds: number) => void;
  /** Problems that do not fail an evaluation (records that could not be written). */
  readonly onWarning?: (message: string, details: Record<string, unknown>) => void;
}

/** The artifact id of the per-example records of one evaluation. */
export function recordsArtifactId(
  candidateId: string,
  objective: string,
  split: string,
  datasetSha256: string,
  metric: string,
): string {
  const h = createHash('sha256')
    .update([candidateId, objective, split, datasetSha256, metric].join('\n'))
    .digest('hex');
  return `eval-records-${h}`;
}

/** One runtime per device for the evaluator's life; its weight cache is bounded by `weightCacheBytes`. */
class RuntimePool {
  private readonly runtimes = new Map<Device, ModelRuntime>();
  constructor(
    private readonly options: Pick<
      EvaluatorOptions,
      'intraOpThreads' | 'weightCacheBytes' | 'flushDenormals'
    >,
  ) {}

  get(device: Device): ModelRuntime {
    let runtime = this.runtimes.get(device);
    if (!runtime) {
      const { intraOpThreads, weightCacheBytes, flushDenormals } = this.options;
      runtime = new ModelRuntime({
        device,
        ...(intraOpThreads === undefined ? {} : { intraOpThreads }),
        ...(weightCacheBytes === undefined ? {} : { weightCacheBytes }),
        flushDenormals: flushDenormals === true,
      });
      this.runtimes.set(device, runtime);
    }
    return runtime;
  }

  async close(): Promise<void> {
    const all = [...this.runtimes.values()];
    this.runtimes.clear();
    await Promise.all(all.map((r) => r.close()));
  }
}

export class Evaluator {
  readonly tasks: readonly TaskDefinition[];
  private readonly pool: RuntimePool;

  constructor(private readonly options: EvaluatorOptions) {
    if (options.weightCacheBytes !== undefined)
      checkWeightCacheBytes(options.weightCacheBytes, 'weightCacheBytes');
    this.tasks = options.tasks ?? BUILTIN_TASKS;
    this.pool = new RuntimePool(options);
  }

  listTasks(): readonly TaskDefinition[] {
    return [...this.tasks].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Scores the target on every objective (from the store where already scored), in request order. */
  async evaluate(request: EvaluationRequest, options: EvaluateOptions = {}): Promise<EvaluationOutcome> {
    const started = performance.now();
    if (request.objectives.length === 0) {
      throw new InvalidArgumentError('objectives: at least one objective is required', {
        field: 'objectives',
      });
    }
    const names = new Set<string>();
    request.objectives.forEach((o, i) => {
      if (names.has(o.name)) {
        throw new InvalidArgumentError(`objectives[${i}].name: "${o.name}" appears twice`, {
          field: `objectives[${i}].name`,
        });
      }
      names.add(o.name);
    });
    // Every objective is checked before any model is touched.
    const specs = request.objectives.map((o) => objectiveTaskSpec(o, request.split, this.tasks));
    const cacheable = request.candidateId !== '' && request.split !== 'full';
    const scores = new Array<ObjectiveScore | undefined>(request.objectives.length);
    if (cacheable) {
      await Promise.all(
        request.objectives.map(async (o, i) => {
          const stored = await this.options.store.scores.get(
            request.candidateId,
            o.name,
            request.split as 'search',
          );
          if (stored) {
            scores[i] = storedScore(stored, specs[i]!.metric, request.split);
            this.options.onScored?.(scores[i]!, 0);
          }
        }),
      );
    }
    const missing = specs.map((_, i) => i).filter((i) => scores[i] === undefined);
    if (missing.length > 0) {
      const opened = await this.open(request.target, request.device ?? this.options.defaultDevice ?? 'cpu');
      try {
        for (const i of missing) {
          const spec = specs[i]!;
          const result = await evaluateTask({
            model: opened.model,
            tokenizer: opened.tokenizer,
            task: spec,
            datasets: { roots: this.datasetRoots(spec.dataset), artifacts: this.options.artifacts },
            ...(this.options.batchSize === undefined ? {} : { batchSize: this.options.batchSize }),
            ...(options.signal === undefined ? {} : { signal: options.signal }),
            onProgress: (p) => options.onProgress?.({ objective: spec.name, ...p }),
          });
          scores[i] = await this.record(request, result);
          this.options.onScored?.(scores[i]!, result.elapsedSeconds);
        }
      } finally {
        await opened.close();
      }
    }
    return {
      candidateId: request.candidateId,
      scores: scores as ObjectiveScore[],
      elapsedSeconds: (performance.now() - started) / 1000,
    };
  }

  /** The model runtime of `device`, created on first use (no session until a model runs). */
  runtime(device: Device): ModelRuntime {
    return this.pool.get(device);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /** Dataset paths resolve inside the configured roots; a task's built-in default dataset is its own root. */
  private datasetRoots(dataset: DatasetRef): readonly string[] {
    const builtin = this.tasks.some((t) => t.defaultDataset?.uri === dataset.uri);
    return builtin ? [...this.options.datasetRoots, dataset.uri] : this.options.datasetRoots;
  }

  private async open(
    target: EvalTarget,
    device: Device,
  ): Promise<{ model: CausalLM; tokenizer: TextTokenizer; close: () => Promise<void> }> {
    const resolver = {
      modelsRoot: this.options.modelsRoot,
      artifacts: this.options.artifacts,
      models: this.options.store.models,
    };
    const held: ResolvedModel[] = [];
    const runtime = this.pool.get(device);
    try {
      if (target.kind === 'model') {
        const resolved = await resolveModel(target.model, resolver, 'model');
        held.push(resolved);
        const arch = await readModelConfig(resolved.dir);
        const tokenizer = await loadTokenizer(resolved.dir);
        const model = await runtime.path(ownPath(resolved.dir, arch.numLayers));
        return { model, tokenizer, close: closer(held) };
      }
      if (target.pool.length === 0) {
        throw new InvalidArgumentError('path.pool: at least one model is required', { field: 'path.pool' });
      }
      for (const [i, ref] of target.pool.entries())
        held.push(await resolveModel(ref, resolver, `path.pool[${i}]`));
      const head = target.headSource ?? target.pool.length - 1;
      const headDir = held[head]?.dir;
      if (headDir === undefined) {
        throw new InvalidArgumentError(`path.head_source: ${head} is not an index of the pool`, {
          field: 'path.head_source',
        });
      }
      const tokenizer = await loadTokenizer(headDir);
      const model = await runtime.path({
        pool: held.map((h) => h.dir),
        steps: target.steps,
        headSource: head,
      });
      return { model, tokenizer, close: closer(held) };
    } catch (error) {
      await closer(held)();
      throw error;
    }
  }

  /** Writes the per-example records and the score (first writer wins: a stored score is kept). */
  private async record(request: EvaluationRequest, result: EvaluationResult): Promise<ObjectiveScore> {
    const base = {
      objective: result.task,
      metric: result.metric,
      split: request.split,
      value: result.score,
      exampleCount: result.count,
      reused: false,
    };
    if (request.candidateId === '') return base;
    const sha = result.dataset?.sha256 ?? '';
    const id = this.options.keepRecords === false ? undefined : await this.writeRecords(request, result, sha);
    if (request.split !== 'full') {
      const record: ScoreRecord = {
        candidateId: request.candidateId,
        objective: result.task,
        split: request.split,
        searchId: request.searchId ?? '',
        value: result.score,
        details: {
          metric: result.metric,
          exampleCount: result.count,
          datasetSha256: sha,
          ...(id === undefined ? {} : { recordsArtifactId: id }),
          elapsedSeconds: result.elapsedSeconds,
          evaluator: 'hm3-evaluator',
        },
        createdAt: new Date(),
      };
      const existing = await this.options.store.scores.get(request.candidateId, result.task, request.split);
      if (existing) return storedScore(existing, result.metric, request.split);
      await this.options.store.scores.upsert(record);
    }
    return { ...base, ...(id === undefined ? {} : { recordsArtifactId: id }) };
  }

  /** The per-example records as an artifact (records.jsonl, summary.json); undefined when it cannot be written. */
  private async writeRecords(
    request: EvaluationRequest,
    result: EvaluationResult,
    sha: string,
  ): Promise<string | undefined> {
    const id = recordsArtifactId(request.candidateId, result.task, request.split, sha, result.metric);
    try {
      await this.writeRecordsArtifact(id, request, result);
      return id;
    } catch (error) {
      this.options.onWarning?.('per-example records not kept: the artifact store refused them', {
        candidateId: request.candidateId,
        objective: result.task,
        error: error instanceof Error ? error.message : String(error),
      });
      return undefined;
    }
  }

  private async writeRecordsArtifact(
    id: string,
    request: EvaluationRequest,
    result: EvaluationResult,
  ): Promise<void> {
    await this.options.artifacts.write(id, async (dir) => {
      await writeFile(
        path.join(dir, 'records.jsonl'),
        result.records.map((r) => JSON.stringify(r)).join('\n') + '\n',
      );
      await writeFile(
        path.join(dir, 'summary.json'),
        JSON.stringify({
          candidateId: request.candidateId,
          objective: result.task,
          split: request.split,
          metric: result.metric,
          score: result.score,
          count: result.count,
          dataset: result.dataset,
          elapsedSeconds: result.elapsedSeconds,
        }),
      );
    });
  }
}

/** Releases the models' leases (their weights stay in the runtime's cache, within its budget). */
function closer(held: readonly ResolvedModel[]): () => Promise<void> {
  return () => {
    for (const h of held) h.release();
    return Promise.resolve();
  };
}

function storedScore(stored: ScoreRecord, metric: string, split: EvalSplit): ObjectiveScore {
  const details = stored.details ?? {};
  const count = details['exampleCount'];
  const records = details['recordsArtifactId'];
  const storedMetric = details['metric'];
  return {
    objective: stored.objective,
    metric: typeof storedMetric === 'string' ? storedMetric : metric,
    split,
    value: stored.value,
    exampleCount: typeof count === 'number' ? count : 0,
    reused: true,
    ...(typeof records === 'string' ? { recordsArtifactId: records } : {}),
  };
}
