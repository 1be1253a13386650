/**
 * The streaming merge executor: runs a MergePlan tensor by tensor (row block by row block where the plan
 * says so), so the tensor buffers stay within the plan's memory bound whatever the model size, and
 * writes a complete Hugging Face folder through the crash-safe CheckpointWriter: the safetensors shards
 * (+ index), config.json, the tokenizer files and generation_config.json of the base (or first model),
 * and a model card. Nothing exists under the output name until the final rename; any failure (or an
 * abort) removes the temporary folder.
 */
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Hm3Error, InvalidArgumentError } from '@hm3/errors';
import {
  Checkpoint,
  CheckpointWriter,
  DTYPE_SIZES,
  WorkerPool,
  absDigitHistogram,
  allocShared,
  checkFinite,
  encodeFloats,
  KernelMemory,
  radixSelectWith,
  registerKernels,
  tiesBandedBackend,
  tiesThresholdBands,
  type CommitResult,
  type FloatArray,
  type FloatDType,
  type NonFinitePolicy,
  type NonFiniteReport,
  type TiesBand,
} from '@hm3/tensor';
import { EmrTaskCollector, type EmrManifest } from './emr-output.js';
import { TOKENIZER_FILES } from './side-files.js';
import type { GlobalTrim } from './method.js';
import { modelCard } from './model-card.js';
import {
  planMerge,
  type MergePlan,
  type PlanOptions,
  type PlannedTensor,
  type TensorSource,
} from './plan.js';
import { modelKey, type Recipe } from './recipe.js';
import { hasMethod } from './registry.js';
import {
  generalizedTaskArithmeticOnPool,
  gtaOnPoolSupports,
  tiesKeepCounts,
  tiesMergeRawOnPool,
  tiesRawOnPoolSupports,
} from './methods/generalized-task-arithmetic-pool.js';
import { assembleRows, computeDefaults, type ReadRows } from './tokenizer-merge.js';
import { tokenizerFiles } from './vocabulary.js';

/** Progress of a running merge, reported after every block. */
export interface MergeProgress {
  readonly tensorsDone: number;
  readonly tensorsTotal: number;
  /** The tensor being (or last) merged. */
  readonly tensor: string;
  /** Input bytes read so far, of bytesTotal. */
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly elapsedSeconds: number;
  /** Input bytes per second so far. */
  readonly bytesPerSecond: number;
  /** Estimated seconds left; null before any byte is done. */
  readonly etaSeconds: number | null;
}

export interface ExecuteOptions {
  /** Shard byte budget of the output (default 5 GB). */
  readonly shardBytes?: number;
  /** Worker threads for element-wise blocks of at least POOL_MIN_ELEMENTS (default: 1, no pool). */
  readonly threads?: number;
  readonly onProgress?: (progress: MergeProgress) => void;
  /** Warnings (vocabulary cropped, NaN/Inf under policy warn, tensors left out). */
  readonly onWarning?: (message: string) => void;
  /** NaN/Inf in an input: 'error' (default) fails the merge naming the file and tensor; 'warn' reports it. */
  readonly nonFinite?: NonFinitePolicy;
  /** Stops the merge between blocks; nothing is left under the output name. */
  readonly signal?: AbortSignal;
  /** Blocks of fewer elements run on the calling thread (default POOL_MIN_ELEMENTS). */
  readonly poolMinElements?: number;
  /** Recorded as hm3_version (default: this package's version). */
  readonly toolVersion?: string;
  /** Temporary folder root on the output's volume (default: the output's parent). */
  readonly tempRoot?: string;
}

export interface MergeResult extends CommitResult {
  readonly tensors: number;
  readonly seconds: number;
  readonly warnings: readonly string[];
  readonly recipeSha256: string;
  /** emr: the tasks written under tasks/ with their mask sizes; absent for other methods. */
  readonly emr?: EmrManifest;
}

/** Blocks below this many elements are merged on the calling thread (the pool's overhead outweighs it). */
export const POOL_MIN_ELEMENTS = 1 << 20;

/** The same for whole tensors of TIES on its raw path (tiesMergeRawOnPool), unless poolMinElements says otherwise. */
export const TIES_POOL_MIN_ELEMENTS = 1 << 17;

/** The raw slots of a prefetched whole tensor start here (the current one's at 0). */
const PREFETCH_SLOTS = 64;

export { TOKENIZER_FILES } from './side-files.js';

const TORCH_DTYPE: Readonly<Record<string, string>> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
};

/** The merge was stopped through its AbortSignal. */
export class MergeCancelledError extends Hm3Error {
  constructor() {
    super('merge cancelled; nothing was written under the output name', { status: 'CANCELLED' });
  }
}

let ownVersion: string | undefined;
function packageVersion(): string {
  if (ownVersion === undefined) {
    try {
      ownVersion =
        (createRequire(import.meta.url)('../package.json') as { version?: string }).version ?? '0.0.0';
    } catch {
      ownVersion = '0.0.0';
    }
  }
  return ownVersion;
}

// Sources run under vitest/tsx (.ts); the built package loads .js.
const KERNEL_URL = new URL(
  `./executor-kernel.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`,
  import.meta.url,
);

