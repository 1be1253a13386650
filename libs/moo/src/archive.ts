import { compareMin, weaklyDominatesMin } from './dominance.js';
import {
  assertObjectiveVector,
  resolveDirections,
  toMinimisation,
  type Direction,
  type ObjectiveVector,
} from './objectives.js';

export interface ArchiveEntry<T> {
  readonly objectives: readonly number[];
  readonly item: T;
}

export interface ArchiveAddResult<T> {
  /** False when an entry of the archive dominates the new point or equals it. */
  readonly accepted: boolean;
  /** Entries the new point dominated, now removed. */
  readonly removed: readonly ArchiveEntry<T>[];
}

/**
 * The non-dominated set, kept incrementally: a point dominated by (or equal to) a member is rejected;
 * an accepted point evicts the members it dominates. Objectives are maximised unless `directions`
 * says otherwise.
 */
export class ParetoArchive<T = undefined> {
  private readonly members: { entry: ArchiveEntry<T>; min: number[] }[] = [];
  private directions: Direction[] | undefined;

  constructor(private readonly options: { directions?: readonly Direction[]; dimension?: number } = {}) {
    if (options.directions !== undefined)
      this.directions = resolveDirections(options.directions, options.directions.length);
  }

  get size(): number {
    return this.members.length;
  }

  /** The number of objectives, fixed by the options or by the first point added. */
  get dimension(): number | undefined {
    return this.options.dimension ?? this.directions?.length ?? this.members[0]?.min.length;
  }

  add(objectives: ObjectiveVector, item: T): ArchiveAddResult<T> {
    assertObjectiveVector(objectives, 'objectives', this.dimension);
    this.directions ??= resolveDirections(undefined, objectives.length);
    const min = toMinimisation(objectives, this.directions);
    for (const member of this.members) {
      if (weaklyDominatesMin(member.min, min)) return { accepted: false, removed: [] };
    }
    const removed: ArchiveEntry<T>[] = [];
    let write = 0;
    for (const member of this.members) {
      if (compareMin(min, member.min) === 1) removed.push(member.entry);
      else this.members[write++] = member;
    }
    this.members.length = write;
    this.members.push({ entry: { objectives: [...objectives], item }, min });
    return { accepted: true, removed };
  }

  /** Whether a point would be accepted, without adding it. */
  wouldAccept(objectives: ObjectiveVector): boolean {
    assertObjectiveVector(objectives, 'objectives', this.dimension);
    const min = toMinimisation(
      objectives,
      this.directions ?? resolveDirections(undefined, objectives.length),
    );
    return !this.members.some((member) => weaklyDominatesMin(member.min, min));
  }

  entries(): ArchiveEntry<T>[] {
    return this.members.map((m) => m.entry);
  }

  objectives(): number[][] {
    return this.members.map((m) => [...m.entry.objectives]);
  }
}
