// AssemblyScript (compiled by `asc` into dist/wasm/ties-banded.wasm by the package's build; not
// TypeScript for tsc: v128, f32x4, i32, ... are AssemblyScript's). The hot loop of tiesMergeBanded
// (src/kernels/ties-raw.ts) in WebAssembly SIMD, for one block of at most BLOCK elements that the
// caller (src/kernels/ties-banded-wasm.ts) copied into this instance's scratch, or (runAt) where they lie
// in the imported shared memory (a KernelMemory the caller's buffers are carved from). It gives the JS kernel's
// bytes, counts and lists, or it declines the block, which the JS kernel then does: any non-finite
// delta (hence any NaN/Inf input) or NaN result. So every NaN bit pattern, the first-NaN/Inf search
// and tiesOneExact stay the JS kernel's. `fixup` does the same for tiesFixupRaw's loop over the open
// elements once the thresholds are known (the same arithmetic, ties with a threshold counted in
// index order), declining to the JS fix-up likewise. At the end of the file: task_arithmetic of three
// bf16 models (src/kernels/task-arithmetic-wasm.ts) on the same input and output blocks.
//
// Per element, as the JS kernel does it, four lanes at a time:
//   - bf16 -> f32 is `bits << 16`; d_j = f32(x_j - b): fround of the f64 difference of two f32 values
//     equals the f32 difference (double rounding is harmless for + and - when 53 >= 2 * 24 + 2);
//   - e_j = |d_j|; kept k_j = e_j >= hi_j, open when neither kept nor e_j < lo_j (f32 compares: the
//     same as comparing the f32 values in f64);
//   - in f64: a_j = w_j * (d_j if kept, else +0); the elected sign sg = +1 / -1 from s = a0 + a1 + a2;
//     agreeing: sg * a_j > 0; num = the sum of the agreeing a_j; den = 0 + the agreeing w_j (0 -> 1:
//     divisorTable's expression); r = f32(num / den, or num); out = f32(b + (0 + lambda * r)); bf16
//     by floatToBf16's integer rounding.
// Signed zeros. The JS adds w_j * (d_j * 0) for a dropped entry and a_j * 0 for a disagreeing one,
// zeros of either sign, where this adds w_j * +0 or +0. A zero added to a non-zero value leaves it
// unchanged, and a sum of non-zero values of one sign (num) or of any signs (s) is the same whatever
// zeros lie between them; a sum that starts at +0 (the JS's num and den, and den here) is never -0
// (exact cancellation gives +0, -0 needs -0 + -0). So num and den are the same numbers, zero signs
// included, and s differs at most in the sign of a zero. sg: the JS takes s >= 0 (+1 for -0), this
// copysign(1, s) (-1 for -0); s = -0 here only when every a_j is -0, and then nothing agrees with
// either sign. With finite deltas, |w_j| < 1e200 and a finite lambda (the caller's precondition)
// every a_j, s, num and den is finite, so r is never NaN; a NaN result (lambda = 0 times an infinite
// r) declines the block.

/** Elements per block (the JS kernel's chunk). */
const BLOCK: i32 = 8192;

// The layout, from the 16-byte aligned heap base: four bf16 inputs (base first), the bf16 output,
// per model the open deltas (f32 bits), the open indices, at the open elements the inputs' bf16 bits
// (two lists: base | model 0 << 16, model 1 | model 2 << 16), the compress table, the lane masks, the
// counts.
let inputs: usize = 0;
let output: usize = 0;
let opens: usize = 0;
let fixes: usize = 0;
let packed: usize = 0;
let table: usize = 0;
let lanes: usize = 0;
let counts: usize = 0;
const IN_BYTES: usize = <usize>BLOCK * 2;
/** A list's room: a block's entries and one v128 store past the last. */
const LIST_BYTES: usize = <usize>BLOCK * 4 + 16;

// The merge's parameters (setup).
let w0: f64 = 0;
let w1: f64 = 0;
let w2: f64 = 0;
let lambda: f64 = 0;
let normalize: bool = false;
let lo0: f32 = 0;
let lo1: f32 = 0;
let lo2: f32 = 0;
let hi0: f32 = 0;
let hi1: f32 = 0;
let hi2: f32 = 0;

/**
 * Lays out this instance's scratch in pages it grows the memory by (the memory is imported and shared:
 * every instance on it, one per thread, gets its own pages this way, and the rest of the memory is the
 * caller's), and fills the compress table; returns the block size, 0 when the memory cannot grow.
 */
