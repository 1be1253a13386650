/** Adam and global-norm gradient clipping over autodiff parameters. */
import { InvalidArgumentError } from '@hm3/errors';
import type { Tensor } from './autodiff.js';

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export class Adam {
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  private t = 0;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  lr: number;

  constructor(
    readonly params: readonly Tensor[],
    options: AdamOptions,
  ) {
    if (!(options.lr > 0))
      throw new InvalidArgumentError(`Adam learning rate must be > 0, got ${options.lr}`, { field: 'lr' });
    this.lr = options.lr;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.m = params.map((p) => new Float64Array(p.size));
    this.v = params.map((p) => new Float64Array(p.size));
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad?.fill(0);
  }

  /** One update with the gradients accumulated in each parameter's `grad`. */
  step(): void {
    this.t++;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    this.params.forEach((p, k) => {
      const g = p.grad;
      if (g === null) return;
      const m = this.m[k] as Float64Array;
      const v = this.v[k] as Float64Array;
      for (let i = 0; i < p.size; i++) {
        const gi = g[i] as number;
        const mi = this.beta1 * (m[i] as number) + (1 - this.beta1) * gi;
        const vi = this.beta2 * (v[i] as number) + (1 - this.beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p.data[i] = (p.data[i] as number) - (this.lr * (mi / c1)) / (Math.sqrt(vi / c2) + this.eps);
      }
    });
  }
}

/** Scales all gradients so that their global L2 norm is at most `maxNorm`; returns the norm before. */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  let sq = 0;
  for (const p of params) if (p.grad !== null) for (const g of p.grad) sq += g * g;
  const norm = Math.sqrt(sq);
  if (norm > maxNorm && norm > 0) {
    const f = maxNorm / norm;
    for (const p of params)
      if (p.grad !== null) for (let i = 0; i < p.grad.length; i++) p.grad[i] = (p.grad[i] as number) * f;
  }
  return norm;
}
