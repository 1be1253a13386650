/**
 * The core of TensorMergeService, free of transport: registers source models (manifest with sha256s
 * in the `models` repository), validates recipes (planMerge: headers only), materialises merges into
 * the ArtifactStore under their content id, and lists the methods. A merge whose artifact exists
 * returns at once; identical merges requested concurrently run once (the later callers join it).
 */
import path from 'node:path';
import { FailedPreconditionError, Hm3Error, InvalidArgumentError, NotFoundError } from '@hm3/errors';
import {
  defaultThreads,
  executeMerge,
  listMethods,
  modelKey,
  planMerge,
  type MergeMethod,
  type MergePlan,
  type MergeProgress,
  type ModelRef,
  type Recipe,
} from '@hm3/merge';
import {
  isDuplicateKeyError,
  type ArtifactLease,
  type ArtifactStore,
  type ModelRecord,
  type Store,
} from '@hm3/store';
import { mergeContentId } from './content-id.js';
import { assertCudaAvailable, type CudaProviderStatus, type Device } from './device.js';
import { manifestDigest, readModelManifest, type ModelManifest } from './model-manifest.js';
import { ARTIFACT_SCHEME, artifactIdOf, resolveModelFolder } from './models-root.js';

export interface TensorMergeOptions {
  readonly store: Store;
  readonly artifacts: ArtifactStore;
  /** Folder every model path resolves inside. */
  readonly modelsRoot: string;
  /** Worker threads of the CPU kernels (default: the machine's cores, at most 8: defaultThreads). */
  readonly threads?: number;
  /** Bound on the merge's tensor buffers, in bytes (default: unbounded). */
  readonly maxMemory?: number;
  /** Output shard size (default: the executor's, 5 GB). */
  readonly shardBytes?: number;
  readonly defaultDevice?: Device;
  /** Where the CUDA provider libraries were looked for (tests). Default: beside onnxruntime-node's binding. */
  readonly cudaStatus?: () => CudaProviderStatus;
}

export interface RegisterResult {
  readonly manifest: ModelManifest;
  readonly alreadyRegistered: boolean;
}

export interface ValidateResult {
  readonly plan: MergePlan;
  readonly artifactId: string;
}

export interface MergeRunOptions {
  readonly device?: Device;
  readonly threads?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: MergeProgress) => void;
  /** Called once the plan is made, before any weight is read. */
  readonly onPlanned?: (planned: { readonly artifactId: string; readonly outputBytes: number }) => void;
}

export interface MergeOutcome {
  readonly artifactId: string;
  readonly uri: string;
  readonly path: string;
  readonly manifest: ModelManifest;
  /** True when nothing was computed for this call (the artifact existed, or another call made it). */
  readonly reused: boolean;
  readonly elapsedSeconds: number;
  /** Bytes of the checkpoint's tensors. */
  readonly outputBytes: number;
}

interface Source {
  readonly dir: string;
  readonly digest: string;
  readonly lease: ArtifactLease | null;
}

interface Flight {
  readonly listeners: Set<(p: MergeProgress) => void>;
  readonly done: Promise<{ path: string; created: boolean }>;
}

export class TensorMerge {
  private readonly flights = new Map<string, Flight>();

  constructor(private readonly options: TensorMergeOptions) {}

  /** Registers the model folder `uri` (inside the models root) under `modelId` (empty: its digest). */
  async registerModel(uri: string, modelId = ''): Promise<RegisterResult> {
    const dir = await resolveModelFolder(this.options.modelsRoot, uri, 'uri');
    const manifest = await readModelManifest(dir, uri, modelId);
    const models = this.options.store.models;
    const existing = await models.get(manifest.modelId);
    if (existing !== undefined) return this.compareRegistered(existing, manifest);
    try {
      await models.insert(toRecord(manifest));
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      const raced = await models.get(manifest.modelId);
      if (raced === undefined) throw error;
      return this.compareRegistered(raced, manifest);
    }
    return { manifest, alreadyRegistered: false };
  }