export function init(): i32 {
  const bytes: usize = 5 * IN_BYTES + 6 * LIST_BYTES + 256 + 256 + 64 + 16;
  const first = memory.grow(<i32>((bytes + 0xffff) >> 16));
  if (first < 0) return 0;
  inputs = (<usize>first) << 16;
  output = inputs + 4 * IN_BYTES;
  opens = output + IN_BYTES;
  fixes = opens + 3 * LIST_BYTES;
  packed = fixes + LIST_BYTES;
  table = packed + 2 * LIST_BYTES;
  lanes = table + 256;
  counts = lanes + 256;
  // per 4-bit lane mask: the byte indices that move the set lanes (i32) to the front, in order
  for (let mask = 0; mask < 16; mask++) {
    let at = 0;
    for (let lane = 0; lane < 4; lane++) {
      if ((mask & (1 << lane)) == 0) continue;
      for (let byte = 0; byte < 4; byte++) store<u8>(table + (mask << 4) + at++, <u8>(lane * 4 + byte));
    }
    while (at < 16) store<u8>(table + (mask << 4) + at++, 0x80); // swizzle: 0x80 gives 0
    // per 4-bit lane mask: the i32x4 mask with those lanes set
    for (let lane = 0; lane < 4; lane++)
      store<i32>(lanes + (mask << 4) + (lane << 2), (mask & (1 << lane)) != 0 ? -1 : 0);
  }
  return BLOCK;
}

/** Input k's block (0: the base, 1-3: the models), BLOCK bf16 values. */
export function inputPtr(k: i32): usize {
  return inputs + <usize>k * IN_BYTES;
}

/** The block's bf16 output. */
export function outputPtr(): usize {
  return output;
}

/** Model j's open deltas of the block (f32 bits, in index order). */
export function openPtr(j: i32): usize {
  return opens + <usize>j * LIST_BYTES;
}

/** The block's open indices (absolute, ascending). */
export function fixPtr(): usize {
  return fixes;
}

/** The block's open elements' bf16 inputs: k = 0 base | model 0 << 16, k = 1 model 1 | model 2 << 16. */
export function packedPtr(k: i32): usize {
  return packed + <usize>k * LIST_BYTES;
}

/**
 * After run: i32 [open indices, open deltas of model 0, 1, 2, kept (above) of model 0, 1, 2]; after
 * fixup, from index 8: the ties seen per model.
 */
export function countsPtr(): usize {
  return counts;
}

/** Sets the merge's parameters (lo / hi: the JS kernel's f32 thresholds, -1, Infinity or NaN). */
export function setup(
  w0_: f64,
  w1_: f64,
  w2_: f64,
  lambda_: f64,
  normalize_: i32,
  lo0_: f64,
  lo1_: f64,
  lo2_: f64,
  hi0_: f64,
  hi1_: f64,
  hi2_: f64,
): void {
  w0 = w0_;
  w1 = w1_;
  w2 = w2_;
  lambda = lambda_;
  normalize = normalize_ != 0;
  lo0 = <f32>lo0_;
  lo1 = <f32>lo1_;
  lo2 = <f32>lo2_;
  hi0 = <f32>hi0_;
  hi1 = <f32>hi1_;
  hi2 = <f32>hi2_;
}

// The fix-up's parameters (setupFixup; the weights, lambda and normalize are setup's).
let t0: f32 = 0;
let t1: f32 = 0;
let t2: f32 = 0;
let quota0: i32 = 0;
let quota1: i32 = 0;
let quota2: i32 = 0;

/** The fix-up's thresholds (the JS fix-up's f32 values: -1, a key's float or NaN) and tie quotas. */
export function setupFixup(t0_: f64, t1_: f64, t2_: f64, quota0_: i32, quota1_: i32, quota2_: i32): void {
  t0 = <f32>t0_;
  t1 = <f32>t1_;
  t2 = <f32>t2_;
  quota0 = quota0_;
  quota1 = quota1_;
  quota2 = quota2_;
}

/** Stores the lanes of v selected by `mask` (4 bits) at dst, packed in lane order; returns dst past them. */
function compress(v: v128, mask: i32, dst: usize): usize {
  v128.store(dst, i8x16.swizzle(v, v128.load(table + ((<usize>mask) << 4))));
  return dst + ((<usize>popcnt(mask)) << 2);
}

