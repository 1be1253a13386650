import { InvalidArgumentError } from '@hm3/errors';
import { compareMin } from './dominance.js';
import { crowdingDistanceUnchecked } from './crowding.js';
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
import {
  NSGA2_MUTATION,
  NSGA2_SBX,
  polynomialMutation,
  latinHypercube,
  sampleUniform,
  sbx,
  type PolynomialMutationParameters,
  type SbxParameters,
} from './variation.js';

export interface Nsga2Options {
  populationSize: number;
  seed: number;
  /** The initial population: uniform samples (pymoo's default) or a Latin hypercube. Default 'uniform'. */
  initialSampling?: 'uniform' | 'latin-hypercube';
  crossover?: Partial<SbxParameters>;
  mutation?: Partial<PolynomialMutationParameters>;
  /**
   * Results between two survivals. Default a tenth of the population (rounded, at least 1): with
   * candidates asked that many at a time, offspring are bred from parents that already include the
   * latest results (faster early progress, and the natural mode for a cluster returning results
   * one by one). populationSize gives the generational NSGA-II of Deb et al. and pymoo.
   */
  survivalInterval?: number;
  /**
   * Binary tournament: 'rank' is Deb et al.'s crowded comparison (lower rank, then larger crowding);
   * 'dominance' is pymoo's default (Pareto dominance, then crowding). Default 'rank'.
   */
  tournament?: 'rank' | 'dominance';
  /** Regenerate offspring equal to a parent or to another offspring of the generation. Default true. */
  eliminateDuplicates?: boolean;
}

interface Ranked extends Member {
  rank: number;
  crowding: number;
}

/**
 * NSGA-II (Deb et al. 2002) with SBX and polynomial mutation, behind the ask/tell interface.
 * Generational when driven one generation at a time; with evaluations in flight it stays correct:
 * offspring are bred from the current parents, and every `populationSize` results that come back
 * (in any order) trigger one rank-and-crowding survival over parents plus those results.
 */
export class Nsga2 implements AskTellOptimiser {
  readonly name = 'nsga2';
  private readonly rng: Rng;
  private readonly ledger: CandidateLedger<null>;
  private readonly crossover: SbxParameters;
  private readonly mutation: PolynomialMutationParameters;
  private readonly eliminateDuplicates: boolean;
  /** Results between two survivals (after the initial population). */
  readonly survivalInterval: number;
  private parents: Ranked[] = [];
  private arrived: Member[] = [];
  private initialIssued = 0;
  /** The initial design still to issue (a Latin hypercube; uniform samples when empty). */
  private design: number[][] | undefined;
  private spare: number[][] = [];
  private tournamentQueue: number[] = [];
  /** Keys of the parents and of the offspring bred since the last survival (duplicate check). */
  private seen = new Set<string>();

  constructor(
    private readonly problem: OptimiserProblem,
    private readonly options: Nsga2Options,
  ) {
    checkProblem(problem);
    if (!Number.isInteger(options.populationSize) || options.populationSize < 2) {
      throw new InvalidArgumentError(
        `populationSize must be an integer >= 2, got ${options.populationSize}`,
        {
          field: 'populationSize',
        },
      );
    }
    this.rng = new Rng(options.seed);
    this.ledger = new CandidateLedger('nsga2', problem.objectives, checkProblem(problem));
    this.crossover = { ...NSGA2_SBX, ...options.crossover };
    this.mutation = { ...NSGA2_MUTATION, ...options.mutation };
    this.eliminateDuplicates = options.eliminateDuplicates ?? true;
    this.survivalInterval = options.survivalInterval ?? Math.max(1, Math.round(options.populationSize / 10));
    if (
      !Number.isInteger(this.survivalInterval) ||
      this.survivalInterval < 1 ||
      this.survivalInterval > options.populationSize
    ) {
      throw new InvalidArgumentError(
        `survivalInterval must be an integer in [1, populationSize], got ${this.survivalInterval}`,
        {
          field: 'survivalInterval',
        },
      );
    }
  }

  get evaluations(): number {
    return this.ledger.evaluations;
  }

  get pending(): number {
    return this.ledger.pending;
  }

  ask(n = 1): Candidate[] {
    const out: Candidate[] = [];
    const size = this.options.populationSize;
    while (out.length < n) {
      if (this.parents.length === 0) {
        if (this.initialIssued >= size) break;
        this.initialIssued++;
        out.push(this.ledger.issue(this.initialPoint(), null));
      } else {
        out.push(this.ledger.issue(this.breed(), null));
      }
    }
    return out;
  }

