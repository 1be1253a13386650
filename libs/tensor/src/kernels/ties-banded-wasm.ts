/**
 * tiesMergeBanded in WebAssembly SIMD (assembly/ties-banded.ts, built into dist/wasm/ties-banded.wasm
 * by the package's build), with the scalar JS kernel (tiesMergeBandedJs) as its reference and fallback.
 * Each block of CHUNK elements of the four inputs is copied into the module's memory and merged there,
 * the bf16 output copied back; or, when the caller's buffers lie in a KernelMemory (args.memory: the
 * executor's raw slots), an instance on that memory reads and writes them in place. The open indices,
 * deltas and packed inputs and the counts are copied back into the range's BandedRun. A block the
 * module declines (a NaN/Inf input or delta, a NaN result: rare) is done by the JS kernel's chunk
 * function on the same run, so the result is the JS kernel's in every field.
 * The fix-up of the open elements (tiesFixup) runs in the module the same way, from their packed inputs.
 *
 * The module is compiled once per thread (each pool worker, and the main thread when it runs the kernel
 * itself), on first use, and instantiated on a small memory of the thread's own, and on the last
 * KernelMemory a call brought.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FailedPreconditionError, InvalidArgumentError } from '@hm3/errors';
import type { KernelMemoryRef } from './kernel-memory.js';
import {
  bandedChunk,
  bandedResult,
  bandedRun,
  thresholdValue,
  tiesFixupRaw,
  tiesMergeBandedJs,
  type TiesFixupRawArgs,
  type TiesKeep,
  type TiesMergeBandedArgs,
  type TiesMergeBandedResult,
} from './ties-raw.js';

// The WebAssembly API as used here (the workspace's TypeScript libs declare no WebAssembly global).
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => object;
};

/** Pages of the memory each thread's own instance runs in (its scratch, a few pages, grown by init). */
const OWN_MEMORY_PAGES = 64;

/**
 * The package's build writes the module into dist/wasm (shipped with dist, ignored by git); src/kernels
 * (tests, tsx) and dist/kernels are at the same depth, so one relative URL finds it from both.
 */
const WASM_URL = new URL('../../dist/wasm/ties-banded.wasm', import.meta.url);

interface Exports {
  memory: { readonly buffer: ArrayBuffer };
  init(): number;
  inputPtr(k: number): number;
  outputPtr(): number;
  openPtr(j: number): number;
  fixPtr(): number;
  packedPtr(k: number): number;
  countsPtr(): number;
  setup(
    w0: number,
    w1: number,
    w2: number,
    lambda: number,
    normalize: number,
    lo0: number,
    lo1: number,
    lo2: number,
    hi0: number,
    hi1: number,
    hi2: number,
  ): void;
  run(m: number, start: number): number;
  runAt(m: number, start: number, inB: number, in0: number, in1: number, in2: number, out: number): number;
  setupFixup(t0: number, t1: number, t2: number, quota0: number, quota1: number, quota2: number): void;
  fixup(m: number, s0: number, s1: number, s2: number): number;
  setupTaskArithmetic(w0: number, w1: number, w2: number, scale: number): void;
  taskArithmetic(m: number): number;
}

/** The loaded module of this thread (also the task_arithmetic kernel's: task-arithmetic-wasm.ts). */
export interface WasmKernel {
  readonly exports: Exports;
  readonly block: number;
  /** Views of the module's memory (it never grows after init). */
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
}

let compiled: object | null | undefined;
let kernel: WasmKernel | null | undefined;
let unavailable = '';
/** The instance on the caller's KernelMemory last used on this thread (one merge's at a time). */
let inPlace: { id: number; kernel: WasmKernel | null } | null = null;
/**
 * Blocks the module merged, blocks it declined (left to the JS kernel) and blocks it ran in place, on
 * this thread so far; the same for fix-ups.
 */
const stats = { blocks: 0, declined: 0, inPlace: 0, fixups: 0, fixupsDeclined: 0 };

/** The module on this thread, compiled and instantiated on first use; null when it does not load. */
export function loadWasmKernel(): WasmKernel | null {
  return load();
}

function load(): WasmKernel | null {
  if (kernel !== undefined) return kernel;
  try {
    compiled = new WebAssembly.Module(readFileSync(fileURLToPath(WASM_URL)));
    // the module imports a shared memory (so it can run on a caller's KernelMemory too); this thread's
    // own instance gets a small one
    kernel = instantiate(
      compiled,
      new WebAssembly.Memory({ initial: 0, maximum: OWN_MEMORY_PAGES, shared: true }),
    );
  } catch (error) {
    // no WebAssembly SIMD or threads, or the package was built without its wasm: the JS kernel does the work
    unavailable = error instanceof Error ? error.message : String(error);
    compiled = null;
    kernel = null;
  }
  return kernel;
}

/** An instance of the module on `memory`, its scratch laid out (init), with views of that scratch. */
function instantiate(module: object, memory: object): WasmKernel {
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Exports;
  const block = exports.init();
  if (block <= 0) throw new Error('the module could not grow its memory');
  // the instance's scratch lies below the memory's size now; later growth by other threads leaves it be
  const buffer = exports.memory.buffer;
  return {
    exports,
    block,
    u16: new Uint16Array(buffer),
    u32: new Uint32Array(buffer),
    i32: new Int32Array(buffer),
  };
}