class Pair {
  /**
   * The merged values (f32, in lanes 0 and 1) of the elements in lanes 0 and 1 of b (the base, f32)
   * and q0-q2 (the kept deltas, f32), as electedMean3 and the JS kernel's last step compute them.
   */
  @inline
  static merge(
    b: v128,
    q0: v128,
    q1: v128,
    q2: v128,
    W0: v128,
    W1: v128,
    W2: v128,
    LAMBDA: v128,
    norm: bool,
  ): v128 {
    const ZERO = f64x2.splat(0);
    const a0 = f64x2.mul(W0, f64x2.promote_low_f32x4(q0));
    const a1 = f64x2.mul(W1, f64x2.promote_low_f32x4(q1));
    const a2 = f64x2.mul(W2, f64x2.promote_low_f32x4(q2));
    // the elected sign +1 / -1 (s >= 0: positive); copysign gives -1 for s = -0, which only a sum of
    // zeros is, and then no entry agrees either way
    const sg = v128.or(f64x2.splat(1), v128.and(f64x2.add(f64x2.add(a0, a1), a2), f64x2.splat(-0.0)));
    const g0 = f64x2.gt(f64x2.mul(sg, a0), ZERO);
    const g1 = f64x2.gt(f64x2.mul(sg, a1), ZERO);
    const g2 = f64x2.gt(f64x2.mul(sg, a2), ZERO);
    let r = f64x2.add(f64x2.add(v128.and(a0, g0), v128.and(a1, g1)), v128.and(a2, g2));
    if (norm) {
      let den = f64x2.add(f64x2.add(f64x2.add(ZERO, v128.and(W0, g0)), v128.and(W1, g1)), v128.and(W2, g2));
      den = v128.bitselect(f64x2.splat(1), den, f64x2.eq(den, ZERO));
      r = f64x2.div(r, den);
    }
    r = f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(r));
    return f32x4.demote_f64x2_zero(
      f64x2.add(f64x2.promote_low_f32x4(b), f64x2.add(ZERO, f64x2.mul(LAMBDA, r))),
    );
  }

  /** merge over all four lanes (two pairs): the merged f32 values of the four elements. */
  @inline
  static merge4(
    b: v128,
    q0: v128,
    q1: v128,
    q2: v128,
    W0: v128,
    W1: v128,
    W2: v128,
    LAMBDA: v128,
    norm: bool,
  ): v128 {
    const low = Pair.merge(b, q0, q1, q2, W0, W1, W2, LAMBDA, norm);
    const high = Pair.merge(
      v128.shuffle<i64>(b, b, 1, 1),
      v128.shuffle<i64>(q0, q0, 1, 1),
      v128.shuffle<i64>(q1, q1, 1, 1),
      v128.shuffle<i64>(q2, q2, 1, 1),
      W0,
      W1,
      W2,
      LAMBDA,
      norm,
    );
    return v128.shuffle<i64>(low, high, 0, 2);
  }

  /** floatToBf16 of four f32 values that are not NaN: (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16, in [0, 0xffff]. */
  @inline
  static bf16(x: v128): v128 {
    const lsb = v128.and(i32x4.shr_u(x, 16), i32x4.splat(1));
    return i32x4.shr_u(i32x4.add(i32x4.add(x, i32x4.splat(0x7fff)), lsb), 16);
  }
}

/**
 * The block's m elements (a multiple of 4), the first at absolute index `start`, from the inputs copied
 * to inputPtr(0-3) into outputPtr: returns 0 when done (output, lists and counts written), 1 when the
 * JS kernel must do this block (nothing of it may be used).
 */
export function run(m: i32, start: i32): i32 {
  return runAt(m, start, inputs, inputs + IN_BYTES, inputs + 2 * IN_BYTES, inputs + 3 * IN_BYTES, output);
}

/**
 * run on inputs and output where they lie in the memory (the caller's shared buffers: no copies): the
 * base's m bf16 values at inB, the models' at in0-in2, the output to out. The lists and counts go to
 * this instance's scratch as for run; on a declined block out may hold a part of the results, which
 * the JS kernel then overwrites.
 */
