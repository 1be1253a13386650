import { FailedPreconditionError, InvalidArgumentError } from '@hm3/errors';
import type {
  CandidateRecord,
  FrontRecord,
  ModelRecord,
  PolicyRecord,
  ProcessedEventRecord,
  ScoreRecord,
  SearchRecord,
} from './ports.js';

/**
 * One description per collection, shared by both adapters so they cannot drift: the document field
 * name (snake_case) of every domain field, the unique key, the optional fields and the list order.
 * Only top-level fields are mapped; nested values (spec, recipe, config, details) are stored as given.
 */
export interface CollectionSchema<T extends object> {
  readonly name: string;
  /** Domain field -> document field. Lists every field of T, so the compiler catches a forgotten one. */
  readonly fields: { readonly [K in keyof Required<T>]: string };
  /** The unique key (domain field names, in index order). */
  readonly key: readonly (keyof T & string)[];
  /** Fields a record may lack and a patch may clear. */
  readonly optional: readonly (keyof T & string)[];
  /** The order of every list (ascending, domain field names). */
  readonly order: readonly (keyof T & string)[];
}

export const MODELS: CollectionSchema<ModelRecord> = {
  name: 'models',
  fields: {
    id: 'id',
    uri: 'uri',
    architecture: 'architecture',
    dtype: 'dtype',
    files: 'files',
    config: 'config',
    createdAt: 'created_at',
  },
  key: ['id'],
  optional: ['config'],
  order: ['id'],
};

export const SEARCHES: CollectionSchema<SearchRecord> = {
  name: 'searches',
  fields: {
    id: 'id',
    spec: 'spec',
    state: 'state',
    round: 'round',
    error: 'error',
    createdAt: 'created_at',
    updatedAt: 'updated_at',
  },
  key: ['id'],
  optional: ['error'],
  order: ['createdAt', 'id'],
};

export const CANDIDATES: CollectionSchema<CandidateRecord> = {
  name: 'candidates',
  fields: {
    id: 'id',
    searchId: 'search_id',
    round: 'round',
    recipe: 'recipe',
    path: 'path',
    artifactId: 'artifact_id',
    state: 'state',
    error: 'error',
    createdAt: 'created_at',
    updatedAt: 'updated_at',
  },
  key: ['id'],
  optional: ['recipe', 'path', 'artifactId', 'error'],
  order: ['round', 'id'],
};

export const SCORES: CollectionSchema<ScoreRecord> = {
  name: 'scores',
  fields: {
    candidateId: 'candidate_id',
    objective: 'objective',
    split: 'split',
    searchId: 'search_id',
    value: 'value',
    details: 'details',
    createdAt: 'created_at',
  },
  key: ['candidateId', 'objective', 'split'],
  optional: ['details'],
  order: ['candidateId', 'objective', 'split'],
};

export const FRONTS: CollectionSchema<FrontRecord> = {
  name: 'fronts',
  fields: {
    searchId: 'search_id',
    round: 'round',
    candidateIds: 'candidate_ids',
    hypervolume: 'hypervolume',
    createdAt: 'created_at',
  },
  key: ['searchId', 'round'],
  optional: [],
  order: ['searchId', 'round'],
};

export const POLICIES: CollectionSchema<PolicyRecord> = {
  name: 'policies',
  fields: {
    id: 'id',
    weightsArtifactId: 'weights_artifact_id',
    settings: 'settings',
    iterations: 'iterations',
    createdAt: 'created_at',
    updatedAt: 'updated_at',
  },
  key: ['id'],
  optional: ['weightsArtifactId'],
  order: ['id'],
};

export const PROCESSED_EVENTS: CollectionSchema<ProcessedEventRecord> = {
  name: 'processed_events',
  fields: { eventId: 'event_id', consumer: 'consumer', processedAt: 'processed_at' },
  key: ['eventId'],
  optional: [],
  order: ['eventId'],
};

/** The unique key of a record, as domain field -> value (what DuplicateKeyError carries). */
export function keyOf<T extends object>(
  schema: CollectionSchema<T>,
  record: Partial<T>,
): Record<string, unknown> {
  const key: Record<string, unknown> = {};
  for (const field of schema.key) key[field] = record[field];
  return key;
}

/**
 * Checks a patch against the schema and splits it into fields to set and fields to clear.
 * Unknown fields, key fields and clearing a required field are InvalidArgumentErrors.
 */
export function checkPatch<T extends object>(
  schema: CollectionSchema<T>,
  patch: Partial<T>,
): { set: Partial<T>; unset: (keyof T & string)[] } {
  const set: Partial<T> = {};
  const unset: (keyof T & string)[] = [];
  for (const [field, value] of Object.entries(patch) as [keyof T & string, unknown][]) {
    if (!Object.hasOwn(schema.fields, field)) {
      throw new InvalidArgumentError(`unknown field '${field}' in a ${schema.name} patch`, {
        collection: schema.name,
        field,
      });
    }
    if (schema.key.includes(field)) {
      throw new InvalidArgumentError(`key field '${field}' of ${schema.name} cannot be patched`, {
        collection: schema.name,
        field,
      });
    }
    if (value === undefined) {
      if (!schema.optional.includes(field)) {
        throw new InvalidArgumentError(`required field '${field}' of ${schema.name} cannot be cleared`, {
          collection: schema.name,
          field,
        });
      }
      unset.push(field);
    } else {
      (set as Record<string, unknown>)[field] = value;
    }
  }
  return { set, unset };
}

/** Ascending comparison in the schema's list order (numbers, strings by code unit, Dates by time). */
export function compareInOrder<T extends object>(schema: CollectionSchema<T>, a: T, b: T): number {
  for (const field of schema.order) {
    const c = compareValues(a[field], b[field]);
    if (c !== 0) return c;
  }
  return 0;
}

function compareValues(a: unknown, b: unknown): number {
  const x = a instanceof Date ? a.getTime() : a;
  const y = b instanceof Date ? b.getTime() : b;
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  const s = String(x);
  const t = String(y);
  return s < t ? -1 : s > t ? 1 : 0;
}

export function notStarted(adapter: string): FailedPreconditionError {
  return new FailedPreconditionError(`the ${adapter} store is not started (call start() first)`, { adapter });
}
