/**
 * A small reverse-mode autodiff over 2-D Float64Array tensors ([rows, cols], row-major). Each op
 * records its parents and a backward closure; `backward(loss)` walks the tape in reverse topological
 * order. Binary ops broadcast a 1-row or 1-column operand (and a 1x1 scalar) as numpy does.
 */
import { InvalidArgumentError } from '@hm3/errors';

export class Tensor {
  grad: Float64Array | null = null;

  constructor(
    readonly data: Float64Array,
    readonly rows: number,
    readonly cols: number,
    readonly requiresGrad = false,
    readonly parents: readonly Tensor[] = [],
    readonly backwardFn: ((out: Tensor) => void) | null = null,
  ) {
    if (data.length !== rows * cols) {
      throw new InvalidArgumentError(
        `tensor data has ${data.length} values, shape [${rows}, ${cols}] needs ${rows * cols}`,
        { field: 'shape' },
      );
    }
  }

  get size(): number {
    return this.rows * this.cols;
  }

  /** The gradient buffer, allocated on first use. */
  gradBuffer(): Float64Array {
    if (this.grad === null) this.grad = new Float64Array(this.data.length);
    return this.grad;
  }

  item(): number {
    return this.data[0] ?? Number.NaN;
  }

  at(r: number, c: number): number {
    return this.data[r * this.cols + c] ?? Number.NaN;
  }
}

let gradEnabled = true;

/** Runs `fn` without recording the tape (inference). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** A leaf tensor; `requiresGrad` marks a parameter. */
export function tensor(data: ArrayLike<number>, rows: number, cols: number, requiresGrad = false): Tensor {
  return new Tensor(Float64Array.from(data), rows, cols, requiresGrad);
}

/** The same values as a constant: gradients stop here. */
export function detach(a: Tensor): Tensor {
  return new Tensor(a.data, a.rows, a.cols);
}

export function zeros(rows: number, cols: number): Tensor {
  return new Tensor(new Float64Array(rows * cols), rows, cols);
}

export function param(rows: number, cols: number, init: (i: number) => number): Tensor {
  const d = new Float64Array(rows * cols);
  for (let i = 0; i < d.length; i++) d[i] = init(i);
  return new Tensor(d, rows, cols, true);
}

function result(
  data: Float64Array,
  rows: number,
  cols: number,
  parents: Tensor[],
  backwardFn: (out: Tensor) => void,
): Tensor {
  const needs = gradEnabled && parents.some((p) => p.requiresGrad);
  return needs ? new Tensor(data, rows, cols, true, parents, backwardFn) : new Tensor(data, rows, cols);
}

/** Back-propagates from `out` (a 1x1 loss unless `seed` gives d loss / d out). */
export function backward(out: Tensor, seed?: Float64Array): void {
  if (!out.requiresGrad)
    throw new InvalidArgumentError('backward() on a tensor that does not depend on any parameter', {
      field: 'out',
    });
  if (seed === undefined && out.size !== 1)
    throw new InvalidArgumentError(
      `backward() needs a seed for a non-scalar output [${out.rows}, ${out.cols}]`,
      { field: 'seed' },
    );
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: { t: Tensor; i: number }[] = [{ t: out, i: 0 }];
  seen.add(out);
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { t: Tensor; i: number };
    if (top.i < top.t.parents.length) {
      const p = top.t.parents[top.i++] as Tensor;
      if (p.requiresGrad && !seen.has(p)) {
        seen.add(p);
        stack.push({ t: p, i: 0 });
      }
    } else {
      order.push(top.t);
      stack.pop();
    }
  }
  const g = out.gradBuffer();
  if (seed === undefined) g[0] = (g[0] ?? 0) + 1;
  else for (let i = 0; i < g.length; i++) g[i] = (g[i] ?? 0) + (seed[i] ?? 0);
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k] as Tensor;
    if (t.backwardFn !== null && t.grad !== null) t.backwardFn(t);
  }
}

// ---------------------------------------------------------------- element-wise binary ops

function broadcastDim(a: number, b: number, what: string): number {
  if (a === b) return a;
  if (a === 1) return b;
  if (b === 1) return a;
  throw new InvalidArgumentError(`cannot broadcast ${what}: ${a} vs ${b}`, { field: 'shape' });
}

