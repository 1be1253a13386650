import {
  CandidateLedger,
  checkProblem,
  type AskTellOptimiser,
  type Candidate,
  type Evaluated,
  type OptimiserProblem,
} from './ask-tell.js';
import type { ObjectiveVector } from './objectives.js';
import { Rng } from './prng.js';
import { sampleUniform } from './variation.js';

/** The baseline: uniform samples of the box; its population is the archive of non-dominated results. */
export class RandomSearch implements AskTellOptimiser {
  readonly name = 'random';
  private readonly rng: Rng;
  private readonly ledger: CandidateLedger<null>;

  constructor(
    private readonly problem: OptimiserProblem,
    options: { seed: number },
  ) {
    const directions = checkProblem(problem);
    this.rng = new Rng(options.seed);
    this.ledger = new CandidateLedger('random', problem.objectives, directions);
  }

  get evaluations(): number {
    return this.ledger.evaluations;
  }

  get pending(): number {
    return this.ledger.pending;
  }

  ask(n = 1): Candidate[] {
    return Array.from({ length: n }, () => this.ledger.issue(sampleUniform(this.problem, this.rng), null));
  }

  tell(id: string, objectives: ObjectiveVector): boolean {
    const received = this.ledger.receive(id, objectives);
    return received !== undefined;
  }

  fail(id: string): void {
    this.ledger.drop(id);
  }

  archive(): Evaluated[] {
    return this.ledger.archive();
  }

  population(): Evaluated[] {
    return this.ledger.archive();
  }

  front(): Evaluated[] {
    return this.population();
  }
}