export function runAt(m: i32, start: i32, inB: usize, in0: usize, in1: usize, in2: usize, out: usize): i32 {
  const W0 = f64x2.splat(w0);
  const W1 = f64x2.splat(w1);
  const W2 = f64x2.splat(w2);
  const LAMBDA = f64x2.splat(lambda);
  const LO0 = f32x4.splat(lo0);
  const LO1 = f32x4.splat(lo1);
  const LO2 = f32x4.splat(lo2);
  const HI0 = f32x4.splat(hi0);
  const HI1 = f32x4.splat(hi1);
  const HI2 = f32x4.splat(hi2);
  const INF = i32x4.splat(0x7f800000);
  const IOTA = i32x4(0, 1, 2, 3);
  const norm = normalize;
  let fixAt = fixes;
  let open0 = opens;
  let open1 = opens + LIST_BYTES;
  let open2 = opens + 2 * LIST_BYTES;
  let above0 = i32x4.splat(0);
  let above1 = i32x4.splat(0);
  let above2 = i32x4.splat(0);
  let largest = i32x4.splat(0); // the largest key (f32 bits of |d|) so far: NaN/Inf from 0x7f800000
  let fine = i32x4.splat(-1); // no NaN result so far
  for (let i = 0; i < m; i += 4) {
    const p = (<usize>i) << 1;
    const b = i32x4.shl(v128.load16x4_u(inB + p), 16);
    const d0 = f32x4.sub(i32x4.shl(v128.load16x4_u(in0 + p), 16), b);
    const d1 = f32x4.sub(i32x4.shl(v128.load16x4_u(in1 + p), 16), b);
    const d2 = f32x4.sub(i32x4.shl(v128.load16x4_u(in2 + p), 16), b);
    const e0 = f32x4.abs(d0);
    const e1 = f32x4.abs(d1);
    const e2 = f32x4.abs(d2);
    largest = i32x4.max_s(largest, i32x4.max_s(e0, i32x4.max_s(e1, e2)));
    const k0 = f32x4.ge(e0, HI0);
    const k1 = f32x4.ge(e1, HI1);
    const k2 = f32x4.ge(e2, HI2);
    above0 = i32x4.sub(above0, k0);
    above1 = i32x4.sub(above1, k1);
    above2 = i32x4.sub(above2, k2);
    // decided: dropped (below lo) or kept; the others are open
    const c0 = v128.or(f32x4.lt(e0, LO0), k0);
    const c1 = v128.or(f32x4.lt(e1, LO1), k1);
    const c2 = v128.or(f32x4.lt(e2, LO2), k2);
    if (!i32x4.all_true(v128.and(c0, v128.and(c1, c2)))) {
      // the open elements' indices, and per model its open deltas, in index order
      const o0 = i32x4.bitmask(c0) ^ 15;
      const o1 = i32x4.bitmask(c1) ^ 15;
      const o2 = i32x4.bitmask(c2) ^ 15;
      const open = o0 | o1 | o2;
      const at = fixAt - fixes;
      fixAt = compress(i32x4.add(i32x4.splat(start + i), IOTA), open, fixAt);
      const x01 = v128.or(v128.load16x4_u(inB + p), i32x4.shl(v128.load16x4_u(in0 + p), 16));
      const x23 = v128.or(v128.load16x4_u(in1 + p), i32x4.shl(v128.load16x4_u(in2 + p), 16));
      compress(x01, open, packed + at);
      compress(x23, open, packed + LIST_BYTES + at);
      open0 = compress(d0, o0, open0);
      open1 = compress(d1, o1, open1);
      open2 = compress(d2, o2, open2);
    }
    // the kept deltas (a dropped one as +0), then f64, two lanes at a time
    const q0 = v128.and(d0, k0);
    const q1 = v128.and(d1, k1);
    const q2 = v128.and(d2, k2);
    const res = Pair.merge4(b, q0, q1, q2, W0, W1, W2, LAMBDA, norm);
    fine = v128.and(fine, f32x4.eq(res, res));
    const bf = Pair.bf16(res);
    v128.store64_lane(out + p, i16x8.narrow_i32x4_u(bf, bf), 0);
  }
  if (!i32x4.all_true(v128.and(fine, i32x4.lt_s(largest, INF)))) return 1;
  store<i32>(counts, <i32>((fixAt - fixes) >> 2));
  store<i32>(counts, <i32>((open0 - opens) >> 2), 4);
  store<i32>(counts, <i32>((open1 - opens - LIST_BYTES) >> 2), 8);
  store<i32>(counts, <i32>((open2 - opens - 2 * LIST_BYTES) >> 2), 12);
  store<i32>(counts, laneSum(above0), 16);
  store<i32>(counts, laneSum(above1), 20);
  store<i32>(counts, laneSum(above2), 24);
  return 0;
}

function laneSum(v: v128): i32 {
  return (
    i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3)
  );
}

