import { InvalidArgumentError, NotFoundError } from '@hm3/errors';
import { ParetoArchive } from './archive.js';
import {
  assertObjectiveVector,
  resolveDirections,
  toMinimisation,
  type Direction,
  type ObjectiveVector,
} from './objectives.js';
import type { Box } from './variation.js';

/** A point to evaluate, named so that its result can come back in any order. */
export interface Candidate {
  readonly id: string;
  readonly x: readonly number[];
}

/** A candidate with its objectives (in the caller's orientation). */
export interface Evaluated extends Candidate {
  readonly objectives: readonly number[];
}

/**
 * The asynchronous interface every optimiser of @hm3/moo speaks. Evaluations may run anywhere (a
 * cluster) and finish in any order:
 * - ask(n) returns up to n new candidates; fewer (even none) when the optimiser cannot go on before
 *   results it is waiting for arrive (e.g. the initial population);
 * - tell(id, objectives) reports one result; telling the same id twice is ignored (false), an
 *   unknown id is NotFound, a NaN objective is rejected with its index;
 * - fail(id) gives a candidate up (its evaluation failed); the optimiser asks for another instead.
 */
export interface AskTellOptimiser {
  readonly name: string;
  ask(n?: number): Candidate[];
  tell(id: string, objectives: ObjectiveVector): boolean;
  fail(id: string): void;
  /** Results told so far. */
  readonly evaluations: number;
  /** Candidates asked and not yet told or failed. */
  readonly pending: number;
  /** The current working population (for random search: the archive of non-dominated results). */
  population(): Evaluated[];
  /** The non-dominated members of the population. */
  front(): Evaluated[];
  /** The non-dominated set of every result told so far (the external archive of MOEA/D's paper). */
  archive(): Evaluated[];
}

/** What every optimiser is built over: a box of real variables and the number of objectives. */
export interface OptimiserProblem extends Box {
  readonly objectives: number;
  /** Objectives are maximised unless marked 'min'. */
  readonly directions?: readonly Direction[];
}

/** An evaluated member inside an optimiser: objectives also in minimisation form. */
export interface Member extends Evaluated {
  readonly min: readonly number[];
}

/** Validates a problem; returns its directions. */
export function checkProblem(problem: OptimiserProblem): Direction[] {
  const n = problem.lower.length;
  if (n === 0) throw new InvalidArgumentError('the box has no variables', { field: 'lower' });
  if (problem.upper.length !== n) {
    throw new InvalidArgumentError(`upper has ${problem.upper.length} entries, lower ${n}`, {
      field: 'upper',
    });
  }
  for (let i = 0; i < n; i++) {
    const lo = problem.lower[i] as number;
    const hi = problem.upper[i] as number;
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) {
      throw new InvalidArgumentError(`variable ${i}: bounds [${lo}, ${hi}] are not a finite interval`, {
        field: `lower[${i}]`,
      });
    }
  }
  if (!Number.isInteger(problem.objectives) || problem.objectives < 1) {
    throw new InvalidArgumentError(`objectives must be a positive integer, got ${problem.objectives}`, {
      field: 'objectives',
    });
  }
  return resolveDirections(problem.directions, problem.objectives);
}

/**
 * The book-keeping shared by the optimisers: candidate ids, what is in flight, idempotent tells.
 * `Meta` is what an optimiser remembers about a candidate between ask and tell.
 */
export class CandidateLedger<Meta> {
  private readonly inFlight = new Map<string, { x: readonly number[]; meta: Meta }>();
  private readonly done = new Set<string>();
  private counter = 0;
  private told = 0;
  private readonly nonDominated: ParetoArchive<Evaluated>;

  constructor(
    private readonly prefix: string,
    private readonly objectives: number,
    private readonly directions: readonly Direction[],
  ) {
    this.nonDominated = new ParetoArchive<Evaluated>({ directions });
  }

  /** The non-dominated set of every result received. */
  archive(): Evaluated[] {
    return this.nonDominated.entries().map((e) => e.item);
  }

  get pending(): number {
    return this.inFlight.size;
  }

