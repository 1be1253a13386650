/** Parameters and the few layers the path policy is built from: Linear and a GRU cell (PyTorch's gate layout). */
import { InvalidArgumentError } from '@hm3/errors';
import { add, matmul, mul, param, sigmoid, sliceCols, sub, tanh } from './autodiff.js';
import type { Tensor } from './autodiff.js';
import type { Rng } from './random.js';

/** Named parameters in creation order: what Adam updates and what safetensors saves. */
export class ParamStore {
  readonly byName = new Map<string, Tensor>();

  constructor(private readonly rng: Rng) {}

  /** A new parameter initialised uniformly in [-bound, bound] (0 gives zeros). */
  create(name: string, rows: number, cols: number, bound: number): Tensor {
    if (this.byName.has(name))
      throw new InvalidArgumentError(`parameter ${name} is declared twice`, { field: name });
    const t = param(rows, cols, () => (bound === 0 ? 0 : (2 * this.rng.uniform() - 1) * bound));
    this.byName.set(name, t);
    return t;
  }

  get list(): Tensor[] {
    return [...this.byName.values()];
  }

  get count(): number {
    let n = 0;
    for (const t of this.byName.values()) n += t.size;
    return n;
  }
}

export class Linear {
  readonly weight: Tensor; // [in, out]
  readonly bias: Tensor; // [1, out]

  constructor(
    store: ParamStore,
    name: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
    gain = 1,
  ) {
    this.weight = store.create(
      `${name}.weight`,
      inFeatures,
      outFeatures,
      gain * Math.sqrt(6 / (inFeatures + outFeatures)),
    );
    this.bias = store.create(`${name}.bias`, 1, outFeatures, 0);
  }

  forward(x: Tensor): Tensor {
    return add(matmul(x, this.weight), this.bias);
  }
}

/**
 * GRU cell: r = s(x Wr + h Ur), z = s(x Wz + h Uz), n = tanh(x Wn + bn + r * (h Un + cn)),
 * h' = (1 - z) * n + z * h = n + z * (h - n).
 */
export class GruCell {
  readonly wi: Tensor; // [in, 3H] (r | z | n)
  readonly wh: Tensor; // [H, 3H]
  readonly bi: Tensor; // [1, 3H]
  readonly bh: Tensor; // [1, 3H]

  constructor(
    store: ParamStore,
    name: string,
    readonly inFeatures: number,
    readonly hidden: number,
  ) {
    const bound = 1 / Math.sqrt(hidden);
    this.wi = store.create(`${name}.weight_ih`, inFeatures, 3 * hidden, bound);
    this.wh = store.create(`${name}.weight_hh`, hidden, 3 * hidden, bound);
    this.bi = store.create(`${name}.bias_ih`, 1, 3 * hidden, bound);
    this.bh = store.create(`${name}.bias_hh`, 1, 3 * hidden, bound);
  }

  /** x [B, in], h [B, H] -> h' [B, H]. */
  forward(x: Tensor, h: Tensor): Tensor {
    const H = this.hidden;
    const gi = add(matmul(x, this.wi), this.bi); // [B, 3H]
    const gh = add(matmul(h, this.wh), this.bh); // [B, 3H]
    const r = sigmoid(add(sliceCols(gi, 0, H), sliceCols(gh, 0, H)));
    const z = sigmoid(add(sliceCols(gi, H, 2 * H), sliceCols(gh, H, 2 * H)));
    const n = tanh(add(sliceCols(gi, 2 * H, 3 * H), mul(r, sliceCols(gh, 2 * H, 3 * H))));
    return add(n, mul(z, sub(h, n)));
  }
}
