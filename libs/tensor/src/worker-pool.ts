/**
 * A worker_threads pool that runs range-based kernels over SharedArrayBuffer-backed typed arrays.
 *
 * The contract, for kernel authors:
 *
 *   - A kernel is an exported function of an ES module: `(args, start, end) => result | Promise<result>`.
 *     It works on the index range [start, end) of the arrays in `args` and returns something structured-
 *     cloneable (a number, a small array, a histogram as a plain array/typed array) or nothing.
 *   - Kernels are registered by module URL: `pool.register('axpy', new URL('./kernels/axpy.js',
 *     import.meta.url))` (the export name defaults to the registered name; pass a third argument
 *     otherwise). A `.ts` module URL works too (tests run from sources): the worker loads it through tsx.
 *   - `pool.run('axpy', { y, x, alpha }, y.length)` splits [0, length) into at most `pool.size`
 *     contiguous ranges (each at least `minRangeLength` elements, default 65 536), runs one task per range
 *     on an idle worker, and resolves with the per-range results IN RANGE ORDER. Pass an explicit
 *     `IndexRange[]` instead of a length to choose the split yourself (e.g. row-aligned ranges).
 *   - Every typed array in `args` (top level, or inside a top-level plain array) must be backed by a
 *     SharedArrayBuffer (`allocShared`, `toShared`): a worker writes into the shared memory and the caller
 *     sees it. A typed array over a plain ArrayBuffer would be copied per task and writes would be lost, so
 *     `run` refuses it with an InvalidArgumentError naming the kernel and the argument.
 *   - A kernel error rejects `run` with a KernelError naming the kernel and the range (the worker's
 *     message and stack are kept in `details`); the worker stays usable. A worker that dies is replaced.
 *   - `close()` lets queued work finish, then terminates the workers; `run` after `close` is refused.
 *     Idle workers are unref'd, so a forgotten pool never keeps the process alive.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FailedPreconditionError, Hm3Error, InvalidArgumentError, NotFoundError } from '@hm3/errors';

/** A half-open index range [start, end). */
export interface IndexRange {
  readonly start: number;
  readonly end: number;
}

/** The shape of a kernel function a worker calls. */
export type Kernel<A = Record<string, unknown>, R = unknown> = (
  args: A,
  start: number,
  end: number,
) => R | Promise<R>;

export interface WorkerPoolOptions {
  /** Worker count; default `os.availableParallelism()`. */
  size?: number;
  /** Smallest range `run` makes when given a length (default 65 536 elements). */
  minRangeLength?: number;
}

/** A kernel threw (or its module failed to load) in a worker. */
export class KernelError extends Hm3Error {
  constructor(message: string, details: Record<string, unknown>, cause?: unknown) {
    super(message, { status: 'INTERNAL', details, cause });
  }
}

type TypedArray =
  | Float64Array
  | Float32Array
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

type TypedArrayConstructor<T extends TypedArray> = {
  new (buffer: SharedArrayBuffer, byteOffset?: number, length?: number): T;
  readonly BYTES_PER_ELEMENT: number;
};

/** A zero-filled typed array of `length` elements over a new SharedArrayBuffer. */
export function allocShared<T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number): T {
  return new ctor(new SharedArrayBuffer(length * ctor.BYTES_PER_ELEMENT), 0, length);
}

/** `array` itself if it is already shared, else a copy of it over a new SharedArrayBuffer. */
export function toShared<T extends TypedArray>(array: T): T {
  if (array.buffer instanceof SharedArrayBuffer) return array;
  const ctor = array.constructor as TypedArrayConstructor<T>;
  const copy = allocShared(ctor, array.length);
  (copy as unknown as { set(a: ArrayLike<unknown>): void }).set(array as ArrayLike<unknown>);
  return copy;
}

/** Splits [0, length) into at most `parts` contiguous ranges of nearly equal size, each >= minLength (except a lone short one). */
export function splitRange(length: number, parts: number, minLength = 1): IndexRange[] {
  if (!Number.isInteger(length) || length < 0)
    throw new InvalidArgumentError(`range length must be a non-negative integer, got ${length}`, { length });
  if (length === 0) return [];
  const count = Math.max(1, Math.min(Math.floor(parts), Math.floor(length / Math.max(1, minLength))));
  const ranges: IndexRange[] = [];
  const base = Math.floor(length / count);
  const extra = length % count;
  let start = 0;
  for (let i = 0; i < count; i++) {
    const end = start + base + (i < extra ? 1 : 0);
    ranges.push({ start, end });
    start = end;
  }
  return ranges;
}

