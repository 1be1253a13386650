import { describe, expect, it } from 'vitest';
import { backward, mul, noGrad, sum, tanh, tensor } from './autodiff.js';
import type { Tensor } from './autodiff.js';
import { GruCell, Linear, ParamStore } from './layers.js';
import { Rng } from './random.js';

describe('GRU cell and Linear', () => {
  it('match a hand-computed GRU step (PyTorch gate layout)', () => {
    const store = new ParamStore(new Rng(1));
    const gru = new GruCell(store, 'g', 1, 1);
    gru.wi.data.set([0.5, -0.3, 0.8]);
    gru.wh.data.set([0.2, 0.4, -0.6]);
    gru.bi.data.set([0.1, 0, -0.1]);
    gru.bh.data.set([0, 0.2, 0.3]);
    const x = 1.5;
    const h = -0.4;
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const r = sig(0.5 * x + 0.1 + 0.2 * h);
    const z = sig(-0.3 * x + 0.4 * h + 0.2);
    const n = Math.tanh(0.8 * x - 0.1 + r * (-0.6 * h + 0.3));
    const out = noGrad(() => gru.forward(tensor([x], 1, 1), tensor([h], 1, 1)));
    expect(out.item()).toBeCloseTo((1 - z) * n + z * h, 12);
  });

  it('back-propagates through a 3-step GRU and a Linear head like finite differences (rel. error < 1e-4)', () => {
    const store = new ParamStore(new Rng(2));
    const gru = new GruCell(store, 'g', 3, 4);
    const head = new Linear(store, 'h', 4, 2);
    const rng = new Rng(3);
    const xs = [0, 1, 2].map(() =>
      tensor(
        Array.from({ length: 6 }, () => rng.normal()),
        2,
        3,
      ),
    );
    const w = Array.from({ length: 4 }, () => rng.normal());
    const f = (): Tensor => {
      let h = tensor(new Float64Array(8), 2, 4);
      for (const x of xs) h = gru.forward(x, h);
      return sum(mul(tanh(head.forward(h)), tensor(w, 2, 2)));
    };
    const loss = (): number => noGrad(() => f()).item();
    for (const p of store.list) p.grad = null;
    backward(f());
    let worst = 0;
    for (const p of store.list) {
      let diff = 0;
      let norm = 0;
      for (let i = 0; i < p.size; i++) {
        const v = p.data[i] as number;
        p.data[i] = v + 1e-6;
        const up = loss();
        p.data[i] = v - 1e-6;
        const down = loss();
        p.data[i] = v;
        const num = (up - down) / 2e-6;
        const a = p.grad?.[i] ?? 0;
        diff += (a - num) ** 2;
        norm += Math.max(a * a, num * num);
      }
      worst = Math.max(worst, Math.sqrt(diff / Math.max(norm, 1e-24)));
    }
    expect(worst).toBeLessThan(1e-4);
    expect(store.count).toBe(3 * 12 + 4 * 12 + 12 + 12 + 4 * 2 + 2);
  });
});
