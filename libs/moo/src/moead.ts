import { InvalidArgumentError } from '@hm3/errors';
import { nonDominatedSortMin } from './non-dominated-sort.js';
import {
  CandidateLedger,
  checkProblem,
  publicMembers,
  type AskTellOptimiser,
  type Candidate,
  type Evaluated,
  type Member,
  type OptimiserProblem,
} from './ask-tell.js';
import type { ObjectiveVector } from './objectives.js';
import { Rng } from './prng.js';
import { DEFAULT_RHO, DEFAULT_THETA, kernelFor, type ScalarisationSpec } from './scalarisation.js';
import { dasDennis, dasDennisCount, normaliseWeights } from './weight-vectors.js';
import {
  MOEAD_MUTATION,
  MOEAD_SBX,
  polynomialMutation,
  latinHypercube,
  sampleUniform,
  sbx,
  type PolynomialMutationParameters,
  type SbxParameters,
} from './variation.js';

export interface MoeadOptions {
  seed: number;
  /** The subproblems' weight vectors; default a Das-Dennis lattice of at most `populationSize` vectors. */
  weights?: readonly (readonly number[])[];
  populationSize?: number;
  /** Neighbourhood size T (including the subproblem itself). Default 20. */
  neighbours?: number;
  /** Probability of mating within the neighbourhood (else within the whole population). Default 0.9. */
  neighbourMatingProbability?: number;
  /** The decomposition; default Tchebycheff with the running ideal point. */
  scalarisation?: ScalarisationSpec;
  /** The initial population: uniform samples (pymoo's default) or a Latin hypercube. Default 'uniform'. */
  initialSampling?: 'uniform' | 'latin-hypercube';
  /**
   * How the evaluated initial population meets the subproblems: 'matched' gives every subproblem, in
   * turn, the unassigned initial point it scalarises best (so neighbours start with fitting parents);
   * 'as-sampled' keeps the sampling order (pymoo). Default 'matched'.
   */
  initialAssignment?: 'matched' | 'as-sampled';
  /**
   * At most this many neighbours replaced by one offspring, visited in random order (MOEA/D-DE's
   * n_r, Li and Zhang 2009): one lucky offspring cannot take over a whole neighbourhood. Default
   * Infinity: every improved neighbour, in neighbourhood order (pymoo's MOEA/D). See docs/method.md.
   */
  maxReplacements?: number;
  crossover?: Partial<SbxParameters>;
  mutation?: Partial<PolynomialMutationParameters>;
}

/**
 * MOEA/D (Zhang and Li 2007): one subproblem per weight vector, each improved by offspring of its
 * neighbours, a neighbour replaced whenever the offspring scalarises better for the neighbour's
 * weights. Asked one at a time and told in order it is the sequential MOEA/D; results that come back
 * late or out of order update the subproblem they were bred for, against the population as it is then.
 */
export class Moead implements AskTellOptimiser {
  readonly name = 'moead';
  readonly weights: number[][];
  private readonly rng: Rng;
  private readonly ledger: CandidateLedger<number>;
  private readonly neighbourhoods: number[][];
  private readonly mating: number;
  private readonly kernel: ReturnType<typeof kernelFor>;
  private readonly parameter: number;
  private readonly crossover: SbxParameters;
  private readonly mutation: PolynomialMutationParameters;
  private readonly initialSampling: 'uniform' | 'latin-hypercube';
  private readonly initialAssignment: 'matched' | 'as-sampled';
  private readonly maxReplacements: number;
  private population_: (Member | undefined)[];
  private initialised = false;
  private initialIssued = 0;
  /** The initial design still to issue (a Latin hypercube; uniform samples when empty). */
  private design: number[][] | undefined;
  private initialArrived = 0;
  private ideal: number[];
  private order: number[] = [];
  /** Subproblems whose initial point is in flight. */
  private readonly inFlightSlots = new Set<number>();