interface KernelRef {
  readonly url: string;
  readonly exportName: string;
}

interface Task {
  readonly id: number;
  readonly kernel: string;
  readonly ref: KernelRef;
  readonly args: unknown;
  readonly range: IndexRange;
  readonly job: Job;
  readonly index: number;
}

interface Job {
  readonly results: unknown[];
  remaining: number;
  failed: boolean;
  resolve(results: unknown[]): void;
  reject(error: unknown): void;
}

interface Slot {
  worker: Worker;
  task: Task | undefined;
}

interface TaskReply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { name?: string; message: string; stack?: string };
}

// Plain script so the same worker runs from sources (vitest) and from dist; no require, so it also runs
// as a module (a worker inherits --input-type=module from a parent run as \`node --input-type=module -e\`).
// It imports kernel modules by URL on first use and caches them; `.ts` modules go through tsx's ESM
// loader, registered once per worker.
const WORKER_SOURCE = `
import('node:worker_threads').then(({ parentPort, workerData }) => {
const modules = new Map();
let tsx = null;
function load(url) {
  let mod = modules.get(url);
  if (mod === undefined) {
    const isTs = /\\.[cm]?ts$/.test(new URL(url).pathname);
    const ready = isTs && workerData.tsxLoaderUrl
      ? (tsx ??= import(workerData.tsxLoaderUrl).then((api) => api.register()))
      : Promise.resolve();
    mod = ready.then(() => import(url));
    mod.catch(() => modules.delete(url));
    modules.set(url, mod);
  }
  return mod;
}
parentPort.on('message', async (task) => {
  try {
    const mod = await load(task.url);
    const fn = mod[task.exportName];
    if (typeof fn !== 'function') throw new Error('module ' + task.url + ' exports no function ' + task.exportName);
    const result = await fn(task.args, task.start, task.end);
    parentPort.postMessage({ id: task.id, ok: true, result });
  } catch (e) {
    const error = e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : { message: String(e) };
    parentPort.postMessage({ id: task.id, ok: false, error });
  }
});
});
`;

// tsx's ESM API (the `import` condition of `tsx/esm/api`); its register() installs the loader hooks in
// the worker that calls it (Node 20 does not apply `--import tsx` given in a worker's execArgv).
let tsxLoaderUrlCache: string | null | undefined;
function tsxLoaderUrl(): string | null {
  if (tsxLoaderUrlCache === undefined) {
    try {
      const cjs = createRequire(import.meta.url).resolve('tsx/esm/api');
      const esm = cjs.replace(/\.cjs$/, '.mjs');
      tsxLoaderUrlCache = existsSync(esm) ? pathToFileURL(esm).href : null;
    } catch {
      tsxLoaderUrlCache = null; // not installed: .ts kernels cannot load (dist kernels are .js)
    }
  }
  return tsxLoaderUrlCache;
}

function isTypedArray(value: unknown): value is TypedArray {
  return ArrayBuffer.isView(value) && !(value instanceof DataView);
}

export class WorkerPool {
  /** The number of workers. */
  readonly size: number;
  private readonly minRangeLength: number;
  private readonly kernels = new Map<string, KernelRef>();
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closing: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  constructor(options: WorkerPoolOptions = {}) {
    const size = options.size ?? os.availableParallelism();
    if (!Number.isInteger(size) || size < 1)
      throw new InvalidArgumentError(`worker pool size must be a positive integer, got ${size}`, {
        field: 'size',
        size,
      });
    const minRangeLength = options.minRangeLength ?? 65_536;
    if (!Number.isInteger(minRangeLength) || minRangeLength < 1) {
      throw new InvalidArgumentError(`minRangeLength must be a positive integer, got ${minRangeLength}`, {
        field: 'minRangeLength',
      });
    }
    this.size = size;
    this.minRangeLength = minRangeLength;
  }

  /** Registers kernel `name` as export `exportName` (default: `name`) of the ES module at `moduleUrl`. */
  register(name: string, moduleUrl: string | URL, exportName: string = name): this {
    const url = typeof moduleUrl === 'string' ? new URL(moduleUrl).href : moduleUrl.href;
    this.kernels.set(name, { url, exportName });
    return this;
  }

  /** Whether `name` is registered. */
  has(name: string): boolean {
    return this.kernels.has(name);
  }

