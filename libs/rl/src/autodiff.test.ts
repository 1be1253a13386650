import { describe, expect, it } from 'vitest';
import {
  add,
  addScalar,
  backward,
  clamp,
  concatCols,
  concatRows,
  div,
  exp,
  gatherRows,
  gaussianEntropy,
  gaussianLogProb,
  log,
  matmul,
  maximum,
  mean,
  minimum,
  mul,
  neg,
  noGrad,
  relu,
  scale,
  sigmoid,
  sliceCols,
  softplus,
  square,
  sub,
  sum,
  sumCols,
  sumRows,
  tanh,
  tensor,
} from './autodiff.js';
import type { Tensor } from './autodiff.js';
import { Rng } from './random.js';

const rng = new Rng(7);

function rand(rows: number, cols: number, lo = -1, hi = 1): Tensor {
  return tensor(
    Array.from({ length: rows * cols }, () => lo + (hi - lo) * rng.uniform()),
    rows,
    cols,
    true,
  );
}

/** Max over inputs of ||analytic - numeric|| / max(||analytic||, ||numeric||): central differences in f64. */
function gradCheck(inputs: Tensor[], f: (...xs: Tensor[]) => Tensor): number {
  const probe = noGrad(() => f(...inputs));
  const weights = Float64Array.from({ length: probe.size }, () => rng.uniform() * 2 - 1);
  const loss = (): number => {
    const out = noGrad(() => f(...inputs));
    let s = 0;
    for (let i = 0; i < out.size; i++) s += (out.data[i] as number) * (weights[i] as number);
    return s;
  };
  for (const x of inputs) x.grad = null;
  backward(f(...inputs), weights);
  let worst = 0;
  const h = 1e-6;
  for (const x of inputs) {
    if (!x.requiresGrad) continue;
    const analytic = x.grad ?? new Float64Array(x.size);
    let diff = 0;
    let na = 0;
    let nn = 0;
    for (let i = 0; i < x.size; i++) {
      const v = x.data[i] as number;
      x.data[i] = v + h;
      const up = loss();
      x.data[i] = v - h;
      const down = loss();
      x.data[i] = v;
      const numeric = (up - down) / (2 * h);
      const a = analytic[i] as number;
      diff += (a - numeric) ** 2;
      na += a * a;
      nn += numeric * numeric;
    }
    const denom = Math.max(Math.sqrt(na), Math.sqrt(nn), 1e-12);
    worst = Math.max(worst, Math.sqrt(diff) / denom);
  }
  return worst;
}

const cases: [string, Tensor[], (...xs: Tensor[]) => Tensor][] = [
  ['add', [rand(3, 4), rand(3, 4)], (a, b) => add(a!, b!)],
  ['add (row broadcast)', [rand(3, 4), rand(1, 4)], (a, b) => add(a!, b!)],
  ['add (column broadcast)', [rand(3, 4), rand(3, 1)], (a, b) => add(a!, b!)],
  ['sub (scalar broadcast)', [rand(3, 4), rand(1, 1)], (a, b) => sub(a!, b!)],
  ['mul', [rand(3, 4), rand(3, 4)], (a, b) => mul(a!, b!)],
  ['mul (row broadcast, left)', [rand(1, 4), rand(3, 4)], (a, b) => mul(a!, b!)],
  ['div', [rand(3, 4), rand(3, 4, 0.5, 2)], (a, b) => div(a!, b!)],
  ['minimum', [rand(3, 4), rand(3, 4)], (a, b) => minimum(a!, b!)],
  ['maximum', [rand(3, 4), rand(3, 4)], (a, b) => maximum(a!, b!)],
  ['matmul', [rand(3, 5), rand(5, 2)], (a, b) => matmul(a!, b!)],
  ['neg', [rand(2, 3)], (a) => neg(a!)],
  ['scale', [rand(2, 3)], (a) => scale(a!, -2.5)],
  ['addScalar', [rand(2, 3)], (a) => addScalar(a!, 3)],
  ['square', [rand(2, 3)], (a) => square(a!)],
  ['tanh', [rand(2, 3, -2, 2)], (a) => tanh(a!)],
  ['sigmoid', [rand(2, 3, -4, 4)], (a) => sigmoid(a!)],
  ['exp', [rand(2, 3)], (a) => exp(a!)],
  ['log', [rand(2, 3, 0.2, 3)], (a) => log(a!)],
  ['relu', [rand(2, 3)], (a) => relu(a!)],
  ['softplus', [rand(2, 3, -30, 30)], (a) => softplus(a!)],
  ['clamp', [tensor([-2, -0.5, 0.1, 0.7, 1.5, 3], 2, 3, true)], (a) => clamp(a!, -1, 1)],
  ['sum', [rand(3, 4)], (a) => sum(a!)],
  ['mean', [rand(3, 4)], (a) => mean(a!)],
  ['sumCols', [rand(3, 4)], (a) => sumCols(a!)],
  ['sumRows', [rand(3, 4)], (a) => sumRows(a!)],
  ['gatherRows (repeated index)', [rand(5, 3)], (a) => gatherRows(a!, [4, 0, 4, 2])],
  ['concatCols', [rand(3, 2), rand(3, 4), rand(3, 1)], (a, b, c) => concatCols([a!, b!, c!])],
  ['concatRows', [rand(2, 3), rand(1, 3), rand(4, 3)], (a, b, c) => concatRows([a!, b!, c!])],
  ['sliceCols', [rand(3, 6)], (a) => sliceCols(a!, 2, 5)],
  [
    'gaussianLogProb',
    [rand(4, 3), rand(4, 3), rand(1, 3, -1, 0.5)],
    (x, m, s) => gaussianLogProb(x!, m!, s!),
  ],
  ['gaussianEntropy', [rand(2, 3)], (s) => gaussianEntropy(s!)],
  [
    'composite (GRU-like gate)',
    [rand(3, 4), rand(4, 4), rand(1, 4)],
    (x, w, b) => mul(sigmoid(add(matmul(x!, w!), b!)), tanh(x!)),
  ],
];

describe('autodiff gradients against central finite differences (f64)', () => {
  for (const [name, inputs, f] of cases) {
    it(`${name}: relative error < 1e-4`, () => {
      const err = gradCheck(inputs, f);
      expect(err).toBeLessThan(1e-4);
    });
  }

  it('accumulates through a tensor used twice (fan-out)', () => {
    const x = tensor([1.5, -2], 1, 2, true);
    backward(sum(mul(x, x)));
    expect(Array.from(x.grad!)).toEqual([3, -4]);
  });

  it('records nothing under noGrad and rejects bad shapes', () => {
    const x = rand(2, 2);
    expect(noGrad(() => tanh(x)).requiresGrad).toBe(false);
    expect(() => matmul(rand(2, 3), rand(2, 3))).toThrow(/matmul/);
    expect(() => add(rand(2, 3), rand(3, 2))).toThrow(/broadcast/);
    expect(() => backward(tanh(x))).toThrow(/seed/);
    expect(() => gatherRows(x, [2])).toThrow(/index/);
  });
});