/**
 * The instance on the caller's memory (made on first use on this thread), or null when the module does
 * not load or cannot run on that memory (it could not grow it by its scratch): the caller then copies.
 */
function onMemory(ref: KernelMemoryRef): WasmKernel | null {
  if (load() === null) return null;
  if (inPlace?.id !== ref.id) {
    let onIt: WasmKernel | null;
    try {
      onIt = instantiate(compiled!, ref.memory);
    } catch {
      onIt = null;
    }
    inPlace = { id: ref.id, kernel: onIt };
  }
  return inPlace.kernel;
}

/** Which tiesMergeBanded runs on this thread: 'wasm', or 'js' with the reason the module did not load. */
export function tiesBandedBackend(): { kind: 'wasm' } | { kind: 'js'; reason: string } {
  return load() === null ? { kind: 'js', reason: unavailable } : { kind: 'wasm' };
}

/**
 * Blocks the module merged and declined (and of them, those it ran in place on a caller's KernelMemory),
 * and fix-up blocks it did and declined, on this thread so far (a copy).
 */
export function tiesBandedStats(): {
  blocks: number;
  declined: number;
  inPlace: number;
  fixups: number;
  fixupsDeclined: number;
} {
  return { ...stats };
}

/**
 * tiesMergeBanded (ties-raw.ts) over [start, end): the WebAssembly SIMD kernel when the module loads
 * and the weights allow it, else the JS kernel; the same result either way.
 */
export function tiesMergeBanded(
  args: TiesMergeBandedArgs,
  start: number,
  end: number,
): TiesMergeBandedResult {
  const k = load();
  if (k === null || !wasmApplies(args)) return tiesMergeBandedJs(args, start, end);
  return runWasm(k, args, start, end);
}

/** tiesMergeBanded on the WebAssembly kernel only (throws when it cannot run): for tests and benches. */
export function tiesMergeBandedWasm(
  args: TiesMergeBandedArgs,
  start: number,
  end: number,
): TiesMergeBandedResult {
  return runWasm(requireWasm(args), args, start, end);
}

/** The module for the *Wasm entry points: a typed error where it did not load or does not apply to `args`. */
function requireWasm(args: { readonly weights: readonly number[]; readonly lambda: number }): WasmKernel {
  const k = load();
  if (k === null) {
    throw new FailedPreconditionError(`the WebAssembly ties kernel is unavailable: ${unavailable}`, {
      module: fileURLToPath(WASM_URL),
    });
  }
  if (!wasmApplies(args)) {
    throw new InvalidArgumentError(
      'the WebAssembly ties kernel needs weights below 1e200 in magnitude and a finite lambda',
      { weights: args.weights, lambda: args.lambda },
    );
  }
  return k;
}

/**
 * The module's precondition: finite weights small enough that w * d stays finite for every finite f32
 * d (so a NaN can only come from a non-finite delta or the final step, which the module checks), and a
 * finite lambda.
 */
function wasmApplies(args: { readonly weights: readonly number[]; readonly lambda: number }): boolean {
  return args.weights.every((w) => Math.abs(w) < 1e200) && Number.isFinite(args.lambda);
}

/**
 * The banded pass in the module: in place on the instance on args.memory where there is one, else on
 * `own` (this thread's instance), the blocks copied in and out.
 */