  /**
   * Runs kernel `name` over `ranges` (or over [0, length) split across the workers) with `args`;
   * resolves with each range's result, in range order.
   */
  run<R = unknown>(
    name: string,
    args: Record<string, unknown>,
    ranges: number | readonly IndexRange[],
  ): Promise<R[]> {
    if (this.closing)
      return Promise.reject(
        new FailedPreconditionError(`worker pool is closed; cannot run kernel ${name}`, { kernel: name }),
      );
    const ref = this.kernels.get(name);
    if (!ref)
      return Promise.reject(
        new NotFoundError(`kernel ${name} is not registered in the worker pool`, { kernel: name }),
      );
    try {
      checkShared(name, args);
    } catch (error) {
      return Promise.reject(error);
    }
    const list = typeof ranges === 'number' ? splitRange(ranges, this.size, this.minRangeLength) : ranges;
    if (list.length === 0) return Promise.resolve([]);
    return new Promise<R[]>((resolve, reject) => {
      const job: Job = {
        results: new Array<unknown>(list.length),
        remaining: list.length,
        failed: false,
        resolve: resolve as (r: unknown[]) => void,
        reject,
      };
      list.forEach((range, index) => {
        this.queue.push({ id: this.nextId++, kernel: name, ref, args, range, job, index });
      });
      this.pump();
    });
  }

  /** Lets queued work finish, then terminates every worker. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.drained = resolve;
      this.pump();
    }).then(async () => {
      const workers = this.slots.splice(0).map((s) => s.worker);
      await Promise.all(workers.map((w) => w.terminate()));
    });
    return this.closing;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const task = this.queue[0]!;
      if (task.job.failed) {
        this.queue.shift();
        continue;
      }
      let slot = this.slots.find((s) => s.task === undefined);
      if (!slot && this.slots.length < this.size) slot = this.spawn();
      if (!slot) break;
      this.queue.shift();
      slot.task = task;
      slot.worker.ref();
      slot.worker.postMessage({
        id: task.id,
        url: task.ref.url,
        exportName: task.ref.exportName,
        args: task.args,
        start: task.range.start,
        end: task.range.end,
      });
    }
    if (this.drained && this.queue.length === 0 && this.slots.every((s) => s.task === undefined)) {
      const done = this.drained;
      this.drained = undefined;
      done();
    }
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { tsxLoaderUrl: tsxLoaderUrl() } });
    const slot: Slot = { worker, task: undefined };
    worker.unref();
    worker.on('message', (reply: TaskReply) => {
      const task = slot.task;
      if (!task || task.id !== reply.id) return;
      slot.task = undefined;
      worker.unref();
      if (reply.ok) this.complete(task, reply.result);
      else this.fail(task, reply.error ?? { message: 'unknown error' });
      this.pump();
    });
    worker.on('error', (error: Error) => {
      // The worker died (an uncaught error outside a task's promise, out of memory, ...): fail its task and replace it.
      const task = slot.task;
      slot.task = undefined;
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      if (task)
        this.fail(task, {
          name: error.name,
          message: error.message,
          ...(error.stack ? { stack: error.stack } : {}),
        });
      this.pump();
    });
    worker.on('exit', () => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      const task = slot.task;
      slot.task = undefined;
      if (task) this.fail(task, { message: 'worker exited while running the task' });
      this.pump();
    });
    this.slots.push(slot);
    return slot;
  }

  private complete(task: Task, result: unknown): void {
    const job = task.job;
    if (job.failed) return;
    job.results[task.index] = result;
    job.remaining -= 1;
    if (job.remaining === 0) job.resolve(job.results);
  }

  private fail(task: Task, error: { name?: string; message: string; stack?: string }): void {
    const job = task.job;
    if (job.failed) return;
    job.failed = true;
    job.reject(
      new KernelError(
        `kernel ${task.kernel} failed on range [${task.range.start}, ${task.range.end}): ${error.message}`,
        {
          kernel: task.kernel,
          module: task.ref.url,
          range: task.range,
          workerErrorName: error.name,
          workerStack: error.stack,
        },
      ),
    );
  }
}

function checkShared(kernel: string, args: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(args)) {
    const items = Array.isArray(value) ? value : [value];
    items.forEach((item, i) => {
      if (isTypedArray(item) && !(item.buffer instanceof SharedArrayBuffer)) {
        const where = Array.isArray(value) ? `${key}[${i}]` : key;
        throw new InvalidArgumentError(
          `kernel ${kernel}: argument ${where} is a typed array over a plain ArrayBuffer; use allocShared/toShared so workers share it`,
          { kernel, argument: where },
        );
      }
    });
  }
}