  private compareRegistered(existing: ModelRecord, manifest: ModelManifest): RegisterResult {
    if (manifestDigest(existing.files) !== manifestDigest(manifest.files)) {
      throw new FailedPreconditionError(
        `model id "${manifest.modelId}" is already registered with other content (${existing.uri})`,
        { field: 'model_id', modelId: manifest.modelId },
      );
    }
    return { manifest: { ...manifest, uri: existing.uri }, alreadyRegistered: true };
  }

  /** Plans the recipe (configs and headers only) and computes its content id; throws for an invalid one. */
  async validate(recipe: Recipe): Promise<ValidateResult> {
    const sources = await this.resolveSources(recipe);
    try {
      return await this.plan(recipe, sources);
    } finally {
      release(sources);
    }
  }

  /** Runs the merge into the artifact store; the existing artifact of the same content returns at once. */
  async merge(recipe: Recipe, options: MergeRunOptions = {}): Promise<MergeOutcome> {
    const started = performance.now();
    const device = options.device ?? this.options.defaultDevice ?? 'cpu';
    if (device === 'cuda') {
      assertCudaAvailable(this.options.cudaStatus?.());
      throw new FailedPreconditionError(
        'device cuda: the CUDA provider libraries are present, but this build has no CUDA merge kernels yet; use device cpu',
        { field: 'device' },
      );
    }
    const sources = await this.resolveSources(recipe);
    try {
      const { plan, artifactId } = await this.plan(recipe, sources);
      options.onPlanned?.({ artifactId, outputBytes: plan.outputBytes });
      const { artifacts } = this.options;
      let reused = true;
      let target: string;
      if (await artifacts.has(artifactId)) {
        target = (await this.leasePath(artifactId)).path;
      } else {
        let flight = this.flights.get(artifactId);
        if (flight === undefined) {
          reused = false;
          flight = this.startFlight(artifactId, plan, options);
        }
        const listener = options.onProgress;
        if (listener !== undefined) flight.listeners.add(listener);
        try {
          const written = await flight.done;
          target = written.path;
          reused = reused || !written.created;
        } finally {
          if (listener !== undefined) flight.listeners.delete(listener);
        }
      }
      const manifest = await readModelManifest(target, `${ARTIFACT_SCHEME}${artifactId}`, artifactId);
      return {
        artifactId,
        uri: `${ARTIFACT_SCHEME}${artifactId}`,
        path: target,
        manifest,
        reused,
        elapsedSeconds: (performance.now() - started) / 1000,
        outputBytes: plan.outputBytes,
      };
    } finally {
      release(sources);
    }
  }