type Binary = (x: number, y: number) => number;
type BinaryGrad = (x: number, y: number, out: number) => number;

function binary(a: Tensor, b: Tensor, f: Binary, dfdx: BinaryGrad, dfdy: BinaryGrad): Tensor {
  const rows = broadcastDim(a.rows, b.rows, 'rows');
  const cols = broadcastDim(a.cols, b.cols, 'cols');
  const out = new Float64Array(rows * cols);
  const ars = a.rows === 1 ? 0 : a.cols;
  const acs = a.cols === 1 ? 0 : 1;
  const brs = b.rows === 1 ? 0 : b.cols;
  const bcs = b.cols === 1 ? 0 : 1;
  const ad = a.data;
  const bd = b.data;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      out[i * cols + j] = f(ad[i * ars + j * acs] as number, bd[i * brs + j * bcs] as number);
    }
  }
  return result(out, rows, cols, [a, b], (o) => {
    const go = o.grad as Float64Array;
    const ga = a.requiresGrad ? a.gradBuffer() : null;
    const gb = b.requiresGrad ? b.gradBuffer() : null;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const k = i * cols + j;
        const ia = i * ars + j * acs;
        const ib = i * brs + j * bcs;
        const x = ad[ia] as number;
        const y = bd[ib] as number;
        const g = go[k] as number;
        if (ga !== null) ga[ia] = (ga[ia] as number) + g * dfdx(x, y, out[k] as number);
        if (gb !== null) gb[ib] = (gb[ib] as number) + g * dfdy(x, y, out[k] as number);
      }
    }
  });
}

/**
 * Fast path for the hot ops: `b` has a's shape or is one row broadcast over a's rows. Op codes
 * 0 = add, 1 = sub, 2 = mul; monomorphic loops instead of per-element closures.
 */
function rowBinary(a: Tensor, b: Tensor, op: 0 | 1 | 2): Tensor {
  const rows = a.rows;
  const cols = a.cols;
  const n = rows * cols;
  const rowB = b.rows === 1 && rows !== 1;
  const ad = a.data;
  const bd = b.data;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const y = bd[rowB ? i % cols : i] as number;
    const x = ad[i] as number;
    out[i] = op === 0 ? x + y : op === 1 ? x - y : x * y;
  }
  return result(out, rows, cols, [a, b], (o) => {
    const go = o.grad as Float64Array;
    if (a.requiresGrad) {
      const ga = a.gradBuffer();
      for (let i = 0; i < n; i++)
        ga[i] =
          (ga[i] as number) +
          (op === 2 ? (go[i] as number) * (bd[rowB ? i % cols : i] as number) : (go[i] as number));
    }
    if (b.requiresGrad) {
      const gb = b.gradBuffer();
      for (let i = 0; i < n; i++) {
        const k = rowB ? i % cols : i;
        const g = go[i] as number;
        gb[k] = (gb[k] as number) + (op === 0 ? g : op === 1 ? -g : g * (ad[i] as number));
      }
    }
  });
}

function fastShape(a: Tensor, b: Tensor): boolean {
  return b.cols === a.cols && (b.rows === a.rows || b.rows === 1);
}

export const add = (a: Tensor, b: Tensor): Tensor =>
  fastShape(a, b)
    ? rowBinary(a, b, 0)
    : binary(
        a,
        b,
        (x, y) => x + y,
        () => 1,
        () => 1,
      );
export const sub = (a: Tensor, b: Tensor): Tensor =>
  fastShape(a, b)
    ? rowBinary(a, b, 1)
    : binary(
        a,
        b,
        (x, y) => x - y,
        () => 1,
        () => -1,
      );
export const mul = (a: Tensor, b: Tensor): Tensor =>
  fastShape(a, b)
    ? rowBinary(a, b, 2)
    : binary(
        a,
        b,
        (x, y) => x * y,
        (_x, y) => y,
        (x) => x,
      );
export const div = (a: Tensor, b: Tensor): Tensor =>
  binary(
    a,
    b,
    (x, y) => x / y,
    (_x, y) => 1 / y,
    (x, y) => -x / (y * y),
  );
