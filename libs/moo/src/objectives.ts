import { InvalidArgumentError } from '@hm3/errors';

/** Whether an objective is to be maximised (the default in HM3: task scores) or minimised. */
export type Direction = 'max' | 'min';

/** One objective vector, in the caller's orientation. */
export type ObjectiveVector = readonly number[];

/**
 * Rejects anything that is not a list of equally long vectors of finite numbers. A NaN (or an
 * infinity) is reported with the index of its vector and of its objective.
 */
export function assertObjectiveVectors(
  points: readonly ObjectiveVector[],
  field = 'points',
  dimension?: number,
): void {
  const m = dimension ?? points[0]?.length;
  points.forEach((point, index) => assertObjectiveVector(point, `${field}[${index}]`, m, index));
}

/** Rejects one vector with a non-finite entry or the wrong length. */
export function assertObjectiveVector(
  point: ObjectiveVector,
  field: string,
  dimension?: number,
  index?: number,
): void {
  if (!Array.isArray(point) && !ArrayBuffer.isView(point)) {
    throw new InvalidArgumentError(`${field} is not an objective vector`, { field, index });
  }
  if (point.length === 0) {
    throw new InvalidArgumentError(`${field} has no objectives`, { field, index });
  }
  if (dimension !== undefined && point.length !== dimension) {
    throw new InvalidArgumentError(`${field} has ${point.length} objectives, expected ${dimension}`, {
      field,
      index,
      expected: dimension,
      actual: point.length,
    });
  }
  for (let j = 0; j < point.length; j++) {
    const v = point[j] as number;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new InvalidArgumentError(
        `${field}[${j}] is ${String(v)}: objectives must be finite numbers${index === undefined ? '' : ` (point index ${index})`}`,
        { field, index, objective: j, value: String(v) },
      );
    }
  }
}

/** The directions for m objectives: all 'max' unless given; the length must be m. */
export function resolveDirections(directions: readonly Direction[] | undefined, m: number): Direction[] {
  if (directions === undefined) return Array.from({ length: m }, () => 'max');
  if (directions.length !== m) {
    throw new InvalidArgumentError(`directions has ${directions.length} entries, expected ${m}`, {
      field: 'directions',
      expected: m,
      actual: directions.length,
    });
  }
  directions.forEach((d, j) => {
    if (d !== 'max' && d !== 'min') {
      throw new InvalidArgumentError(`directions[${j}] is ${String(d)}, expected 'max' or 'min'`, {
        field: `directions[${j}]`,
      });
    }
  });
  return [...directions];
}

/** The vector turned into minimisation form: maximised objectives are negated. */
export function toMinimisation(point: ObjectiveVector, directions: readonly Direction[]): number[] {
  const out = new Array<number>(point.length);
  for (let j = 0; j < point.length; j++) {
    const v = point[j] as number;
    out[j] = directions[j] === 'max' ? -v : v;
  }
  return out;
}
