import { describe, expect, it } from 'vitest';
import { backward, sum, square, sub, tensor } from './autodiff.js';
import { Adam, clipGradNorm } from './optim.js';
import { Rng } from './random.js';

describe('Adam', () => {
  it('minimises a quadratic to its optimum', () => {
    const x = tensor([5, -3, 0.5], 1, 3, true);
    const target = tensor([1, 2, -1], 1, 3);
    const opt = new Adam([x], { lr: 0.1 });
    for (let i = 0; i < 500; i++) {
      opt.zeroGrad();
      backward(sum(square(sub(x, target))));
      opt.step();
    }
    for (let i = 0; i < 3; i++) expect(x.data[i]).toBeCloseTo(target.data[i] as number, 3);
  });

  it('takes a first step of size lr in the gradient sign direction (bias correction)', () => {
    const x = tensor([0, 0], 1, 2, true);
    x.grad = Float64Array.of(4, -0.001);
    new Adam([x], { lr: 0.01 }).step();
    expect(x.data[0]).toBeCloseTo(-0.01, 6);
    expect(x.data[1]).toBeCloseTo(0.01, 4);
  });

  it('rejects a non-positive learning rate', () => {
    expect(() => new Adam([], { lr: 0 })).toThrow(/learning rate/);
  });
});

describe('clipGradNorm', () => {
  it('scales the global norm down to maxNorm and leaves small gradients alone', () => {
    const a = tensor([0, 0], 1, 2, true);
    const b = tensor([0], 1, 1, true);
    a.grad = Float64Array.of(3, 0);
    b.grad = Float64Array.of(4);
    expect(clipGradNorm([a, b], 1)).toBeCloseTo(5);
    expect(a.grad[0]).toBeCloseTo(0.6, 12);
    expect(a.grad[1]).toBe(0);
    expect(b.grad[0]).toBeCloseTo(0.8);
    expect(clipGradNorm([a, b], 10)).toBeCloseTo(1);
    expect(b.grad[0]).toBeCloseTo(0.8);
  });
});

describe('Rng', () => {
  it('is deterministic per seed and roughly uniform / normal', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 20000 }, () => a.uniform());
    expect(xs.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => b.uniform()));
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(m - 0.5)).toBeLessThan(0.01);
    const n = Array.from({ length: 20000 }, () => a.normal());
    const nm = n.reduce((s, x) => s + x, 0) / n.length;
    const nv = n.reduce((s, x) => s + (x - nm) ** 2, 0) / n.length;
    expect(Math.abs(nm)).toBeLessThan(0.03);
    expect(Math.abs(nv - 1)).toBeLessThan(0.05);
    const d = a.dirichlet(3);
    expect(d.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 12);
    expect(new Rng(1).uniform()).not.toBe(new Rng(2).uniform());
  });
});