  /** The registered merge methods, sorted by name. */
  listMethods(): readonly MergeMethod[] {
    return [...listMethods()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private async leasePath(id: string): Promise<{ path: string }> {
    const lease = await this.options.artifacts.open(id);
    lease.release();
    return { path: lease.path };
  }

  private startFlight(artifactId: string, plan: MergePlan, options: MergeRunOptions): Flight {
    const listeners = new Set<(p: MergeProgress) => void>();
    const threads = options.threads ?? this.options.threads ?? defaultThreads();
    const done = this.options.artifacts
      .write(artifactId, async (tempDir) => {
        await executeMerge(plan, tempDir, {
          threads,
          ...(this.options.shardBytes === undefined ? {} : { shardBytes: this.options.shardBytes }),
          ...(options.signal === undefined ? {} : { signal: options.signal }),
          tempRoot: path.dirname(tempDir),
          onProgress: (p) => {
            for (const l of listeners) l(p);
          },
        });
      })
      .finally(() => this.flights.delete(artifactId));
    const flight: Flight = { listeners, done };
    this.flights.set(artifactId, flight);
    return flight;
  }

  private async plan(recipe: Recipe, sources: ReadonlyMap<string, Source>): Promise<ValidateResult> {
    const plan = await planMerge(recipe, {
      source: 'recipe',
      resolveModel: (ref) => sources.get(modelKey(ref))!.dir,
      ...(this.options.maxMemory === undefined ? {} : { maxMemory: this.options.maxMemory }),
    });
    const artifactId = mergeContentId(recipe, (ref) => sources.get(modelKey(ref))!.digest);
    return { plan, artifactId };
  }

  /** Every model of the recipe: its folder (inside the root, or an artifact) and its content digest. */
  private async resolveSources(recipe: Recipe): Promise<Map<string, Source>> {
    const refs: { ref: ModelRef; field: string }[] = [];
    if (recipe.base !== null) refs.push({ ref: recipe.base, field: 'base' });
    recipe.models.forEach((m, i) => refs.push({ ref: m.ref, field: `models[${i}].model` }));
    const sources = new Map<string, Source>();
    try {
      for (const { ref, field } of refs) {
        const key = modelKey(ref);
        if (!sources.has(key)) sources.set(key, await this.resolveSource(ref, field));
      }
    } catch (error) {
      release(sources);
      throw error;
    }
    return sources;
  }

  private async resolveSource(ref: ModelRef, field: string): Promise<Source> {
    const artifactId = artifactIdOf(ref.uri) ?? (ref.modelId !== '' ? artifactIdOf(ref.modelId) : null);
    if (artifactId !== null) return this.artifactSource(artifactId, field);
    const { modelsRoot, store, artifacts } = this.options;
    if (ref.modelId !== '') {
      const record = await store.models.get(ref.modelId);
      if (record !== undefined) {
        const dir = await resolveModelFolder(modelsRoot, record.uri, field);
        return { dir, digest: manifestDigest(record.files), lease: null };
      }
      // A model id that is not registered may be a merged checkpoint's artifact id.
      if (isArtifactId(ref.modelId) && (await artifacts.has(ref.modelId)))
        return this.artifactSource(ref.modelId, field);
      if (ref.uri === '' || ref.uri === ref.modelId) {
        throw new NotFoundError(`${field}: model "${ref.modelId}" is not registered`, {
          field,
          modelId: ref.modelId,
        });
      }
    }
    const dir = await resolveModelFolder(modelsRoot, ref.uri, field);
    const registered = (await store.models.list()).find((m) => m.uri === ref.uri);
    if (registered !== undefined) return { dir, digest: manifestDigest(registered.files), lease: null };
    // Unregistered folders are registered on first use, so their content is hashed once.
    const { manifest } = await this.registerModel(ref.uri);
    return { dir, digest: manifestDigest(manifest.files), lease: null };
  }

  private async artifactSource(id: string, field: string): Promise<Source> {
    let lease: ArtifactLease;
    try {
      lease = await this.options.artifacts.open(id);
    } catch (error) {
      if (error instanceof Hm3Error && error.status === 'INVALID_ARGUMENT') {
        throw new InvalidArgumentError(`${field}: ${error.message}`, { field }, error);
      }
      if (error instanceof Hm3Error && error.status === 'NOT_FOUND') {
        throw new NotFoundError(`${field}: artifact ${id} not found`, { field, artifactId: id }, error);
      }
      throw error;
    }
    return { dir: lease.path, digest: `artifact:${id}`, lease };
  }
}

function isArtifactId(id: string): boolean {
  return /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}$/.test(id) && !id.includes('..');
}

function release(sources: ReadonlyMap<string, Source>): void {
  for (const s of sources.values()) s.lease?.release();
}

function toRecord(manifest: ModelManifest): ModelRecord {
  return {
    id: manifest.modelId,
    uri: manifest.uri,
    architecture: manifest.architecture,
    dtype: manifest.dtype,
    files: manifest.files.map((f) => ({ path: f.path, sha256: f.sha256, bytes: f.bytes })),
    config: { ...manifest.config },
    createdAt: new Date(),
  };
}