/** Element-wise minimum; the gradient goes to the smaller operand (to `a` on ties). */
export const minimum = (a: Tensor, b: Tensor): Tensor =>
  binary(
    a,
    b,
    (x, y) => Math.min(x, y),
    (x, y) => (x <= y ? 1 : 0),
    (x, y) => (x <= y ? 0 : 1),
  );
export const maximum = (a: Tensor, b: Tensor): Tensor =>
  binary(
    a,
    b,
    (x, y) => Math.max(x, y),
    (x, y) => (x >= y ? 1 : 0),
    (x, y) => (x >= y ? 0 : 1),
  );

// ---------------------------------------------------------------- element-wise unary ops

type Unary = (x: number) => number;
type UnaryGrad = (x: number, out: number) => number;

function unary(a: Tensor, f: Unary, dfdx: UnaryGrad): Tensor {
  const n = a.size;
  const out = new Float64Array(n);
  const ad = a.data;
  for (let i = 0; i < n; i++) out[i] = f(ad[i] as number);
  return result(out, a.rows, a.cols, [a], (o) => {
    const go = o.grad as Float64Array;
    const ga = a.gradBuffer();
    for (let i = 0; i < n; i++)
      ga[i] = (ga[i] as number) + (go[i] as number) * dfdx(ad[i] as number, out[i] as number);
  });
}

export const neg = (a: Tensor): Tensor =>
  unary(
    a,
    (x) => -x,
    () => -1,
  );
export const scale = (a: Tensor, c: number): Tensor =>
  unary(
    a,
    (x) => c * x,
    () => c,
  );
export const addScalar = (a: Tensor, c: number): Tensor =>
  unary(
    a,
    (x) => x + c,
    () => 1,
  );
export const square = (a: Tensor): Tensor =>
  unary(
    a,
    (x) => x * x,
    (x) => 2 * x,
  );
export function tanh(a: Tensor): Tensor {
  const n = a.size;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.tanh(a.data[i] as number);
  return result(out, a.rows, a.cols, [a], (o) => {
    const go = o.grad as Float64Array;
    const ga = a.gradBuffer();
    for (let i = 0; i < n; i++) {
      const y = out[i] as number;
      ga[i] = (ga[i] as number) + (go[i] as number) * (1 - y * y);
    }
  });
}

export function sigmoid(a: Tensor): Tensor {
  const n = a.size;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = sigmoidScalar(a.data[i] as number);
  return result(out, a.rows, a.cols, [a], (o) => {
    const go = o.grad as Float64Array;
    const ga = a.gradBuffer();
    for (let i = 0; i < n; i++) {
      const y = out[i] as number;
      ga[i] = (ga[i] as number) + (go[i] as number) * y * (1 - y);
    }
  });
}
export const exp = (a: Tensor): Tensor => unary(a, Math.exp, (_x, y) => y);
export const log = (a: Tensor): Tensor => unary(a, Math.log, (x) => 1 / x);
export const relu = (a: Tensor): Tensor =>
  unary(
    a,
    (x) => (x > 0 ? x : 0),
    (x) => (x > 0 ? 1 : 0),
  );
/** log(1 + e^x), computed stably. */
export const softplus = (a: Tensor): Tensor => unary(a, softplusScalar, (x) => sigmoidScalar(x));
/** Clamps into [lo, hi]; zero gradient outside (as torch.clamp). */
export const clamp = (a: Tensor, lo: number, hi: number): Tensor =>
  unary(
    a,
    (x) => Math.min(hi, Math.max(lo, x)),
    (x) => (x >= lo && x <= hi ? 1 : 0),
  );