class Tie {
  /**
   * The kept lanes of e (|delta|) against threshold T: above it, or equal to it within the quota, the
   * ties counted in lane order from the count at `counter` (stored back).
   */
  @inline
  static kept(e: v128, T: v128, quota: i32, counter: usize): v128 {
    const k = f32x4.gt(e, T);
    const ties = i32x4.bitmask(f32x4.eq(e, T));
    if (ties == 0) return k;
    let bits = i32x4.bitmask(k);
    let seen = load<i32>(counter);
    for (let lane = 0; lane < 4; lane++) {
      if ((ties & (1 << lane)) == 0) continue;
      if (seen < quota) bits |= 1 << lane;
      seen++;
    }
    store<i32>(counter, seen);
    return v128.load(lanes + ((<usize>bits) << 4));
  }
}

/**
 * tiesFixupRaw's loop over m open elements (a multiple of 4) whose packed inputs the caller copied to
 * packedPtr(0-1): the bf16 results at outputPtr, the ties seen per model (from s0-s2) in the counts.
 * Returns 0 when done, 1 when the JS fix-up must do these elements (a non-finite delta or a NaN
 * result; the counts are then of no use). The deltas as run computes them.
 */
export function fixup(m: i32, s0: i32, s1: i32, s2: i32): i32 {
  const W0 = f64x2.splat(w0);
  const W1 = f64x2.splat(w1);
  const W2 = f64x2.splat(w2);
  const LAMBDA = f64x2.splat(lambda);
  const T0 = f32x4.splat(t0);
  const T1 = f32x4.splat(t1);
  const T2 = f32x4.splat(t2);
  const INF = i32x4.splat(0x7f800000);
  const HIGH = i32x4.splat(<i32>0xffff0000);
  const norm = normalize;
  const seen = counts + 32;
  store<i32>(seen, s0);
  store<i32>(seen, s1, 4);
  store<i32>(seen, s2, 8);
  let largest = i32x4.splat(0);
  let fine = i32x4.splat(-1);
  for (let i = 0; i < m; i += 4) {
    const p = (<usize>i) << 2;
    const x01 = v128.load(packed + p);
    const x23 = v128.load(packed + LIST_BYTES + p);
    const b = i32x4.shl(x01, 16);
    const d0 = f32x4.sub(v128.and(x01, HIGH), b);
    const d1 = f32x4.sub(i32x4.shl(x23, 16), b);
    const d2 = f32x4.sub(v128.and(x23, HIGH), b);
    const e0 = f32x4.abs(d0);
    const e1 = f32x4.abs(d1);
    const e2 = f32x4.abs(d2);
    largest = i32x4.max_s(largest, i32x4.max_s(e0, i32x4.max_s(e1, e2)));
    const q0 = v128.and(d0, Tie.kept(e0, T0, quota0, seen));
    const q1 = v128.and(d1, Tie.kept(e1, T1, quota1, seen + 4));
    const q2 = v128.and(d2, Tie.kept(e2, T2, quota2, seen + 8));
    const res = Pair.merge4(b, q0, q1, q2, W0, W1, W2, LAMBDA, norm);
    fine = v128.and(fine, f32x4.eq(res, res));
    const bf = Pair.bf16(res);
    v128.store64_lane(output + ((<usize>i) << 1), i16x8.narrow_i32x4_u(bf, bf), 0);
  }
  if (!i32x4.all_true(v128.and(fine, i32x4.lt_s(largest, INF)))) return 1;
  return 0;
}

// ---- task_arithmetic of three bf16 models into bf16 (the executor's taskArithmeticBf16, libs/merge),
// on the same input and output blocks. Per element, as the JS does it: v = the base's f32; d_j =
// f32(x_j - v) (f32x4.sub: see above); in f64, in model order from +0: s = 0 + w0 * d0 + w1 * d1 +
// w2 * d2 (the `0 +` makes an all -0 sum +0, as the JS's); r = f32(v + scale * s) (the JS's store into
// a Float32Array: one rounding from f64); bf16 by floatToBf16's integer rounding. A block with a NaN/Inf
// input (the JS also finds its first index per input) or a NaN result (its bits are the JS's to choose)
// is declined. Without NaN every step is an IEEE operation with one result, so the bytes are the JS's.

let scale: f64 = 0;

/** Sets task_arithmetic's weights and its factor (lambda, divided by the weights' sum when normalized). */
export function setupTaskArithmetic(w0_: f64, w1_: f64, w2_: f64, scale_: f64): void {
  w0 = w0_;
  w1 = w1_;
  w2 = w2_;
  scale = scale_;
}

