import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError } from '@hm3/errors';
import { runOptimiser, runOptimiserAsync, type AskTellOptimiser, type Candidate } from './ask-tell.js';
import { hypervolume } from './hypervolume.js';
import { Moead } from './moead.js';
import { nonDominatedIndices } from './non-dominated-sort.js';
import { Nsga2 } from './nsga2.js';
import { Rng } from './prng.js';
import { dtlz2, zdt1, type BenchmarkProblem } from './problems.js';
import { RandomSearch } from './random-search.js';

const problem = zdt1(10);

const makers: Record<string, (seed: number, p?: BenchmarkProblem) => AskTellOptimiser> = {
  nsga2: (seed, p = problem) => new Nsga2(p, { populationSize: 20, seed }),
  moead: (seed, p = problem) => new Moead(p, { populationSize: 20, seed }),
  random: (seed, p = problem) => new RandomSearch(p, { seed }),
};

function frontHv(o: AskTellOptimiser, p: BenchmarkProblem = problem): number {
  return hypervolume(
    o.front().map((e) => e.objectives),
    { directions: p.directions, bounds: p.paretoBounds },
  );
}

describe.each(Object.keys(makers))('%s over ask/tell', (name) => {
  const make = makers[name]!;

  it('gives the same results for the same seed and different ones for another', () => {
    const run = (seed: number) =>
      runOptimiser(make(seed), (x) => problem.evaluate(x), { budget: 300, batchSize: 20 });
    expect(run(3).front()).toEqual(run(3).front());
    expect(run(3).front()).not.toEqual(run(4).front());
  });

  it('accepts results in any order, ignores a repeated tell, refuses unknown ids and NaN objectives', () => {
    const o = make(1);
    const rng = new Rng(9);
    const told: number[][] = [];
    for (let round = 0; round < 10; round++) {
      const batch: Candidate[] = o.ask(20);
      expect(batch.length).toBeGreaterThan(0);
      expect(o.pending).toBe(batch.length);
      const first = batch[0]!;
      try {
        o.tell(first.id, [0.5, Number.NaN]);
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidArgumentError);
        expect((error as InvalidArgumentError).details).toMatchObject({
          candidateId: first.id,
          objective: 1,
        });
      }
      for (const i of rng.permutation(batch.length)) {
        const c = batch[i]!;
        told.push(problem.evaluate(c.x));
        expect(o.tell(c.id, problem.evaluate(c.x))).toBe(true);
      }
      expect(o.tell(first.id, problem.evaluate(first.x))).toBe(false);
    }
    expect(o.evaluations).toBe(200);
    expect(o.pending).toBe(0);
    expect(() => o.tell('nobody-1', [0, 0])).toThrow(NotFoundError);
    for (const e of o.front()) expect(e.objectives).toEqual(problem.evaluate(e.x));
    // the archive is the non-dominated set of everything told
    const expected = nonDominatedIndices(told, problem.directions).map((i) => told[i]!.join(','));
    expect(new Set(o.archive().map((e) => e.objectives.join(',')))).toEqual(new Set(expected));
  });

  it('replaces a failed evaluation with a new candidate', () => {
    const o = make(2);
    const batch = o.ask(25);
    o.fail(batch[0]!.id);
    for (const c of batch.slice(1)) o.tell(c.id, problem.evaluate(c.x));
    const more = o.ask(5);
    expect(more.length).toBeGreaterThan(0);
    expect(more.map((c) => c.id)).not.toContain(batch[0]!.id);
  });

  it('reaches a good front with out-of-order asynchronous evaluations', async () => {
    const rng = new Rng(5);
    let order = 0;
    const finished: number[] = [];
    const o = await runOptimiserAsync(
      make(7),
      async (x) => {
        const started = order++;
        // finish after a random number of event-loop turns: results come back out of order
        for (let hops = rng.int(4); hops > 0; hops--) await new Promise((resolve) => setImmediate(resolve));
        finished.push(started);
        return problem.evaluate(x);
      },
      { budget: 1500, concurrency: 8 },
    );
    expect(o.evaluations).toBe(1500);
    expect(finished.some((started, i) => i > 0 && started < finished[i - 1]!)).toBe(true);
    expect(o.front().length).toBeGreaterThan(0);
    if (name !== 'random') expect(frontHv(o)).toBeGreaterThan(0.4);
  }, 30_000);
});