  constructor(
    private readonly problem: OptimiserProblem,
    options: MoeadOptions,
  ) {
    const directions = checkProblem(problem);
    const m = problem.objectives;
    if (options.weights !== undefined) {
      this.weights = options.weights.map((w, i) => {
        if (w.length !== m)
          throw new InvalidArgumentError(`weights[${i}] has ${w.length} entries, expected ${m}`, {
            field: `weights[${i}]`,
          });
        return normaliseWeights(w, { field: `weights[${i}]` });
      });
    } else {
      const size = options.populationSize;
      if (size === undefined || !Number.isInteger(size) || size < 2) {
        throw new InvalidArgumentError('MOEA/D needs weights or an integer populationSize >= 2', {
          field: 'populationSize',
        });
      }
      let partitions = 1;
      while (dasDennisCount(m, partitions + 1) <= size) partitions++;
      this.weights = dasDennis(m, partitions);
    }
    const n = this.weights.length;
    if (n < 2)
      throw new InvalidArgumentError('MOEA/D needs at least two weight vectors', { field: 'weights' });
    const t = Math.min(options.neighbours ?? 20, n);
    if (!Number.isInteger(t) || t < 2)
      throw new InvalidArgumentError(`neighbours must be an integer >= 2, got ${t}`, { field: 'neighbours' });
    this.neighbourhoods = this.weights.map((w) =>
      this.weights
        .map((v, j) => ({ j, d: Math.hypot(...w.map((wi, k) => wi - (v[k] as number))) }))
        .sort((a, b) => a.d - b.d || a.j - b.j)
        .slice(0, t)
        .map((e) => e.j),
    );
    this.mating = options.neighbourMatingProbability ?? 0.9;
    const spec = options.scalarisation ?? { kind: 'tchebycheff' };
    this.kernel = kernelFor(spec.kind);
    this.parameter =
      spec.kind === 'augmented-tchebycheff'
        ? (spec.rho ?? DEFAULT_RHO)
        : spec.kind === 'pbi'
          ? (spec.theta ?? DEFAULT_THETA)
          : 0;
    this.crossover = { ...MOEAD_SBX, ...options.crossover };
    this.mutation = { ...MOEAD_MUTATION, ...options.mutation };
    this.initialSampling = options.initialSampling ?? 'uniform';
    this.initialAssignment = options.initialAssignment ?? 'matched';
    this.maxReplacements = options.maxReplacements ?? Infinity;
    if (
      !(this.maxReplacements >= 1) ||
      (Number.isFinite(this.maxReplacements) && !Number.isInteger(this.maxReplacements))
    ) {
      throw new InvalidArgumentError(
        `maxReplacements must be a positive integer or Infinity, got ${this.maxReplacements}`,
        {
          field: 'maxReplacements',
        },
      );
    }
    this.rng = new Rng(options.seed);
    this.ledger = new CandidateLedger('moead', m, directions);
    this.population_ = new Array<Member | undefined>(n).fill(undefined);
    this.ideal = new Array<number>(m).fill(Infinity);
  }

  get evaluations(): number {
    return this.ledger.evaluations;
  }

  get pending(): number {
    return this.ledger.pending;
  }

  ask(n = 1): Candidate[] {
    const out: Candidate[] = [];
    const size = this.weights.length;
    while (out.length < n) {
      if (!this.initialised) {
        // the initial population: one random point per subproblem not yet filled or in flight
        if (this.initialIssued >= size) break;
        const slot = this.population_.findIndex((p, i) => p === undefined && !this.inFlightSlots.has(i));
        this.initialIssued++;
        this.inFlightSlots.add(slot);
        out.push(this.ledger.issue(this.initialPoint(), slot));
        continue;
      }
      if (this.order.length === 0) this.order = this.rng.permutation(size).reverse();
      const k = this.order.pop() as number;
      out.push(this.ledger.issue(this.breed(k), k));
    }
    return out;
  }

