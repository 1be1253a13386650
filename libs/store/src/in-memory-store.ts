import { DuplicateKeyError } from './errors.js';
import {
  CANDIDATES,
  FRONTS,
  MODELS,
  POLICIES,
  PROCESSED_EVENTS,
  SCORES,
  SEARCHES,
  checkPatch,
  compareInOrder,
  keyOf,
  notStarted,
  type CollectionSchema,
} from './collections.js';
import type {
  CandidateRecord,
  CandidatesRepository,
  FrontRecord,
  FrontsRepository,
  ModelRecord,
  ModelsRepository,
  PoliciesRepository,
  PolicyRecord,
  ProcessedEventRecord,
  ProcessedEventsRepository,
  ScoreRecord,
  ScoresRepository,
  SearchRecord,
  SearchesRepository,
  Split,
  Store,
} from './ports.js';

/**
 * One collection held in a Map under its unique key. Records are deep-copied in and out
 * (structuredClone keeps Dates), so a caller mutating what it passed or got back changes nothing stored.
 */
class MemoryCollection<T extends object> {
  private readonly rows = new Map<string, T>();

  constructor(
    private readonly schema: CollectionSchema<T>,
    private readonly isStarted: () => boolean,
  ) {}

  insert(record: T): void {
    this.check();
    const key = this.keyString(record);
    if (this.rows.has(key)) throw new DuplicateKeyError(this.schema.name, keyOf(this.schema, record));
    this.rows.set(key, copyIn(record));
  }

  insertIfAbsent(record: T): boolean {
    this.check();
    const key = this.keyString(record);
    if (this.rows.has(key)) return false;
    this.rows.set(key, copyIn(record));
    return true;
  }

  upsert(record: T): void {
    this.check();
    this.rows.set(this.keyString(record), copyIn(record));
  }

  get(key: Partial<T>): T | undefined {
    this.check();
    const row = this.rows.get(this.keyString(key));
    return row === undefined ? undefined : structuredClone(row);
  }

  update(key: Partial<T>, patch: Partial<T>): T | undefined {
    this.check();
    const { set, unset } = checkPatch(this.schema, patch);
    const k = this.keyString(key);
    const row = this.rows.get(k);
    if (row === undefined) return undefined;
    const next = { ...row, ...copyIn(set) } as T;
    for (const field of unset) delete next[field];
    this.rows.set(k, next);
    return structuredClone(next);
  }

  find(where: Partial<T> = {}): T[] {
    this.check();
    const matches: T[] = [];
    for (const row of this.rows.values()) {
      const ok = (Object.entries(where) as [keyof T, unknown][]).every(
        ([field, value]) => value === undefined || row[field] === value,
      );
      if (ok) matches.push(row);
    }
    return matches.sort((a, b) => compareInOrder(this.schema, a, b)).map((row) => structuredClone(row));
  }

  /** Rows whose `field` is one of `values`, in the schema's order. */
  findIn(field: keyof T, values: readonly unknown[]): T[] {
    this.check();
    const wanted = new Set(values);
    return [...this.rows.values()]
      .filter((row) => wanted.has(row[field]))
      .sort((a, b) => compareInOrder(this.schema, a, b))
      .map((row) => structuredClone(row));
  }

  private keyString(record: Partial<T>): string {
    return JSON.stringify(this.schema.key.map((field) => record[field]));
  }

  private check(): void {
    if (!this.isStarted()) throw notStarted('in-memory');
  }
}

/** Drops top-level undefined values (as the MongoDB adapter does) and deep-copies the rest. */
function copyIn<T extends object>(record: T): T {
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(record)) if (value !== undefined) out[field] = value;
  return structuredClone(out) as T;
}

/** The in-process Store: same semantics and errors as the MongoDB adapter, nothing persisted. */
export class InMemoryStore implements Store {
  private started = false;
  private readonly isStarted = (): boolean => this.started;