export function sigmoidScalar(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

export function softplusScalar(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

// ---------------------------------------------------------------- linear algebra

/** [n, k] x [k, m] -> [n, m]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.cols !== b.rows)
    throw new InvalidArgumentError(`matmul: [${a.rows}, ${a.cols}] x [${b.rows}, ${b.cols}]`, {
      field: 'shape',
    });
  const n = a.rows;
  const k = a.cols;
  const m = b.cols;
  const ad = a.data;
  const bd = b.data;
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    const oi = i * m;
    for (let p = 0; p < k; p++) {
      const av = ad[i * k + p] as number;
      if (av === 0) continue;
      const bp = p * m;
      for (let j = 0; j < m; j++) out[oi + j] = (out[oi + j] as number) + av * (bd[bp + j] as number);
    }
  }
  return result(out, n, m, [a, b], (o) => {
    const go = o.grad as Float64Array;
    if (a.requiresGrad) {
      const ga = a.gradBuffer();
      // dA = dO x B^T
      for (let i = 0; i < n; i++) {
        for (let p = 0; p < k; p++) {
          let s = 0;
          const bp = p * m;
          const oi = i * m;
          for (let j = 0; j < m; j++) s += (go[oi + j] as number) * (bd[bp + j] as number);
          ga[i * k + p] = (ga[i * k + p] as number) + s;
        }
      }
    }
    if (b.requiresGrad) {
      const gb = b.gradBuffer();
      // dB = A^T x dO
      for (let i = 0; i < n; i++) {
        const oi = i * m;
        for (let p = 0; p < k; p++) {
          const av = ad[i * k + p] as number;
          if (av === 0) continue;
          const bp = p * m;
          for (let j = 0; j < m; j++) gb[bp + j] = (gb[bp + j] as number) + av * (go[oi + j] as number);
        }
      }
    }
  });
}

// ---------------------------------------------------------------- reductions

/** Sum of every element -> [1, 1]. */
export function sum(a: Tensor): Tensor {
  let s = 0;
  for (let i = 0; i < a.size; i++) s += a.data[i] as number;
  return result(Float64Array.of(s), 1, 1, [a], (o) => {
    const g = (o.grad as Float64Array)[0] as number;
    const ga = a.gradBuffer();
    for (let i = 0; i < ga.length; i++) ga[i] = (ga[i] as number) + g;
  });
}

export function mean(a: Tensor): Tensor {
  return scale(sum(a), 1 / a.size);
}

/** Sum over columns: [r, c] -> [r, 1]. */
export function sumCols(a: Tensor): Tensor {
  const out = new Float64Array(a.rows);
  for (let i = 0; i < a.rows; i++) {
    let s = 0;
    for (let j = 0; j < a.cols; j++) s += a.data[i * a.cols + j] as number;
    out[i] = s;
  }
  return result(out, a.rows, 1, [a], (o) => {
    const go = o.grad as Float64Array;
    const ga = a.gradBuffer();
    for (let i = 0; i < a.rows; i++)
      for (let j = 0; j < a.cols; j++)
        ga[i * a.cols + j] = (ga[i * a.cols + j] as number) + (go[i] as number);
  });
}

/** Sum over rows: [r, c] -> [1, c]. */
export function sumRows(a: Tensor): Tensor {
  const out = new Float64Array(a.cols);
  for (let i = 0; i < a.rows; i++)
    for (let j = 0; j < a.cols; j++) out[j] = (out[j] as number) + (a.data[i * a.cols + j] as number);
  return result(out, 1, a.cols, [a], (o) => {
    const go = o.grad as Float64Array;
    const ga = a.gradBuffer();
    for (let i = 0; i < a.rows; i++)
      for (let j = 0; j < a.cols; j++)
        ga[i * a.cols + j] = (ga[i * a.cols + j] as number) + (go[j] as number);
  });
}

// ---------------------------------------------------------------- indexing and layout

/** Embedding lookup: rows `index` of `table` -> [index.length, table.cols]. */
export function gatherRows(table: Tensor, index: ArrayLike<number>): Tensor {
  const c = table.cols;
  const n = index.length;
  const out = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    const r = index[i] as number;
    if (!Number.isInteger(r) || r < 0 || r >= table.rows)
      throw new InvalidArgumentError(`gatherRows: index ${r} outside [0, ${table.rows})`, { field: 'index' });
    out.set(table.data.subarray(r * c, r * c + c), i * c);
  }
  return result(out, n, c, [table], (o) => {
    const go = o.grad as Float64Array;
    const gt = table.gradBuffer();
    for (let i = 0; i < n; i++) {
      const r = index[i] as number;
      for (let j = 0; j < c; j++) gt[r * c + j] = (gt[r * c + j] as number) + (go[i * c + j] as number);
    }
  });
}

/** Concatenation along columns; every part has the same row count. */
export function concatCols(parts: readonly Tensor[]): Tensor {
  const first = parts[0];
  if (first === undefined) throw new InvalidArgumentError('concatCols of nothing', { field: 'parts' });
  const rows = first.rows;
  let cols = 0;
  for (const p of parts) {
    if (p.rows !== rows)
      throw new InvalidArgumentError(`concatCols: ${p.rows} rows vs ${rows}`, { field: 'shape' });
    cols += p.cols;
  }
  const out = new Float64Array(rows * cols);
  let off = 0;
  for (const p of parts) {
    for (let i = 0; i < rows; i++) out.set(p.data.subarray(i * p.cols, (i + 1) * p.cols), i * cols + off);
    off += p.cols;
  }
  return result(out, rows, cols, [...parts], (o) => {
    const go = o.grad as Float64Array;
    let c0 = 0;
    for (const p of parts) {
      if (p.requiresGrad) {
        const gp = p.gradBuffer();
        for (let i = 0; i < rows; i++)
          for (let j = 0; j < p.cols; j++)
            gp[i * p.cols + j] = (gp[i * p.cols + j] as number) + (go[i * cols + c0 + j] as number);
      }
      c0 += p.cols;
    }
  });
}

/** Concatenation along rows; every part has the same column count. */
export function concatRows(parts: readonly Tensor[]): Tensor {
  const first = parts[0];
  if (first === undefined) throw new InvalidArgumentError('concatRows of nothing', { field: 'parts' });
  const cols = first.cols;
  let rows = 0;
  for (const p of parts) {
    if (p.cols !== cols)
      throw new InvalidArgumentError(`concatRows: ${p.cols} cols vs ${cols}`, { field: 'shape' });
    rows += p.rows;
  }
  const out = new Float64Array(rows * cols);
  let off = 0;
  for (const p of parts) {
    out.set(p.data, off);
    off += p.size;
  }
  return result(out, rows, cols, [...parts], (o) => {
    const go = o.grad as Float64Array;
    let k0 = 0;
    for (const p of parts) {
      if (p.requiresGrad) {
        const gp = p.gradBuffer();
        for (let i = 0; i < p.size; i++) gp[i] = (gp[i] as number) + (go[k0 + i] as number);
      }
      k0 += p.size;
    }
  });
}

/** Columns [start, end) -> [rows, end - start]. */
export function sliceCols(a: Tensor, start: number, end: number): Tensor {
  if (!(start >= 0 && end <= a.cols && start < end))
    throw new InvalidArgumentError(`sliceCols [${start}, ${end}) of ${a.cols} columns`, { field: 'range' });
  const w = end - start;
  const out = new Float64Array(a.rows * w);
  for (let i = 0; i < a.rows; i++) out.set(a.data.subarray(i * a.cols + start, i * a.cols + end), i * w);
  return result(out, a.rows, w, [a], (o) => {
    const go = o.grad as Float64Array;
    const ga = a.gradBuffer();
    for (let i = 0; i < a.rows; i++)
      for (let j = 0; j < w; j++)
        ga[i * a.cols + start + j] = (ga[i * a.cols + start + j] as number) + (go[i * w + j] as number);
  });
}

// ---------------------------------------------------------------- distributions

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * Log-density of a diagonal Gaussian, summed over columns: x, mu [r, d], logStd [1, d] or [r, d]
 * -> [r, 1].
 */
export function gaussianLogProb(x: Tensor, mu: Tensor, logStd: Tensor): Tensor {
  const z = div(sub(x, mu), exp(logStd));
  const perDim = sub(scale(square(z), -0.5), logStd);
  return addScalar(sumCols(perDim), -HALF_LOG_2PI * x.cols);
}

/** Entropy of a diagonal Gaussian with log-std `logStd` [r, d] -> [r, 1]. */
export function gaussianEntropy(logStd: Tensor): Tensor {
  return addScalar(sumCols(logStd), (0.5 + HALF_LOG_2PI) * logStd.cols);
}