  tell(id: string, objectives: ObjectiveVector): boolean {
    const received = this.ledger.receive(id, objectives);
    if (received === undefined) return false;
    const { member, meta: k } = received;
    for (let j = 0; j < this.ideal.length; j++)
      this.ideal[j] = Math.min(this.ideal[j] as number, member.min[j] as number);
    if (!this.initialised) {
      this.inFlightSlots.delete(k);
      this.population_[k] = member;
      this.initialArrived++;
      if (this.initialArrived === this.weights.length) {
        this.initialised = true;
        if (this.initialAssignment === 'matched') this.matchInitialPopulation();
      }
      return true;
    }
    const neighbourhood = this.neighbourhoods[k] as number[];
    const limited = Number.isFinite(this.maxReplacements);
    // (the sequential visit of pymoo when unlimited; a random one otherwise)
    const order = limited
      ? this.rng.permutation(neighbourhood.length).map((i) => neighbourhood[i] as number)
      : neighbourhood;
    let replaced = 0;
    for (const j of order) {
      if (replaced >= this.maxReplacements) break;
      const w = this.weights[j] as number[];
      const current = this.population_[j] as Member;
      if (
        this.kernel(member.min, w, this.ideal, this.parameter) <
        this.kernel(current.min, w, this.ideal, this.parameter)
      ) {
        this.population_[j] = member;
        replaced++;
      }
    }
    return true;
  }

  fail(id: string): void {
    const k = this.ledger.drop(id);
    if (k !== undefined && !this.initialised) {
      this.inFlightSlots.delete(k);
      this.initialIssued--;
    }
  }

  archive(): Evaluated[] {
    return this.ledger.archive();
  }

  population(): Evaluated[] {
    return publicMembers(this.population_.filter((p): p is Member => p !== undefined));
  }

  front(): Evaluated[] {
    const members = this.population_.filter((p): p is Member => p !== undefined);
    const first =
      nonDominatedSortMin(
        members.map((m) => m.min),
        1,
      )[0] ?? [];
    const unique = new Map<string, Member>();
    for (const i of first) {
      const member = members[i] as Member;
      unique.set(member.id, member);
    }
    return publicMembers([...unique.values()]);
  }

  private initialPoint(): number[] {
    if (this.design === undefined) {
      this.design =
        this.initialSampling === 'latin-hypercube'
          ? latinHypercube(this.weights.length, this.problem, this.rng)
          : [];
    }
    return this.design.pop() ?? sampleUniform(this.problem, this.rng);
  }

  /** Greedy matching: subproblems in a random order each take the free initial point of lowest cost. */
  private matchInitialPopulation(): void {
    const pool = this.population_ as Member[];
    const free = new Set(pool.map((_, i) => i));
    const matched = new Array<Member>(pool.length);
    for (const k of this.rng.permutation(pool.length)) {
      const w = this.weights[k] as number[];
      let best = -1;
      let bestCost = Infinity;
      for (const i of free) {
        const cost = this.kernel((pool[i] as Member).min, w, this.ideal, this.parameter);
        if (cost < bestCost || best < 0) {
          best = i;
          bestCost = cost;
        }
      }
      free.delete(best);
      matched[k] = pool[best] as Member;
    }
    this.population_ = matched;
  }

  /** One offspring for subproblem k: two parents from its neighbourhood (or the population), SBX, PM. */
  private breed(k: number): number[] {
    const size = this.weights.length;
    const pool = this.rng.next() < this.mating ? (this.neighbourhoods[k] as number[]) : undefined;
    const pick = (): [number, number] => {
      const count = pool?.length ?? size;
      const a = this.rng.int(count);
      let b = this.rng.int(count - 1);
      if (b >= a) b++;
      return pool === undefined ? [a, b] : [pool[a] as number, pool[b] as number];
    };
    const [a, b] = pick();
    const children = sbx(
      (this.population_[a] as Member).x,
      (this.population_[b] as Member).x,
      this.problem,
      this.crossover,
      this.rng,
    );
    const child = children[this.rng.int(2)] as number[];
    return polynomialMutation(child, this.problem, this.mutation, this.rng);
  }
}