function runWasm(
  own: WasmKernel,
  args: TiesMergeBandedArgs,
  start: number,
  end: number,
): TiesMergeBandedResult {
  const onCallers = args.memory === undefined ? null : onMemory(args.memory);
  const inPlace = onCallers !== null;
  const k = onCallers ?? own;
  const run = bandedRun(args, start, end);
  const { exports, u16, u32, i32 } = k;
  const [lo0, lo1, lo2] = run.lo;
  const [hi0, hi1, hi2] = run.hi;
  const { ties } = run;
  exports.setup(ties.w0, ties.w1, ties.w2, ties.lambda, ties.normalize ? 1 : 0, lo0, lo1, lo2, hi0, hi1, hi2);
  const inputs = [run.hb, run.h0, run.h1, run.h2];
  const inAt = inputs.map((_, j) => exports.inputPtr(j) >>> 1);
  const outAt = exports.outputPtr() >>> 1;
  const openAt = [0, 1, 2].map((j) => exports.openPtr(j) >>> 2);
  const fixAt = exports.fixPtr() >>> 2;
  const packedAt = [0, 1].map((j) => exports.packedPtr(j) >>> 2);
  const packed = run.packed;
  const countsAt = exports.countsPtr() >>> 2;
  const { lists, counts, above, fix } = run;
  // in place: the byte addresses of the inputs' and the output's first element in the module's memory
  const [atB, at0, at1, at2] = inputs.map((v) => v.byteOffset);
  const atOut = run.outBits.byteOffset;
  for (let a = start; a < end; a += k.block) {
    const m = Math.min(end, a + k.block) - a;
    // the module takes whole groups of 4; the JS kernel does the last 1-3 elements of the range
    const m4 = m & ~3;
    if (m4 > 0) {
      if (!inPlace) for (let j = 0; j < 4; j++) u16.set(inputs[j]!.subarray(a, a + m4), inAt[j]);
      stats.blocks++;
      if (inPlace) stats.inPlace++;
      const declined = inPlace
        ? exports.runAt(m4, a, atB! + 2 * a, at0! + 2 * a, at1! + 2 * a, at2! + 2 * a, atOut + 2 * a)
        : exports.run(m4, a);
      if (declined !== 0) {
        stats.declined++;
        bandedChunk(run, a, m);
        continue;
      }
      if (!inPlace) run.outBits.set(u16.subarray(outAt, outAt + m4), a);
      const fixed = i32[countsAt]!;
      if (run.fixed < fix.length) {
        const n = Math.min(fixed, fix.length - run.fixed);
        fix.set(u32.subarray(fixAt, fixAt + n), run.fixed);
        for (let j = 0; j < 2; j++) packed[j]!.set(u32.subarray(packedAt[j]!, packedAt[j]! + n), run.fixed);
      }
      run.fixed += fixed;
      for (let j = 0; j < 3; j++) {
        above[j]! += i32[countsAt + 4 + j]!;
        const list = lists[j] ?? null;
        if (list === null) continue; // 'all' and 'none' leave an entry open only when it is NaN/Inf
        const n = i32[countsAt + 1 + j]!;
        const at = counts[j]!;
        if (at < list.length)
          list.set(u32.subarray(openAt[j]!, openAt[j]! + Math.min(n, list.length - at)), at);
        counts[j] = at + n;
      }
    }
    if (m4 < m) bandedChunk(run, a + m4, m - m4);
  }
  return bandedResult(run);
}

/**
 * tiesFixupRaw (ties-raw.ts) given the open elements' `packed` inputs: in the WebAssembly module when
 * it loads and the weights allow it (blocks of the packed inputs copied into its memory, the bf16
 * results scattered back), else in JS; the same bytes either way. Blocks with a non-finite delta or a
 * NaN result, and the last 1-3 elements, are the JS fix-up's.
 */
export function tiesFixup(args: TiesFixupRawArgs): void {
  const k = load();
  if (k === null || args.packed === undefined || !wasmApplies(args)) {
    tiesFixupRaw(args);
    return;
  }
  fixupWasm(k, args, args.packed);
}

/** tiesFixup on the WebAssembly kernel only (throws when it cannot run): for tests and benches. */
export function tiesFixupWasm(args: TiesFixupRawArgs & { packed: Uint32Array[] }): void {
  fixupWasm(requireWasm(args), args, args.packed);
}

function fixupWasm(k: WasmKernel, args: TiesFixupRawArgs, packed: Uint32Array[]): void {
  const { exports, u16, u32, i32 } = k;
  const { fix, keep } = args;
  const [w0, w1, w2] = args.weights as [number, number, number];
  const [t0, t1, t2] = keep.map(thresholdValue) as [number, number, number];
  const quota = keep.map((r) => (r.kind === 'top' ? r.quota : 0));
  let seen = keep.map((r) => (r.kind === 'top' ? r.equalBefore : 0));
  exports.setup(w0, w1, w2, args.lambda, args.normalize ? 1 : 0, 0, 0, 0, 0, 0, 0);
  exports.setupFixup(t0, t1, t2, quota[0]!, quota[1]!, quota[2]!);
  const packedAt = [0, 1].map((j) => exports.packedPtr(j) >>> 2);
  const outAt = exports.outputPtr() >>> 1;
  const seenAt = (exports.countsPtr() >>> 2) + 8;
  const outBits = new Uint16Array(args.outRaw.buffer, args.outRaw.byteOffset, args.outRaw.byteLength >>> 1);
  /** The JS fix-up of fix[a, b), the ties counted from `seen`. */
  const js = (a: number, b: number) => {
    seen = tiesFixupRaw({
      ...args,
      keep: keep.map((r, j): TiesKeep => (r.kind === 'top' ? { ...r, equalBefore: seen[j]! } : r)),
      fix: fix.subarray(a, b),
      packed: packed.map((v) => v.subarray(a, b)),
    });
  };
  for (let a = 0; a < fix.length; a += k.block) {
    const m = Math.min(fix.length, a + k.block) - a;
    const m4 = m & ~3;
    if (m4 > 0) {
      for (let j = 0; j < 2; j++) u32.set(packed[j]!.subarray(a, a + m4), packedAt[j]);
      stats.fixups++;
      if (exports.fixup(m4, seen[0]!, seen[1]!, seen[2]!) === 0) {
        seen = [i32[seenAt]!, i32[seenAt + 1]!, i32[seenAt + 2]!];
        for (let i = 0; i < m4; i++) outBits[fix[a + i]!] = u16[outAt + i]!;
      } else {
        stats.fixupsDeclined++;
        js(a, a + m4);
      }
    }
    if (m4 < m) js(a + m4, a + m);
  }
}