  tell(id: string, objectives: ObjectiveVector): boolean {
    const received = this.ledger.receive(id, objectives);
    if (received === undefined) return false;
    this.arrived.push(received.member);
    const size = this.options.populationSize;
    const interval = this.parents.length === 0 ? size : this.survivalInterval;
    if (this.arrived.length >= interval) {
      this.parents = this.survive([...this.parents, ...this.arrived], size);
      this.arrived = [];
      this.spare = [];
      this.tournamentQueue = [];
      this.seen = new Set(this.parents.map((p) => key(p.x)));
    }
    return true;
  }

  fail(id: string): void {
    this.ledger.drop(id);
    if (this.parents.length === 0) this.initialIssued--;
  }

  archive(): Evaluated[] {
    return this.ledger.archive();
  }

  population(): Evaluated[] {
    return publicMembers(this.parents.length > 0 ? this.parents : this.arrived);
  }

  front(): Evaluated[] {
    const members = this.parents.length > 0 ? this.parents : this.arrived;
    const first =
      nonDominatedSortMin(
        members.map((m) => m.min),
        1,
      )[0] ?? [];
    return publicMembers(first.map((i) => members[i] as Member));
  }

  private initialPoint(): number[] {
    if (this.design === undefined) {
      this.design =
        this.options.initialSampling === 'latin-hypercube'
          ? latinHypercube(this.options.populationSize, this.problem, this.rng)
          : [];
    }
    return this.design.pop() ?? sampleUniform(this.problem, this.rng);
  }

  /** One offspring: binary tournaments, SBX, polynomial mutation; children come in pairs. */
  private breed(): number[] {
    for (let attempt = 0; ; attempt++) {
      if (this.spare.length === 0) {
        const a = this.parents[this.tournament()] as Ranked;
        const b = this.parents[this.tournament()] as Ranked;
        const children = sbx(a.x, b.x, this.problem, this.crossover, this.rng);
        this.spare = children
          .map((c) => polynomialMutation(c, this.problem, this.mutation, this.rng))
          .reverse();
      }
      const child = this.spare.pop() as number[];
      const k = key(child);
      if (!this.eliminateDuplicates || !this.seen.has(k) || attempt >= 100) {
        this.seen.add(k);
        return child;
      }
    }
  }

  /** A binary tournament over a shuffled stream of the parents: rank (or dominance), then crowding, then a coin. */
  private tournament(): number {
    const a = this.nextInQueue();
    const b = this.nextInQueue();
    const pa = this.parents[a] as Ranked;
    const pb = this.parents[b] as Ranked;
    if (this.options.tournament === 'dominance') {
      const rel = compareMin(pa.min, pb.min);
      if (rel === 1) return a;
      if (rel === -1) return b;
    } else if (pa.rank !== pb.rank) {
      return pa.rank < pb.rank ? a : b;
    }
    if (pa.crowding > pb.crowding) return a;
    if (pb.crowding > pa.crowding) return b;
    return this.rng.next() < 0.5 ? a : b;
  }

  private nextInQueue(): number {
    if (this.tournamentQueue.length === 0) this.tournamentQueue = this.rng.permutation(this.parents.length);
    return this.tournamentQueue.pop() as number;
  }

  /** Rank-and-crowding survival: whole fronts while they fit, then the most crowding-distant of the split front. */
  private survive(pool: Member[], size: number): Ranked[] {
    const fronts = nonDominatedSortMin(
      pool.map((m) => m.min),
      size,
    );
    const survivors: Ranked[] = [];
    fronts.forEach((front, rank) => {
      const crowding = crowdingDistanceUnchecked(front.map((i) => (pool[i] as Member).min));
      let order = front.map((_, j) => j);
      if (survivors.length + front.length > size) {
        // descending crowding, ties broken at random (pymoo's randomized argsort)
        const tieBreak = order.map(() => this.rng.next());
        order.sort(
          (x, y) =>
            (crowding[y] as number) - (crowding[x] as number) ||
            (tieBreak[x] as number) - (tieBreak[y] as number),
        );
        order = order.slice(0, size - survivors.length);
      }
      for (const j of order) {
        survivors.push({ ...(pool[front[j] as number] as Member), rank, crowding: crowding[j] as number });
      }
    });
    return survivors;
  }
}

function key(x: readonly number[]): string {
  return x.join(',');
}