describe('the optimisers against random search', () => {
  it.each(['nsga2', 'moead'])('%s beats random search on ZDT1 and DTLZ2 at equal budget', (name) => {
    for (const p of [zdt1(10), dtlz2()]) {
      const ours = runOptimiser(makers[name]!(1, p), (x) => p.evaluate(x), { budget: 2000, batchSize: 20 });
      const random = runOptimiser(makers.random!(1, p), (x) => p.evaluate(x), {
        budget: 2000,
        batchSize: 20,
      });
      expect(frontHv(ours, p)).toBeGreaterThan(frontHv(random, p));
    }
  });

  it('NSGA-II waits for its initial population; MOEA/D builds its weights from Das-Dennis', () => {
    const n = new Nsga2(problem, { populationSize: 10, seed: 1 });
    expect(n.ask(15)).toHaveLength(10);
    expect(n.ask(1)).toHaveLength(0);
    const m = new Moead(dtlz2(), { populationSize: 91, seed: 1 });
    expect(m.weights).toHaveLength(91);
    expect(() => new Nsga2(problem, { populationSize: 1, seed: 1 })).toThrow(InvalidArgumentError);
    expect(
      () =>
        new Moead(problem, {
          seed: 1,
          weights: [
            [1, -1],
            [0, 1],
          ],
        }),
    ).toThrow(/negative/);
    expect(() => new RandomSearch({ lower: [0, 1], upper: [1, 0], objectives: 2 }, { seed: 1 })).toThrow(
      /finite interval/,
    );
  });
});

describe('optimiser options', () => {
  it('NSGA-II: initial Latin hypercube, both tournaments, survival interval checked', () => {
    const n = new Nsga2(problem, { populationSize: 20, seed: 1, initialSampling: 'latin-hypercube' });
    const strata = n
      .ask(20)
      .map((c) => Math.floor(c.x[0]! * 20))
      .sort((a, b) => a - b);
    expect(strata).toEqual(Array.from({ length: 20 }, (_, k) => k));
    expect(new Nsga2(problem, { populationSize: 20, seed: 1 }).survivalInterval).toBe(2);
    expect(() => new Nsga2(problem, { populationSize: 20, seed: 1, survivalInterval: 21 })).toThrow(
      /survivalInterval/,
    );
    for (const tournament of ['rank', 'dominance'] as const) {
      const o = runOptimiser(
        new Nsga2(problem, { populationSize: 20, seed: 1, tournament, survivalInterval: 20 }),
        (x) => problem.evaluate(x),
        {
          budget: 1000,
          batchSize: 20,
        },
      );
      expect(frontHv(o)).toBeGreaterThan(0.3);
    }
  });

  it('MOEA/D: matching the initial population to the subproblems gives a better start than the sampling order', () => {
    const hvAfter = (initialAssignment: 'matched' | 'as-sampled'): number => {
      let total = 0;
      for (let seed = 1; seed <= 5; seed++) {
        const p = dtlz2();
        const o = runOptimiser(
          new Moead(p, { populationSize: 91, seed, initialAssignment }),
          (x) => p.evaluate(x),
          { budget: 182 },
        );
        total += hypervolume(
          o.archive().map((e) => e.objectives),
          { directions: p.directions, bounds: p.objectiveSpaceBounds },
        );
      }
      return total;
    };
    expect(hvAfter('matched')).toBeGreaterThan(hvAfter('as-sampled'));
  });

  it('MOEA/D: limits the replacements per offspring on request (unlimited by default)', () => {
    expect(() => new Moead(problem, { populationSize: 20, seed: 1, maxReplacements: 0 })).toThrow(
      /maxReplacements/,
    );
    const distinct = (maxReplacements: number): number => {
      const o = runOptimiser(
        new Moead(problem, { populationSize: 20, seed: 1, neighbours: 20, maxReplacements }),
        (x) => problem.evaluate(x),
        {
          budget: 400,
        },
      );
      return new Set(o.population().map((e) => e.id)).size;
    };
    // unlimited replacement lets one offspring take over many subproblems: fewer distinct members
    expect(distinct(1)).toBeGreaterThan(distinct(Infinity));
  });
});