class Sum {
  /** The merged f32 values (lanes 0 and 1) of the elements in lanes 0 and 1 of b (the base) and d0-d2. */
  @inline
  static pair(b: v128, d0: v128, d1: v128, d2: v128, W0: v128, W1: v128, W2: v128, SCALE: v128): v128 {
    let s = f64x2.add(f64x2.splat(0), f64x2.mul(W0, f64x2.promote_low_f32x4(d0)));
    s = f64x2.add(s, f64x2.mul(W1, f64x2.promote_low_f32x4(d1)));
    s = f64x2.add(s, f64x2.mul(W2, f64x2.promote_low_f32x4(d2)));
    return f32x4.demote_f64x2_zero(f64x2.add(f64x2.promote_low_f32x4(b), f64x2.mul(SCALE, s)));
  }

  /** The merged values of four elements (f32 bits of the base b and the deltas d0-d2), as bf16 in i32 lanes. */
  @inline
  static quad(b: v128, d0: v128, d1: v128, d2: v128, W0: v128, W1: v128, W2: v128, SCALE: v128): v128 {
    const low = Sum.pair(b, d0, d1, d2, W0, W1, W2, SCALE);
    const high = Sum.pair(
      v128.shuffle<i64>(b, b, 1, 1),
      v128.shuffle<i64>(d0, d0, 1, 1),
      v128.shuffle<i64>(d1, d1, 1, 1),
      v128.shuffle<i64>(d2, d2, 1, 1),
      W0,
      W1,
      W2,
      SCALE,
    );
    return v128.shuffle<i64>(low, high, 0, 2);
  }
}

/**
 * task_arithmetic of the block's m elements (a multiple of 8) from inputPtr(0-3) into outputPtr:
 * returns 0 when done, 1 when the JS must do this block (a NaN/Inf input or a NaN result).
 */
export function taskArithmetic(m: i32): i32 {
  const W0 = f64x2.splat(w0);
  const W1 = f64x2.splat(w1);
  const W2 = f64x2.splat(w2);
  const SCALE = f64x2.splat(scale);
  const EXP = i16x8.splat(0x7f80);
  const inB = inputs;
  const in0 = inputs + IN_BYTES;
  const in1 = inputs + 2 * IN_BYTES;
  const in2 = inputs + 3 * IN_BYTES;
  let special = i16x8.splat(0); // lanes with a NaN/Inf input so far
  let fine = i32x4.splat(-1); // no NaN result so far
  for (let i = 0; i < m; i += 8) {
    const p = (<usize>i) << 1;
    const xb = v128.load(inB + p);
    const x0 = v128.load(in0 + p);
    const x1 = v128.load(in1 + p);
    const x2 = v128.load(in2 + p);
    special = v128.or(
      special,
      v128.or(
        v128.or(i16x8.eq(v128.and(xb, EXP), EXP), i16x8.eq(v128.and(x0, EXP), EXP)),
        v128.or(i16x8.eq(v128.and(x1, EXP), EXP), i16x8.eq(v128.and(x2, EXP), EXP)),
      ),
    );
    const bl = i32x4.shl(i32x4.extend_low_i16x8_u(xb), 16);
    const bh = i32x4.shl(i32x4.extend_high_i16x8_u(xb), 16);
    const rl = Sum.quad(
      bl,
      f32x4.sub(i32x4.shl(i32x4.extend_low_i16x8_u(x0), 16), bl),
      f32x4.sub(i32x4.shl(i32x4.extend_low_i16x8_u(x1), 16), bl),
      f32x4.sub(i32x4.shl(i32x4.extend_low_i16x8_u(x2), 16), bl),
      W0,
      W1,
      W2,
      SCALE,
    );
    const rh = Sum.quad(
      bh,
      f32x4.sub(i32x4.shl(i32x4.extend_high_i16x8_u(x0), 16), bh),
      f32x4.sub(i32x4.shl(i32x4.extend_high_i16x8_u(x1), 16), bh),
      f32x4.sub(i32x4.shl(i32x4.extend_high_i16x8_u(x2), 16), bh),
      W0,
      W1,
      W2,
      SCALE,
    );
    fine = v128.and(fine, v128.and(f32x4.eq(rl, rl), f32x4.eq(rh, rh)));
    v128.store(output + p, i16x8.narrow_i32x4_u(Pair.bf16(rl), Pair.bf16(rh)));
  }
  return i32x4.all_true(fine) && !v128.any_true(special) ? 0 : 1;
}