async function exists(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Reusable block buffers, one per source slot plus the output and its encoding, sized for the plan's largest block. */
class Buffers {
  private readonly slots: FloatArray[] = [];
  private outSlot: FloatArray | undefined;
  /** The byte buffers by use (raw input slots, TIES' write slots, the encoded output, ...). */
  private readonly byteSlots = new Map<string, Uint8Array>();
  constructor(
    private readonly elements: number,
    private readonly dtype: 'F32' | 'F64',
    private readonly shared: boolean,
    /** Where the raw input and TIES write slots are carved from, when it has room (the kernels then work in place). */
    readonly kernelMemory: KernelMemory | null = null,
  ) {}
  get(slot: number, count: number): FloatArray {
    let b = this.slots[slot];
    if (b === undefined) {
      b = allocFloats(this.dtype, this.elements, this.shared);
      this.slots[slot] = b;
    }
    return b.subarray(0, count);
  }
  /** Raw input bytes of slot `slot` (shared when there is a pool). */
  raw(slot: number, bytes: number): Uint8Array {
    return this.bytes(`raw:${slot}`, bytes, this.elements * 2, this.shared, this.kernelMemory);
  }
  /**
   * TIES' merged tensor, encoded, in one of two slots of its own (shared when there is a pool): the
   * tensor's write may still run while the next one is merged into the other slot.
   */
  writeBehind(slot: 0 | 1, bytes: number): Uint8Array {
    return this.bytes(`write:${slot}`, bytes, this.elements * 2, this.shared, this.kernelMemory);
  }
  /** The merged block's encoded bytes (shared when there is a pool). */
  outRaw(bytes: number): Uint8Array {
    return this.bytes('outRaw', bytes, this.elements * 2, this.shared);
  }
  /** A keep-mask scratch of `count` bytes (generalizedTaskArithmeticOnPool's; shared when there is a pool). */
  mask(count: number): Uint8Array {
    return this.bytes('mask', count, this.elements, this.shared);
  }
  /** The merged block's buffer. */
  out(count: number): FloatArray {
    this.outSlot ??= allocFloats(this.dtype, this.elements, this.shared);
    return this.outSlot.subarray(0, count);
  }
  /** A byte buffer for encoding `bytes` of output. */
  encode(bytes: number): Uint8Array {
    return this.bytes('encode', bytes, this.elements * 2, false);
  }
  /** The first `bytes` of buffer `key`, allocated (at least `least` bytes) or grown on demand. */
  private bytes(
    key: string,
    bytes: number,
    least: number,
    shared: boolean,
    memory: KernelMemory | null = null,
  ): Uint8Array {
    let b = this.byteSlots.get(key);
    if (b === undefined || b.byteLength < bytes) {
      const size = Math.max(bytes, least);
      b =
        memory?.alloc(size) ?? (shared ? new Uint8Array(new SharedArrayBuffer(size)) : new Uint8Array(size));
      this.byteSlots.set(key, b);
    }
    return b.subarray(0, bytes);
  }
}

/** Runs `plan` into the HF folder `outDir`. */
export async function executeMerge(
  plan: MergePlan,
  outDir: string,
  options: ExecuteOptions = {},
): Promise<MergeResult> {
  const started = performance.now();
  const toolVersion = options.toolVersion ?? packageVersion();
  const warnings = [...plan.warnings];
  for (const w of plan.warnings) options.onWarning?.(w);
  const threads = Math.max(1, Math.floor(options.threads ?? 1));
  // element-wise blocks split over the pool; so do whole tensors of generalized task arithmetic
  const usePool =
    threads > 1 &&
    hasMethod(plan.method.name) &&
    plan.tensors.some((t) => t.kind === 'merge' && (t.elementwise || plan.method.gta !== undefined));
  const poolMin = Math.max(1, options.poolMinElements ?? POOL_MIN_ELEMENTS);
  // TIES' raw path splits its own ranges and costs ~30 ns an element on one thread: worth the pool sooner
  const tiesPoolMin = Math.max(1, options.poolMinElements ?? TIES_POOL_MIN_ELEMENTS);
  const pool = usePool
    ? new WorkerPool({ size: threads, minRangeLength: Math.max(1, Math.floor(poolMin / threads)) })
    : null;
  pool?.register('mergeRange', KERNEL_URL);
  pool?.register('mergeRangeRaw', KERNEL_URL);
  if (pool !== null) registerKernels(pool);
  const buffers = new Buffers(
    plan.maxBlockElements,
    plan.computeDtype,
    pool !== null,
    pool === null ? null : tiesKernelMemory(plan),
  );
  const checkpoints = new Map<string, Checkpoint>();
  let writer: CheckpointWriter | undefined;
  // TIES' writes run behind the next tensor's merge: the write of each slot's last tensor, awaited
  // before the slot is filled again and before the commit (the writer claims positions at the call)
  const writesBehind: [Promise<void> | null, Promise<void> | null] = [null, null];
  let writeSlot: 0 | 1 = 0;
  const writeBehind = async (slot: 0 | 1): Promise<void> => {
    const pending = writesBehind[slot];
    writesBehind[slot] = null;
    await pending;
  };
  try {
    throwIfAborted(options.signal);
    writer = await CheckpointWriter.create(
      outDir,
      plan.tensors.map((t) => ({ name: t.name, dtype: t.outDtype, shape: t.shape })),
      {
        ...(options.shardBytes === undefined ? {} : { shardBytes: options.shardBytes }),
        ...(options.tempRoot === undefined ? {} : { tempRoot: options.tempRoot }),
        recipeSha256: plan.recipeSha256,
        toolVersion,
        metadata: { hm3_merge_method: plan.method.name },
      },
    );
    for (const m of plan.models) checkpoints.set(m.dir, await Checkpoint.open(m.dir));
    const emr = plan.method.name === 'emr' ? new EmrTaskCollector(plan) : null;

    let bytesDone = 0;
    let tensorsDone = 0;
    const report = (tensor: string) => {
      if (!options.onProgress) return;
      const elapsedSeconds = (performance.now() - started) / 1000;
      const bytesPerSecond = elapsedSeconds > 0 ? bytesDone / elapsedSeconds : 0;
      options.onProgress({
        tensorsDone,
        tensorsTotal: plan.tensors.length,
        tensor,
        bytesDone,
        bytesTotal: plan.inputBytes,
        elapsedSeconds,
        bytesPerSecond,
        etaSeconds: bytesDone > 0 ? (plan.inputBytes - bytesDone) / bytesPerSecond : null,
      });
    };
    const onNonFinite = (r: NonFiniteReport) => {
      const msg = `${r.file}: tensor ${r.tensor}: a non-finite value (${r.value}) at flat index ${r.index}`;
      warnings.push(msg);
      options.onWarning?.(msg);
    };
    const read = (src: TensorSource, rows: [number, number] | null, out: FloatArray) => {
      const ck = checkpoints.get(src.dir)!;
      const opts = {
        ...(rows === null ? {} : { rows }),
        nonFinite: options.nonFinite ?? 'error',
        onNonFinite,
      };
      return out instanceof Float64Array
        ? ck.readFloats(src.tensor, 'F64', { ...opts, out })
        : ck.readFloats(src.tensor, 'F32', { ...opts, out: out as Float32Array });
    };

    // One input of a tensor (the base first, then the models) for output rows [r0, r1): read as it is,
    // or assembled in the rebuilt vocabulary (tokenizer merges: embeddings and head).
    const f64 = plan.computeDtype === 'F64';
    let lastDefaults: { key: string; rows: Map<number, FloatArray> } | null = null;
    const paddingRows = new Map<string, FloatArray[]>();
    const readInput: ReadInput = async (t, input, r0, r1, out) => {
      const sources = [...(t.base === null ? [] : [t.base]), ...t.models.map((m) => m.source)];
      const map = t.rowMap;
      if (map === undefined || map === null)
        return read(sources[input]!, t.shape.length === 0 ? null : [r0, r1], out);
      const cols = t.rowElements;
      const readRows: ReadRows = (i, a, b) =>
        read(sources[i]!, [a, b], allocFloats(plan.computeDtype, (b - a) * cols, false));
      const defaultsFor = async (a: number, b: number) => {
        const key = `${t.name}\u0000${a}\u0000${b}`;
        if (lastDefaults?.key !== key)
          lastDefaults = { key, rows: await computeDefaults(map, a, b, cols, readRows, f64) };
        return lastDefaults.rows;
      };
      let padding: FloatArray | null = null;
      if (r1 > map.tokenRows) {
        // the mean of each input's rows of the vocabulary, in a pass over them
        let means = paddingRows.get(t.name);
        if (means === undefined) {
          means = [];
          const step = Math.max(1, Math.min(t.rowsPerBlock, map.tokenRows));
          const sums = sources.map(() => new Float64Array(cols));
          for (let a = 0; a < map.tokenRows; a += step) {
            const b = Math.min(map.tokenRows, a + step);
            const block = allocFloats(plan.computeDtype, (b - a) * cols, false);
            const defaults = await defaultsFor(a, b);
            for (let i = 0; i < sources.length; i++) {
              await assembleRows(map, i, a, b, cols, readRows, defaults, null, block);
              const sum = sums[i]!;
              for (let k = 0; k < block.length; k++) sum[k % cols] = sum[k % cols]! + block[k]!;
            }
          }
          for (const sum of sums) {
            const mean = allocFloats(plan.computeDtype, cols, false);
            for (let c = 0; c < cols; c++) mean[c] = sum[c]! / map.tokenRows;
            means.push(mean);
          }
          paddingRows.set(t.name, means);
        }
        padding = means[input]!;
      }
      await assembleRows(map, input, r0, r1, cols, readRows, await defaultsFor(r0, r1), padding, out);
      return out;
    };

    const globalTrim = await globalThresholds(plan, readInput, buffers);
    report(plan.tensors[0]?.name ?? '');
    // Whether tensor t takes the whole-tensor raw path (ties / dare_ties on the pool) for this block.
    const wholeRaw = (t: PlannedTensor, count: number): boolean =>
      pool !== null &&
      t.kind === 'merge' &&
      !t.elementwise &&
      count >= (tiesRaw(plan, t) ? tiesPoolMin : poolMin) &&
      emr === null &&
      globalTrim === null &&
      (t.rowMap === undefined || t.rowMap === null) &&
      t.shape.length > 0 &&
      wholeOnPool(plan, t);
    /** Per tensor of the plan: whether some block of it takes the whole-tensor raw path (the raw slots). */
    const onRawPath = plan.tensors.map(
      (t) => t.kind === 'merge' && wholeRaw(t, Math.max(1, t.rows) * t.rowElements),
    );
    // the next whole tensor's inputs, read while this one is merged (into the other half of the raw
    // slots); for TIES' raw path only, whose buffers are the raw bytes alone (memory stays bounded)
    let prefetched: {
      tensor: PlannedTensor;
      raw: Promise<{ raw: Uint8Array[]; bands: (TiesBand | null)[] }>;
      slots: number;
    } | null = null;
    let rawSlots = 0;
    // Tensors off the raw path (norms, copies, ...) wait here for the next TIES raw-path tensor, and are
    // done on this thread while the workers merge it: otherwise the workers sit idle while their reads
    // and writes queue behind the big tensors' I/O. Their buffers are not the raw path's; the writer
    // writes by position, so the file is the same whatever the order.
    const openWriter = writer;
    const deferred: [number, PlannedTensor][] = [];
    const overlapsLater = new Array<boolean>(plan.tensors.length).fill(false);
    for (let ti = plan.tensors.length - 2; ti >= 0; ti--)
      overlapsLater[ti] =
        overlapsLater[ti + 1]! || (onRawPath[ti + 1]! && tiesRaw(plan, plan.tensors[ti + 1]!));
    /** Runs the deferred tensors, in order, on this thread. */
    const runDeferred = async (): Promise<void> => {
      for (const [ti, t] of deferred.splice(0)) await mergeTensor(ti, t);
    };
    const mergeTensor = async (ti: number, t: PlannedTensor): Promise<void> => {
      throwIfAborted(options.signal);
      if (t.kind === 'copy') {
        const src = t.copyFrom!;
        const bytes = await checkpoints.get(src.dir)!.readBytes(src.tensor);
        await openWriter.write(t.name, bytes);
        bytesDone += t.inputBytes;
      } else {
        const scalar = t.shape.length === 0;
        const perBlock = Math.max(1, t.rowsPerBlock);
        for (let r0 = 0; r0 < Math.max(t.rows, 1); r0 += perBlock) {
          throwIfAborted(options.signal);
          const r1 = Math.min(t.rows, r0 + perBlock);
          const count = scalar ? 1 : (r1 - r0) * t.rowElements;
          const inputs = (t.base === null ? 0 : 1) + t.models.length;
          if (
            pool !== null &&
            t.elementwise &&
            count >= poolMin &&
            emr === null &&
            (t.rowMap === undefined || t.rowMap === null) &&
            !scalar
          ) {
            // the hot path: raw bytes in, decode / merge / encode on the workers, raw bytes out
            await mergeBlockRaw(plan, t, r0, r1, count, pool, buffers, checkpoints, openWriter, {
              policy: options.nonFinite ?? 'error',
              onNonFinite,
            });
            bytesDone +=
              count *
              [...(t.base === null ? [] : [t.base]), ...t.models.map((m) => m.source)].reduce(
                (s, src) => s + bytesOf(src),
                0,
              );
            if (r1 < t.rows) report(t.name);
            continue;
          }
          if (pool !== null && wholeRaw(t, count)) {
            // whole tensors of ties / dare_ties: raw bytes in, decode + task vectors, sparsify, merge and
            // encode on the workers, raw bytes out
            const sources = [t.base!, ...t.models.map((m) => m.source)];
            let raw: Uint8Array[];
            let bands: (TiesBand | null)[] | undefined;
            if (prefetched?.tensor === t && r0 === 0 && r1 === t.rows) {
              ({ raw, bands } = await prefetched.raw);
              rawSlots = prefetched.slots;
            } else raw = await readRaw(sources, r0, r1, count, buffers, checkpoints, rawSlots);
            prefetched = null;
            // the next tensor on this path, past those that take another one (copies, norms, ...): their
            // buffers are not the raw slots, so its read runs while they and this tensor are merged
            let after = ti + 1;
            while (after < plan.tensors.length && !onRawPath[after]!) after++;
            const next = plan.tensors[after];
            const nextCount = next === undefined ? 0 : next.rows * next.rowElements;
            if (
              next !== undefined &&
              r1 === t.rows &&
              next.rowsPerBlock >= next.rows &&
              tiesRaw(plan, next) &&
              wholeRaw(next, nextCount)
            ) {
              const slots = rawSlots === 0 ? PREFETCH_SLOTS : 0;
              const nextSources = [next.base!, ...next.models.map((m) => m.source)];
              // the bands' sample is taken here too, while the workers merge this tensor
              const read = readRaw(nextSources, 0, next.rows, nextCount, buffers, checkpoints, slots).then(
                (raw) => ({
                  raw,
                  bands: tiesThresholdBands(
                    raw,
                    nextSources.map((src) => src.dtype as FloatDType),
                    nextCount,
                    tiesKeepCounts(next.models, nextCount),
                  ),
                }),
              );
              read.catch(() => undefined); // a failure surfaces when the tensor is reached
              prefetched = { tensor: next, raw: read, slots };
            }
            await writeBehind(writeSlot);
            // the deferred tensors run on this thread while the workers merge this one (TIES' raw path
            // uses none of their buffers; any other path runs them first)
            const side = tiesRaw(plan, t) ? runDeferred() : null;
            if (side === null) await runDeferred();
            // this tensor's NaN/Inf reports wait for the deferred ones', which come first in the plan
            const heldReports: NonFiniteReport[] = [];
            const merging = mergeWholeRaw(
              plan,
              t,
              r0,
              raw,
              bands,
              count,
              pool,
              buffers,
              checkpoints,
              openWriter,
              {
                policy: options.nonFinite ?? 'error',
                onNonFinite: side === null ? onNonFinite : (r) => heldReports.push(r),
              },
              writeSlot,
            );
            // both settle before either's failure is thrown (the deferred ones come first in the plan)
            const [sideDone, merged] = await Promise.allSettled([side, merging]);
            if (sideDone.status === 'rejected') throw sideDone.reason;
            for (const r of heldReports) onNonFinite(r);
            if (merged.status === 'rejected') throw merged.reason;
            const written = merged.value;
            if (written !== null) {
              written.write.catch(() => undefined); // awaited (and thrown) at writeBehind
              writesBehind[writeSlot] = written.write;
              writeSlot = writeSlot === 0 ? 1 : 0;
            }
            bytesDone +=
              count *
              ((t.base === null ? 0 : bytesOf(t.base)) + t.models.reduce((s, m) => s + bytesOf(m.source), 0));
            if (r1 < t.rows) report(t.name);
            continue;
          }
          const read = (slot: number) => readInput(t, slot, r0, r1, buffers.get(slot, count));
          // the inputs' positioned reads run side by side (assembled rows share a cache: one at a time)
          const blocks: FloatArray[] = [];
          if (t.rowMap === undefined || t.rowMap === null) {
            const settled = await Promise.allSettled(Array.from({ length: inputs }, (_, slot) => read(slot)));
            for (const r of settled) {
              if (r.status === 'rejected') throw r.reason; // the first input's failure, in input order
              blocks.push(r.value);
            }
          } else for (let slot = 0; slot < inputs; slot++) blocks.push(await read(slot));
          const base = t.base === null ? null : blocks[0]!;
          const models = t.base === null ? blocks : blocks.slice(1);
          const out = await mergeBlock(
            plan,
            t,
            base,
            models,
            count,
            r0 * t.rowElements,
            pool,
            poolMin,
            globalTrim,
            buffers.out(count),
            emr === null, // emr reads the inputs again after the merge
            pool === null || plan.method.gta === undefined ? null : buffers.mask(count),
          );
          if (emr !== null && base !== null) emr.add(t.name, base, models, r0 * t.rowElements);
          await openWriter.write(
            t.name,
            encodeFloats(t.outDtype, out, buffers.encode(out.length * DTYPE_SIZES[t.outDtype])),
          );
          bytesDone +=
            count *
            ((t.base === null ? 0 : bytesOf(t.base)) + t.models.reduce((s, m) => s + bytesOf(m.source), 0));
          if (r1 < t.rows) report(t.name);
        }
      }
      tensorsDone++;
      report(t.name);
    };
    for (const [ti, t] of plan.tensors.entries()) {
      if (pool !== null && !onRawPath[ti]! && overlapsLater[ti]!) deferred.push([ti, t]);
      else await mergeTensor(ti, t);
    }
    await runDeferred();

    await writeBehind(0);
    await writeBehind(1);
    await writeSideFiles(plan, writer, toolVersion);
    const emrManifest = emr === null ? undefined : await emr.write(writer);
    throwIfAborted(options.signal);
    const result = await writer.commit();
    return {
      ...result,
      ...(emrManifest === undefined ? {} : { emr: emrManifest }),
      tensors: plan.tensors.length,
      seconds: (performance.now() - started) / 1000,
      warnings,
      recipeSha256: plan.recipeSha256,
    };
  } catch (error) {
    // no write may still run when the writer removes its files
    await Promise.allSettled(writesBehind.filter((w) => w !== null));
    await writer?.abort();
    throw error;
  } finally {
    await Promise.all([...checkpoints.values()].map((c) => c.close().catch(() => undefined)));
    await pool?.close();
  }
}

/**
 * One element-wise block on the pool from raw bytes: every input's rows read side by side into shared
 * byte buffers, mergeRangeRaw on the workers (decode, merge, encode per range), the encoded block
 * written as it is. NaN/Inf are reported per input in input order, as reading them decoded would.
 */
async function mergeBlockRaw(
  plan: MergePlan,
  t: PlannedTensor,
  r0: number,
  r1: number,
  count: number,
  pool: WorkerPool,
  buffers: Buffers,
  checkpoints: ReadonlyMap<string, Checkpoint>,
  writer: CheckpointWriter,
  nonFinite: { policy: NonFinitePolicy; onNonFinite: (r: NonFiniteReport) => void },
): Promise<void> {
  const sources = [...(t.base === null ? [] : [t.base]), ...t.models.map((m) => m.source)];
  const raw = await readRaw(sources, r0, r1, count, buffers, checkpoints);
  const outRaw = buffers.outRaw(count * DTYPE_SIZES[t.outDtype]);
  const firsts = await pool.run<number[]>(
    'mergeRangeRaw',
    {
      method: plan.method.name,
      raw,
      dtypes: sources.map((s) => s.dtype),
      hasBase: t.base !== null,
      compute: plan.computeDtype,
      outRaw,
      outDtype: t.outDtype,
      checkFinite: true,
      ids: t.models.map((m) => m.id),
      modelParams: t.models.map((m) => m.params),
      params: t.params,
      name: t.name,
      layerIndex: t.role.layerIndex,
      seed: plan.recipe.seed,
      elementOffset: r0 * t.rowElements,
    },
    count,
  );
  reportNonFinite(firsts, sources, raw, count, r0 * t.rowElements, checkpoints, nonFinite);
  await writer.write(t.name, outRaw);
}

/** Reads the inputs' rows [r0, r1) side by side into the shared raw buffers (input order: base first). */
async function readRaw(
  sources: readonly TensorSource[],
  r0: number,
  r1: number,
  count: number,
  buffers: Buffers,
  checkpoints: ReadonlyMap<string, Checkpoint>,
  firstSlot = 0,
): Promise<Uint8Array[]> {
  const settled = await Promise.allSettled(
    sources.map((src, slot) =>
      checkpoints
        .get(src.dir)!
        .readRowBytes(src.tensor, r0, r1, buffers.raw(firstSlot + slot, count * DTYPE_SIZES[src.dtype])),
    ),
  );
  const raw: Uint8Array[] = [];
  for (const r of settled) {
    if (r.status === 'rejected') throw r.reason;
    raw.push(r.value);
  }
  return raw;
}

/**
 * The NaN/Inf the workers found (per range, per input: the first index, -1 none), reported per input
 * in input order at the lowest index, as reading them decoded would.
 */
function reportNonFinite(
  firsts: readonly (readonly number[])[],
  sources: readonly TensorSource[],
  raw: readonly Uint8Array[],
  count: number,
  indexOffset: number,
  checkpoints: ReadonlyMap<string, Checkpoint>,
  nonFinite: { policy: NonFinitePolicy; onNonFinite: (r: NonFiniteReport) => void },
): void {
  for (let slot = 0; slot < sources.length; slot++) {
    const hits = firsts.map((f) => f[slot]!).filter((i) => i >= 0);
    if (hits.length === 0) continue;
    const i = Math.min(...hits);
    const src = sources[slot]!;
    const bytes = raw[slot]!;
    const values =
      src.dtype === 'F64'
        ? new Float64Array(bytes.buffer, bytes.byteOffset, count)
        : src.dtype === 'F32'
          ? new Float32Array(bytes.buffer, bytes.byteOffset, count)
          : new Uint16Array(bytes.buffer, bytes.byteOffset, count);
    checkFinite(src.dtype as FloatDType, values.subarray(i), {
      file: checkpoints.get(src.dir)!.info(src.tensor).file,
      tensor: src.tensor,
      policy: nonFinite.policy,
      onWarn: nonFinite.onNonFinite,
      indexOffset: indexOffset + i,
    });
  }
}

/**
 * A KernelMemory for the raw input slots (the current and the prefetched tensor's) and the two write
 * slots of TIES' raw path, when the plan has bf16 tensors on it and the WebAssembly kernel loads: the
 * kernel then reads and writes them in place. Null otherwise (plain shared buffers).
 */
function tiesKernelMemory(plan: MergePlan): KernelMemory | null {
  if (tiesBandedBackend().kind !== 'wasm') return null;
  let inputs = 0;
  for (const t of plan.tensors) {
    if (t.kind !== 'merge' || !tiesRaw(plan, t)) continue;
    const sources = [t.base!, ...t.models.map((m) => m.source)];
    if (sources.some((src) => src.dtype !== 'BF16') || t.outDtype !== 'BF16') continue;
    inputs = Math.max(inputs, sources.length);
  }
  if (inputs === 0) return null;
  const slotBytes = plan.maxBlockElements * 2 + 64; // a bf16 block, and the alignment
  return KernelMemory.create((2 * inputs + 2) * slotBytes);
}

/** Whether mergeWholeRaw runs tensor t on TIES' raw path (tiesMergeRawOnPool). */
function tiesRaw(plan: MergePlan, t: PlannedTensor): boolean {
  const gta = plan.method.gta;
  if (gta === undefined || t.base === null || t.models.length === 0) return false;
  const context = { name: t.name, layerIndex: t.role.layerIndex, seed: plan.recipe.seed };
  return tiesRawOnPoolSupports(gta, { params: t.params, context }, plan.computeDtype);
}

/** Whether mergeWholeRaw takes tensor t: a base, f32/f64 compute, and options generalizedTaskArithmeticOnPool covers. */
function wholeOnPool(plan: MergePlan, t: PlannedTensor): boolean {
  const gta = plan.method.gta;
  if (gta === undefined || t.base === null) return false;
  return gtaOnPoolSupports(gta, {
    params: t.params,
    context: { name: t.name, layerIndex: t.role.layerIndex, seed: plan.recipe.seed },
  });
}

/**
 * One whole tensor of a generalized-task-arithmetic method on the pool from raw bytes: the inputs read
 * side by side, decoded with the task vectors taken in the same pass (decodeDeltas), sparsified and
 * merged by generalizedTaskArithmeticOnPool, encoded by the workers (encodeRange) and written as one
 * buffer. The same values as decoding on this thread and running the method there.
 */
async function mergeWholeRaw(
  plan: MergePlan,
  t: PlannedTensor,
  r0: number,
  raw: Uint8Array[],
  bands: (TiesBand | null)[] | undefined,
  count: number,
  pool: WorkerPool,
  buffers: Buffers,
  checkpoints: ReadonlyMap<string, Checkpoint>,
  writer: CheckpointWriter,
  nonFinite: { policy: NonFinitePolicy; onNonFinite: (r: NonFiniteReport) => void },
  writeSlot: 0 | 1,
): Promise<{ write: Promise<void> } | null> {
  const sources = [t.base!, ...t.models.map((m) => m.source)];
  const context = { name: t.name, layerIndex: t.role.layerIndex, seed: plan.recipe.seed };
  if (tiesRaw(plan, t)) {
    // TIES proper: the raw bytes merged on the pool, no decoded copies (tiesMergeRawParallel); the
    // write is returned, not awaited: it runs while the next tensor is merged (writeBehind)
    const outRaw = buffers.writeBehind(writeSlot, count * DTYPE_SIZES[t.outDtype]);
    await tiesMergeRawOnPool(pool, {
      raw,
      dtypes: sources.map((s) => s.dtype as FloatDType),
      n: count,
      models: t.models.map((m) => ({ id: m.id, params: m.params })),
      params: t.params,
      context,
      outRaw,
      outDtype: t.outDtype as FloatDType,
      ...(bands === undefined ? {} : { bands }),
      ...(buffers.kernelMemory === null ? {} : { memory: buffers.kernelMemory }),
      onDecoded: (firsts) =>
        reportNonFinite(firsts, sources, raw, count, r0 * t.rowElements, checkpoints, nonFinite),
    });
    // boxed: an async function's returned promise would be awaited with it
    return { write: writer.write(t.name, outRaw) };
  }
  const values = sources.map((_, slot) => buffers.get(slot, count));
  const firsts = await pool.run<number[]>(
    'decodeDeltas',
    { raw, dtypes: sources.map((s) => s.dtype), outs: values, hasBase: true },
    count,
  );
  reportNonFinite(firsts, sources, raw, count, r0 * t.rowElements, checkpoints, nonFinite);
  const rows = count / Math.max(1, t.rowElements);
  const out = buffers.out(count);
  await generalizedTaskArithmeticOnPool(
    pool,
    {
      base: values[0]!,
      models: t.models.map((m, i) => ({ id: m.id, tensor: values[i + 1]!, params: m.params })),
      params: t.params,
      context: {
        name: t.name,
        layerIndex: t.role.layerIndex,
        seed: plan.recipe.seed,
        shape: [rows, ...t.shape.slice(1)],
        elementOffset: r0 * t.rowElements,
      },
      out,
      consumeInputs: true,
    },
    plan.method.gta!,
    buffers.mask(count),
    true,
  );
  const outRaw = buffers.outRaw(count * DTYPE_SIZES[t.outDtype]);
  await pool.run('encodeRange', { x: out, dtype: t.outDtype, out: outRaw }, count);
  await writer.write(t.name, outRaw);
  return null;
}

function allocFloats(dtype: 'F32' | 'F64', n: number, shared: boolean): FloatArray {
  if (dtype === 'F64') return shared ? allocShared(Float64Array, n) : new Float64Array(n);
  return shared ? allocShared(Float32Array, n) : new Float32Array(n);
}

function bytesOf(src: TensorSource): number {
  return src.dtype === 'F64' ? 8 : src.dtype === 'F32' ? 4 : 2;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new MergeCancelledError();
}

async function mergeBlock(
  plan: MergePlan,
  t: PlannedTensor,
  base: FloatArray | null,
  models: FloatArray[],
  count: number,
  elementOffset: number,
  pool: WorkerPool | null,
  poolMin: number,
  globalTrim: Readonly<Record<string, GlobalTrim>> | null,
  outBuffer: FloatArray,
  consumeInputs: boolean,
  mask: Uint8Array | null = null,
): Promise<FloatArray> {
  const rows = t.shape.length === 0 ? 1 : count / Math.max(1, t.rowElements);
  const shape = t.shape.length === 0 ? [] : [rows, ...t.shape.slice(1)];
  const context = {
    name: t.name,
    layerIndex: t.role.layerIndex,
    seed: plan.recipe.seed,
    shape,
    elementOffset,
    ...(globalTrim === null ? {} : { globalTrim }),
  };
  if (pool !== null && t.elementwise && count >= poolMin) {
    const out = outBuffer; // shared: the buffers are when there is a pool
    await pool.run(
      'mergeRange',
      {
        method: plan.method.name,
        base,
        models,
        ids: t.models.map((m) => m.id),
        modelParams: t.models.map((m) => m.params),
        params: t.params,
        name: t.name,
        layerIndex: t.role.layerIndex,
        seed: plan.recipe.seed,
        elementOffset,
        out,
        consumeInputs,
      },
      count,
    );
    return out;
  }
  const input = {
    base,
    models: t.models.map((m, i) => ({ id: m.id, tensor: models[i]!, params: m.params })),
    params: t.params,
    context,
    out: outBuffer,
    consumeInputs,
  };
  const gta = plan.method.gta;
  if (
    pool !== null &&
    gta !== undefined &&
    count >= poolMin &&
    consumeInputs &&
    mask !== null &&
    gtaOnPoolSupports(gta, input)
  )
    return generalizedTaskArithmeticOnPool(pool, input, gta, mask);
  return plan.method.merge(input);
}

async function writeSideFiles(plan: MergePlan, writer: CheckpointWriter, toolVersion: string): Promise<void> {
  const ref = plan.reference;
  const config: Record<string, unknown> = { ...ref.config };
  const firstFloat = plan.tensors.find((t) => t.kind === 'merge');
  if (firstFloat !== undefined) config['torch_dtype'] = TORCH_DTYPE[firstFloat.outDtype];
  const vocabulary = plan.vocabulary ?? null;
  if (plan.vocabCropped || vocabulary !== null) config['vocab_size'] = plan.vocabSize;
  if (plan.outputLayers !== null) {
    config['num_hidden_layers'] = plan.outputLayers;
    // per-layer lists (e.g. layer_types) follow the restacked layers
    if (Array.isArray(config['layer_types']) && plan.recipe.slices) {
      const types = plan.recipe.slices.flatMap((s) => {
        const src = s.sources[0]!;
        const model = plan.models.find((m) => m.key === modelKey(src.ref));
        const list = (model?.config['layer_types'] as unknown[] | undefined) ?? [];
        return list.slice(src.layerRange[0], src.layerRange[1]);
      });
      config['layer_types'] = types;
    }
  }
  await writer.writeFile('config.json', JSON.stringify(config, null, 2) + '\n');
  if (vocabulary === null || vocabulary.output.unchanged) {
    // the tokenizer files as they are: the reference's, or those of the tokenizer's model
    const dir = vocabulary === null ? ref.dir : vocabulary.output.from.dir;
    for (const file of TOKENIZER_FILES) {
      const from = path.join(file === 'generation_config.json' ? ref.dir : dir, file);
      if (await exists(from)) await writer.writeFile(file, await readFile(from));
    }
  } else {
    for (const f of await tokenizerFiles(vocabulary.output)) await writer.writeFile(f.name, f.data);
    const generation = path.join(ref.dir, 'generation_config.json');
    if (await exists(generation))
      await writer.writeFile('generation_config.json', await readFile(generation));
  }
  await writer.writeFile('README.md', modelCard(plan, toolVersion));
}

/** Reads input `input` (the base first, then the models) of tensor `t` for output rows [r0, r1) into `out`. */
type ReadInput = (
  t: PlannedTensor,
  input: number,
  r0: number,
  r1: number,
  out: FloatArray,
) => Promise<FloatArray>;

/**
 * `scope: global` (FusionBench): for every model, the magnitude thresholds of its whole task vector
 * over every tensor merged with scope global -- keep the floor(density * N) largest |delta| (breadcrumbs:
 * also drop the floor(gamma * N) largest), N the model's element count -- by a streaming radix select
 * (one pass over the model per 16-bit digit: 2 for f32 compute, 4 for f64). Entries tied with a
 * threshold are all kept (>=). Null when no tensor asks for it.
 */
async function globalThresholds(
  plan: MergePlan,
  readInput: ReadInput,
  buffers: Buffers,
): Promise<Record<string, GlobalTrim> | null> {
  const tensors = plan.tensors.filter(
    (t) => t.kind === 'merge' && t.params['scope'] === 'global' && t.base !== null,
  );
  if (tensors.length === 0) return null;
  const f64 = plan.computeDtype === 'F64';
  const out: Record<string, GlobalTrim> = {};
  for (const id of tensors[0]!.models.map((m) => m.id)) {
    const settings = new Set(
      tensors.map((t) => {
        const p = t.models.find((m) => m.id === id)?.params ?? {};
        return `density ${String(p['density'] ?? 1)}, gamma ${String(p['gamma'] ?? 0)}`;
      }),
    );
    if (settings.size > 1) {
      throw new InvalidArgumentError(
        `scope: global needs one density (and gamma) per model over the whole model; ${id} has ${[...settings].join('; ')}`,
        { field: 'parameters.scope', model: id },
      );
    }
    const params = tensors[0]!.models.find((m) => m.id === id)!.params;
    const density = typeof params['density'] === 'number' ? params['density'] : 1;
    if (density >= 1) continue;
    const gamma =
      plan.method.name.startsWith('breadcrumbs') && typeof params['gamma'] === 'number' ? params['gamma'] : 0;
    const total = tensors.reduce((s, t) => s + Math.max(t.rows, 1) * t.rowElements, 0);
    const histogram = async (level: number, prefix: number[]): Promise<Uint32Array> => {
      const sum = new Uint32Array(65536);
      for (const t of tensors) {
        const count = Math.max(t.rows, 1) * t.rowElements;
        const k = t.models.findIndex((m) => m.id === id);
        const base = await readInput(t, 0, 0, t.rows, buffers.get(0, count));
        const x = await readInput(t, 1 + k, 0, t.rows, buffers.get(1, count));
        for (let i = 0; i < count; i++) x[i] = x[i]! - base[i]!; // the delta, rounded as the method rounds it
        const h = absDigitHistogram({ x, level, prefix }, 0, count);
        for (let b = 0; b < h.length; b++) sum[b] = sum[b]! + h[b]!;
      }
      return sum;
    };
    const kth = async (k: number): Promise<number> =>
      (await radixSelectAsync(f64 ? 4 : 2, f64, k, histogram)).value;
    let keep = Math.floor(density * total);
    let nTop = Math.floor(gamma * total);
    if (gamma > 0) {
      let nBot = total - keep - nTop;
      if (nBot < 0) {
        nTop += nBot;
        nBot = 0;
      }
      keep = total - nBot;
    }
    out[id] = {
      keepAbove: keep > 0 ? await kth(keep) : Number.POSITIVE_INFINITY,
      dropAbove: nTop > 0 ? await kth(nTop) : null,
    };
  }
  return out;
}

/** Thrown to stop radixSelectWith at the level whose histogram is not read yet. */
class NeedHistogram extends Error {}

/** radixSelectWith over an asynchronous histogram source (each digit level is one pass over the model). */
async function radixSelectAsync(
  levels: number,
  f64: boolean,
  k: number,
  histogram: (level: number, prefix: number[]) => Promise<Uint32Array>,
): Promise<{ value: number }> {
  const hists: Uint32Array[] = [];
  for (let level = 0; level < levels; level++) {
    let asked: number[] = [];
    try {
      radixSelectWith(level + 1, f64, k, (l, prefix) => {
        if (l < level) return hists[l]!;
        asked = [...prefix];
        throw new NeedHistogram();
      });
    } catch (error) {
      if (!(error instanceof NeedHistogram)) throw error;
    }
    hists.push(await histogram(level, asked));
  }
  return radixSelectWith(levels, f64, k, (l) => hists[l]!);
}

/** Plans and runs a merge: validation (no weight read) first, then the streaming execution. */
export async function runMerge(
  recipe: Recipe,
  outDir: string,
  options: ExecuteOptions & PlanOptions = {},
): Promise<MergeResult> {
  const plan = await planMerge(recipe, options);
  return executeMerge(plan, outDir, options);
}

/** The default worker count: the machine's parallelism, at most 8. */
export function defaultThreads(): number {
  return Math.min(8, os.availableParallelism());
}