  get evaluations(): number {
    return this.told;
  }

  issue(x: readonly number[], meta: Meta): Candidate {
    const id = `${this.prefix}-${this.counter++}`;
    this.inFlight.set(id, { x, meta });
    return { id, x };
  }

  /** The member and its meta for a told result, or undefined when the id was already told. */
  receive(id: string, objectives: ObjectiveVector): { member: Member; meta: Meta } | undefined {
    const entry = this.inFlight.get(id);
    if (entry === undefined) {
      if (this.done.has(id)) return undefined;
      throw new NotFoundError(`no candidate ${id} is waiting for a result`, { candidateId: id });
    }
    try {
      assertObjectiveVector(objectives, `objectives of ${id}`, this.objectives);
    } catch (error) {
      if (error instanceof InvalidArgumentError) {
        throw new InvalidArgumentError(error.message, { ...error.details, candidateId: id });
      }
      throw error;
    }
    this.inFlight.delete(id);
    this.done.add(id);
    this.told++;
    const member: Member = {
      id,
      x: entry.x,
      objectives: [...objectives],
      min: toMinimisation(objectives, this.directions),
    };
    this.nonDominated.add(member.objectives, { id, x: entry.x, objectives: member.objectives });
    return { member, meta: entry.meta };
  }

  /** Forgets an in-flight candidate; returns its meta (undefined when unknown or already done). */
  drop(id: string): Meta | undefined {
    const entry = this.inFlight.get(id);
    if (entry === undefined) {
      if (this.done.has(id)) return undefined;
      throw new NotFoundError(`no candidate ${id} is waiting for a result`, { candidateId: id });
    }
    this.inFlight.delete(id);
    this.done.add(id);
    return entry.meta;
  }
}

/** Strips the internal fields of members. */
export function publicMembers(members: readonly Member[]): Evaluated[] {
  return members.map((m) => ({ id: m.id, x: m.x, objectives: m.objectives }));
}

export interface RunOptions {
  /** Total number of evaluations. */
  budget: number;
  /** Candidates asked at once (and evaluated before the next ask). Default 1. */
  batchSize?: number;
  /** Called after every told result. */
  onTell?: (optimiser: AskTellOptimiser) => void;
}

/** Drives an optimiser with a synchronous evaluation function until the budget is spent. */
export function runOptimiser(
  optimiser: AskTellOptimiser,
  evaluate: (x: readonly number[]) => ObjectiveVector,
  options: RunOptions,
): AskTellOptimiser {
  const batch = options.batchSize ?? 1;
  let asked = 0;
  while (asked < options.budget) {
    const candidates = optimiser.ask(Math.min(batch, options.budget - asked));
    if (candidates.length === 0) {
      throw new InvalidArgumentError(`${optimiser.name} asked for nothing with no evaluation pending`, {
        field: 'batchSize',
      });
    }
    asked += candidates.length;
    for (const c of candidates) {
      optimiser.tell(c.id, evaluate(c.x));
      options.onTell?.(optimiser);
    }
  }
  return optimiser;
}

/**
 * Drives an optimiser with an asynchronous evaluation function, keeping up to `concurrency`
 * evaluations in flight; results are told as they complete, in whatever order that is.
 */
export async function runOptimiserAsync(
  optimiser: AskTellOptimiser,
  evaluate: (x: readonly number[]) => Promise<ObjectiveVector>,
  options: { budget: number; concurrency: number; onTell?: (optimiser: AskTellOptimiser) => void },
): Promise<AskTellOptimiser> {
  let asked = 0;
  const running = new Set<Promise<void>>();
  for (;;) {
    while (asked < options.budget && running.size < options.concurrency) {
      const [candidate] = optimiser.ask(1);
      if (candidate === undefined) break;
      asked++;
      const job: Promise<void> = evaluate(candidate.x).then((objectives) => {
        running.delete(job);
        optimiser.tell(candidate.id, objectives);
        options.onTell?.(optimiser);
      });
      running.add(job);
    }
    if (running.size === 0) break;
    await Promise.race(running);
  }
  return optimiser;
}