  private readonly modelRows = new MemoryCollection(MODELS, this.isStarted);
  private readonly searchRows = new MemoryCollection(SEARCHES, this.isStarted);
  private readonly candidateRows = new MemoryCollection(CANDIDATES, this.isStarted);
  private readonly scoreRows = new MemoryCollection(SCORES, this.isStarted);
  private readonly frontRows = new MemoryCollection(FRONTS, this.isStarted);
  private readonly policyRows = new MemoryCollection(POLICIES, this.isStarted);
  private readonly eventRows = new MemoryCollection(PROCESSED_EVENTS, this.isStarted);

  readonly models: ModelsRepository = {
    insert: async (model: ModelRecord) => this.modelRows.insert(model),
    upsert: async (model: ModelRecord) => this.modelRows.upsert(model),
    get: async (id: string) => this.modelRows.get({ id }),
    list: async () => this.modelRows.find(),
  };

  readonly searches: SearchesRepository = {
    insert: async (search: SearchRecord) => this.searchRows.insert(search),
    get: async (id: string) => this.searchRows.get({ id }),
    update: async (id: string, patch: Partial<Omit<SearchRecord, 'id'>>) =>
      this.searchRows.update({ id }, patch),
    list: async (filter = {}) => this.searchRows.find({ state: filter.state }),
  };

  readonly candidates: CandidatesRepository = {
    insert: async (candidate: CandidateRecord) => this.candidateRows.insert(candidate),
    insertIfAbsent: async (candidate: CandidateRecord) => this.candidateRows.insertIfAbsent(candidate),
    insertManyIfAbsent: async (candidates: readonly CandidateRecord[]) =>
      candidates.filter((c) => this.candidateRows.insertIfAbsent(c)).length,
    get: async (id: string) => this.candidateRows.get({ id }),
    update: async (id: string, patch: Partial<Omit<CandidateRecord, 'id'>>) =>
      this.candidateRows.update({ id }, patch),
    updateMany: async (ids: readonly string[], patch: Partial<Omit<CandidateRecord, 'id'>>) => {
      checkPatch<CandidateRecord>(CANDIDATES, patch);
      return [...new Set(ids)].filter((id) => this.candidateRows.update({ id }, patch) !== undefined).length;
    },
    listBySearch: async (searchId: string) => this.candidateRows.find({ searchId }),
  };

  readonly scores: ScoresRepository = {
    insert: async (score: ScoreRecord) => this.scoreRows.insert(score),
    upsert: async (score: ScoreRecord) => this.scoreRows.upsert(score),
    upsertMany: async (scores: readonly ScoreRecord[]) => {
      for (const s of scores) this.scoreRows.upsert(s);
    },
    get: async (candidateId: string, objective: string, split: Split) =>
      this.scoreRows.get({ candidateId, objective, split }),
    listByCandidate: async (candidateId: string) => this.scoreRows.find({ candidateId }),
    listByCandidates: async (candidateIds: readonly string[]) =>
      this.scoreRows.findIn('candidateId', candidateIds),
    listBySearch: async (searchId: string) => this.scoreRows.find({ searchId }),
  };

  readonly fronts: FrontsRepository = {
    insert: async (front: FrontRecord) => this.frontRows.insert(front),
    upsert: async (front: FrontRecord) => this.frontRows.upsert(front),
    latest: async (searchId: string) => this.frontRows.find({ searchId }).at(-1),
    list: async (searchId: string) => this.frontRows.find({ searchId }),
  };

  readonly policies: PoliciesRepository = {
    insert: async (policy: PolicyRecord) => this.policyRows.insert(policy),
    upsert: async (policy: PolicyRecord) => this.policyRows.upsert(policy),
    get: async (id: string) => this.policyRows.get({ id }),
    list: async () => this.policyRows.find(),
  };

  readonly processedEvents: ProcessedEventsRepository = {
    has: async (eventId: string) => this.eventRows.get({ eventId }) !== undefined,
    mark: async (eventId: string, consumer: string) =>
      this.eventRows.insertIfAbsent({
        eventId,
        consumer,
        processedAt: new Date(),
      } satisfies ProcessedEventRecord),
  };

  async start(): Promise<void> {
    this.started = true;
  }

  /** Stops accepting operations; the data stays, so start() again sees it. */
  async close(): Promise<void> {
    this.started = false;
  }
}

export function createInMemoryStore(): InMemoryStore {
  return new InMemoryStore();
}
