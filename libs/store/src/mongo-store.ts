import {
  MongoClient,
  MongoClientClosedError,
  MongoError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  type Collection,
  type Db,
  type Document,
  type Filter,
  type MongoClientOptions,
  type Sort,
} from 'mongodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { Hm3Error, UnavailableError } from '@hm3/errors';
import { DUPLICATE_KEY_CODE, DuplicateKeyError } from './errors.js';
import {
  CANDIDATES,
  FRONTS,
  MODELS,
  POLICIES,
  PROCESSED_EVENTS,
  SCORES,
  SEARCHES,
  checkPatch,
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
  SearchState,
  Split,
  Store,
} from './ports.js';
import type { StoreLogger } from './store-logger.js';

export interface MongoStoreOptions {
  /** mongodb:// URL. Prefer passing credentials as username/password rather than inside it. */
  url: string;
  database: string;
  username?: string;
  password?: string;
  /** Authentication database (default: the driver's, i.e. the URL's or `admin`). */
  authSource?: string;
  /** TLS / mTLS: PEM contents (not paths) of the CA, the client certificate and its key. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; servername?: string };
  /** How long an operation waits for a reachable server before failing with UnavailableError (default 10 s). */
  serverSelectionTimeoutMS?: number;
  connectTimeoutMS?: number;
  maxPoolSize?: number;
  appName?: string;
  logger?: StoreLogger;
}

const DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 10_000;

/** The URL with any user:password removed, for logs, errors and test names. */
export function redactMongoUrl(url: string): string {
  return url.replace(/^(mongodb(?:\+srv)?:\/\/)[^@/]*@/, '$1***@');
}

/** The driver options built from the store options (exported for tests; holds the credentials). */
export function mongoClientOptions(options: MongoStoreOptions): MongoClientOptions {
  const client: MongoClientOptions = {
    serverSelectionTimeoutMS: options.serverSelectionTimeoutMS ?? DEFAULT_SERVER_SELECTION_TIMEOUT_MS,
    ignoreUndefined: true,
    // Writes are not retried by the driver on a standalone server; the store retries idempotent ones.
    retryWrites: true,
    retryReads: true,
  };
  if (options.connectTimeoutMS !== undefined) client.connectTimeoutMS = options.connectTimeoutMS;
  if (options.maxPoolSize !== undefined) client.maxPoolSize = options.maxPoolSize;
  if (options.appName !== undefined) client.appName = options.appName;
  if (options.username !== undefined || options.password !== undefined) {
    client.auth = { username: options.username, password: options.password };
    if (options.authSource !== undefined) client.authSource = options.authSource;
  }
  if (options.tls !== undefined) {
    client.tls = true;
    if (options.tls.ca !== undefined) client.ca = options.tls.ca;
    if (options.tls.cert !== undefined) client.cert = options.tls.cert;
    if (options.tls.key !== undefined) client.key = options.tls.key;
    if (options.tls.servername !== undefined) client.servername = options.tls.servername;
  }
  return client;
}

/** Server error codes that mean "the server is going away or unreachable", not "your request is wrong". */
const UNAVAILABLE_CODES = new Set([6, 7, 89, 91, 189, 9001, 10107, 11600, 11602, 13435, 13436]);

function isDuplicateKey(error: unknown): boolean {
  return error instanceof MongoServerError && (error.code === DUPLICATE_KEY_CODE || error.code === 11001);
}

function isUnavailable(error: unknown): boolean {
  if (
    error instanceof MongoNetworkError ||
    error instanceof MongoServerSelectionError ||
    error instanceof MongoTopologyClosedError ||
    error instanceof MongoNotConnectedError
  ) {
    return true;
  }
  if (error instanceof MongoError) {
    if (typeof error.code === 'number' && UNAVAILABLE_CODES.has(error.code)) return true;
    // The pool was cleared under the operation (the server went away mid-flight).
    if (error.hasErrorLabel('ResetPool') || error.hasErrorLabel('PoolRequestedRetry')) return true;
  }
  return false;
}

/**
 * True when the command cannot have reached the server: no server was selected, the pool was cleared
 * before checkout, or the connection failed while being established. Such a write is safe to retry.
 */
function neverSent(error: unknown): boolean {
  if (error instanceof MongoServerSelectionError) return true;
  if (!(error instanceof MongoNetworkError)) return false;
  return (
    error.name === 'MongoPoolClearedError' ||
    (error as { beforeHandshake?: boolean }).beforeHandshake === true ||
    error.hasErrorLabel('HandshakeError') ||
    error.hasErrorLabel('SystemOverloadedError')
  );
}

/** Statements per bulk write of updates or replaces (see updateMany). */
const BULK_CHUNK = 16;

type Run = <R>(
  collection: string,
  operation: string,
  fn: () => Promise<R>,
  opts: { idempotent: boolean; key?: Record<string, unknown> },
) => Promise<R>;

/**
 * One collection: maps domain records (camelCase) to documents (snake_case) through the schema.
 * `_id` is the server's ObjectId, never read nor exposed; the natural key has its own unique index,
 * so upserts replace by natural key and the stored `_id` stays stable.
 */
class MongoCollection<T extends object> {
  constructor(
    private readonly schema: CollectionSchema<T>,
    private readonly collection: () => Collection,
    private readonly run: Run,
  ) {}

  /** The unique index on the natural key, plus any lookup indexes (top-level fields only). */
  async createIndexes(lookups: (keyof T & string)[][]): Promise<void> {
    const c = this.collection();
    const spec = (fields: (keyof T & string)[]): Document =>
      Object.fromEntries(fields.map((f) => [this.schema.fields[f], 1]));
    await this.run(
      this.schema.name,
      'createIndexes',
      async () => {
        await c.createIndex(spec([...this.schema.key]), { unique: true, name: `${this.schema.name}_key` });
        for (const fields of lookups) {
          await c.createIndex(spec(fields), { name: `${this.schema.name}_by_${fields.join('_')}` });
        }
      },
      { idempotent: true },
    );
  }

  async insert(record: T): Promise<void> {
    const doc = this.toDocument(record);
    await this.run(this.schema.name, 'insert', () => this.collection().insertOne(doc), {
      idempotent: false,
      key: keyOf(this.schema, record),
    });
  }

  /** True when this call created the record; false when its key was already there. */
  async insertIfAbsent(record: T): Promise<boolean> {
    try {
      await this.insert(record);
      return true;
    } catch (error) {
      if (error instanceof DuplicateKeyError) return false;
      throw error;
    }
  }

  async upsert(record: T): Promise<void> {
    const key = keyOf(this.schema, record);
    const filter = this.filter(key as Partial<T>);
    const doc = this.toDocument(record);
    const replace = (): Promise<unknown> => this.collection().replaceOne(filter, doc, { upsert: true });
    try {
      await this.run(this.schema.name, 'upsert', replace, { idempotent: true, key });
    } catch (error) {
      // Two concurrent upserts of a new key: one inserts, the other hits the unique index. Replay it.
      if (!(error instanceof DuplicateKeyError)) throw error;
      await this.run(this.schema.name, 'upsert', replace, { idempotent: true, key });
    }
  }

  /**
   * Inserts many in one round trip, leaving the records whose key is already there as they are;
   * returns how many it created. Safe to retry (a record that landed is then a duplicate, skipped).
   */
  async insertManyIfAbsent(records: readonly T[]): Promise<number> {
    if (records.length === 0) return 0;
    const docs = records.map((r) => this.toDocument(r));
    try {
      const result = await this.run(
        this.schema.name,
        'insertMany',
        () => this.collection().insertMany(docs, { ordered: false }),
        { idempotent: true },
      );
      return result.insertedCount;
    } catch (error) {
      if (!(error instanceof DuplicateKeyError)) throw error;
      // Unordered: every record but the duplicates was inserted.
      const bulk = error.cause as { insertedCount?: number; result?: { insertedCount?: number } } | undefined;
      return bulk?.insertedCount ?? bulk?.result?.insertedCount ?? 0;
    }
  }

  /**
   * Upserts many: one insertMany round trip for the new records (the common case); the records whose
   * key was already there are then replaced by key in one bulk write.
   */
  async upsertMany(records: readonly T[]): Promise<void> {
    if (records.length === 0) return;
    try {
      await this.run(
        this.schema.name,
        'upsertMany',
        () =>
          this.collection().insertMany(
            records.map((r) => this.toDocument(r)),
            { ordered: false },
          ),
        { idempotent: true },
      );
      return;
    } catch (error) {
      if (!(error instanceof DuplicateKeyError)) throw error;
    }
    const replaceChunk = (chunk: readonly T[]) =>
      this.collection().bulkWrite(
        chunk.map((r) => ({
          replaceOne: {
            filter: this.filter(keyOf(this.schema, r) as Partial<T>),
            replacement: this.toDocument(r),
            upsert: true,
          },
        })),
        { ordered: false },
      );
    for (let i = 0; i < records.length; i += BULK_CHUNK) {
      const replace = () => replaceChunk(records.slice(i, i + BULK_CHUNK));
      try {
        await this.run(this.schema.name, 'upsertMany', replace, { idempotent: true });
      } catch (error) {
        // A concurrent upsert of one of the new keys won the insert: replay (they all exist now).
        if (!(error instanceof DuplicateKeyError)) throw error;
        await this.run(this.schema.name, 'upsertMany', replace, { idempotent: true });
      }
    }
  }

  /** The same patch on every listed key value of `field`; returns how many records matched. */
  async updateMany(field: keyof T & string, values: readonly unknown[], patch: Partial<T>): Promise<number> {
    const { set, unset } = checkPatch(this.schema, patch);
    if (values.length === 0 || (Object.keys(set).length === 0 && unset.length === 0)) return 0;
    const update: Document = {};
    if (Object.keys(set).length > 0) update.$set = this.toDocument(set);
    if (unset.length > 0) update.$unset = Object.fromEntries(unset.map((f) => [this.schema.fields[f], '']));
    // One equality filter per statement (the shape update() sends), in bulk writes of at most
    // BULK_CHUNK statements: FerretDB 1.24 answered a 100-statement update bulk only after minutes.
    const unique = [...new Set(values)];
    let matched = 0;
    for (let i = 0; i < unique.length; i += BULK_CHUNK) {
      const chunk = unique.slice(i, i + BULK_CHUNK);
      const result = await this.run(
        this.schema.name,
        'updateMany',
        () =>
          this.collection().bulkWrite(
            chunk.map((value) => ({ updateOne: { filter: { [this.schema.fields[field]]: value }, update } })),
            { ordered: false },
          ),
        { idempotent: true },
      );
      matched += result.matchedCount;
    }
    return matched;
  }

  /** Records whose `field` is one of `values`, in the schema's order. */
  async findIn(field: keyof T & string, values: readonly unknown[]): Promise<T[]> {
    if (values.length === 0) return [];
    const sort: Sort = Object.fromEntries(this.schema.order.map((f) => [this.schema.fields[f], 1]));
    const docs = await this.run(
      this.schema.name,
      'find',
      () =>
        this.collection()
          .find({ [this.schema.fields[field]]: { $in: [...new Set(values)] } })
          .sort(sort)
          .toArray(),
      { idempotent: true },
    );
    return docs.map((doc) => this.fromDocument(doc));
  }

  async get(key: Partial<T>): Promise<T | undefined> {
    const doc = await this.run(this.schema.name, 'get', () => this.collection().findOne(this.filter(key)), {
      idempotent: true,
    });
    return doc === null ? undefined : this.fromDocument(doc);
  }

  async update(key: Partial<T>, patch: Partial<T>): Promise<T | undefined> {
    const { set, unset } = checkPatch(this.schema, patch);
    if (Object.keys(set).length === 0 && unset.length === 0) return this.get(key);
    const update: Document = {};
    if (Object.keys(set).length > 0) update.$set = this.toDocument(set);
    if (unset.length > 0) update.$unset = Object.fromEntries(unset.map((f) => [this.schema.fields[f], '']));
    const doc = await this.run(
      this.schema.name,
      'update',
      () => this.collection().findOneAndUpdate(this.filter(key), update, { returnDocument: 'after' }),
      { idempotent: true },
    );
    return doc === null ? undefined : this.fromDocument(doc);
  }

  async find(where: Partial<T> = {}, options: { descending?: boolean; limit?: number } = {}): Promise<T[]> {
    const direction = options.descending === true ? -1 : 1;
    const sort: Sort = Object.fromEntries(this.schema.order.map((f) => [this.schema.fields[f], direction]));
    const docs = await this.run(
      this.schema.name,
      'find',
      () => {
        let cursor = this.collection().find(this.filter(where)).sort(sort);
        if (options.limit !== undefined) cursor = cursor.limit(options.limit);
        return cursor.toArray();
      },
      { idempotent: true },
    );
    return docs.map((doc) => this.fromDocument(doc));
  }

  private filter(where: Partial<T>): Filter<Document> {
    const filter: Document = {};
    for (const [field, value] of Object.entries(where) as [keyof T & string, unknown][]) {
      if (value !== undefined) filter[this.schema.fields[field]] = value;
    }
    return filter;
  }

  private toDocument(record: Partial<T>): Document {
    const doc: Document = {};
    for (const [field, value] of Object.entries(record) as [keyof T & string, unknown][]) {
      const name = this.schema.fields[field];
      if (name !== undefined && value !== undefined) doc[name] = value;
    }
    return doc;
  }

  private fromDocument(doc: Document): T {
    const record: Record<string, unknown> = {};
    for (const [field, name] of Object.entries(this.schema.fields) as [string, string][]) {
      if (doc[name] !== undefined) record[field] = doc[name];
    }
    return record as T;
  }
}

/**
 * The Store over MongoDB (or FerretDB v1) through the official driver. Uses only what both support:
 * no transactions, no change streams, plain CRUD with sort and limit. The driver reconnects by itself
 * after a server restart. During an outage an operation keeps retrying for up to
 * serverSelectionTimeoutMS and then fails with UnavailableError; only what is safe is retried: reads,
 * upserts and updates always, inserts only when the command cannot have reached the server (a retried
 * insert that had landed would report its own first write as a duplicate).
 */
export class MongoStore implements Store {
  private readonly client: MongoClient;
  private db: Db | undefined;
  /** Where the store points, without credentials: safe for logs and test names. */
  readonly target: string;

  private readonly modelRows: MongoCollection<ModelRecord>;
  private readonly searchRows: MongoCollection<SearchRecord>;
  private readonly candidateRows: MongoCollection<CandidateRecord>;
  private readonly scoreRows: MongoCollection<ScoreRecord>;
  private readonly frontRows: MongoCollection<FrontRecord>;
  private readonly policyRows: MongoCollection<PolicyRecord>;
  private readonly eventRows: MongoCollection<ProcessedEventRecord>;

  /** How long an operation keeps retrying through an outage (the serverSelectionTimeoutMS). */
  private readonly waitMs: number;

  constructor(private readonly options: MongoStoreOptions) {
    this.waitMs = options.serverSelectionTimeoutMS ?? DEFAULT_SERVER_SELECTION_TIMEOUT_MS;
    this.target = `${redactMongoUrl(options.url)} db=${options.database}`;
    this.client = new MongoClient(options.url, mongoClientOptions(options));
    const run: Run = (collection, operation, fn, opts) => this.run(collection, operation, fn, opts);
    const rows = <T extends object>(schema: CollectionSchema<T>): MongoCollection<T> =>
      new MongoCollection(schema, () => this.collection(schema.name), run);
    this.modelRows = rows(MODELS);
    this.searchRows = rows(SEARCHES);
    this.candidateRows = rows(CANDIDATES);
    this.scoreRows = rows(SCORES);
    this.frontRows = rows(FRONTS);
    this.policyRows = rows(POLICIES);
    this.eventRows = rows(PROCESSED_EVENTS);
  }

  readonly models: ModelsRepository = {
    insert: (model: ModelRecord) => this.modelRows.insert(model),
    upsert: (model: ModelRecord) => this.modelRows.upsert(model),
    get: (id: string) => this.modelRows.get({ id }),
    list: () => this.modelRows.find(),
  };

  readonly searches: SearchesRepository = {
    insert: (search: SearchRecord) => this.searchRows.insert(search),
    get: (id: string) => this.searchRows.get({ id }),
    update: (id: string, patch: Partial<Omit<SearchRecord, 'id'>>) => this.searchRows.update({ id }, patch),
    list: (filter: { state?: SearchState } = {}) => this.searchRows.find({ state: filter.state }),
  };

  readonly candidates: CandidatesRepository = {
    insert: (candidate: CandidateRecord) => this.candidateRows.insert(candidate),
    insertIfAbsent: (candidate: CandidateRecord) => this.candidateRows.insertIfAbsent(candidate),
    insertManyIfAbsent: (candidates: readonly CandidateRecord[]) =>
      this.candidateRows.insertManyIfAbsent(candidates),
    get: (id: string) => this.candidateRows.get({ id }),
    update: (id: string, patch: Partial<Omit<CandidateRecord, 'id'>>) =>
      this.candidateRows.update({ id }, patch),
    updateMany: (ids: readonly string[], patch: Partial<Omit<CandidateRecord, 'id'>>) =>
      this.candidateRows.updateMany('id', ids, patch),
    listBySearch: (searchId: string) => this.candidateRows.find({ searchId }),
  };

  readonly scores: ScoresRepository = {
    insert: (score: ScoreRecord) => this.scoreRows.insert(score),
    upsert: (score: ScoreRecord) => this.scoreRows.upsert(score),
    upsertMany: (scores: readonly ScoreRecord[]) => this.scoreRows.upsertMany(scores),
    get: (candidateId: string, objective: string, split: Split) =>
      this.scoreRows.get({ candidateId, objective, split }),
    listByCandidate: (candidateId: string) => this.scoreRows.find({ candidateId }),
    listByCandidates: (candidateIds: readonly string[]) => this.scoreRows.findIn('candidateId', candidateIds),
    listBySearch: (searchId: string) => this.scoreRows.find({ searchId }),
  };

  readonly fronts: FrontsRepository = {
    insert: (front: FrontRecord) => this.frontRows.insert(front),
    upsert: (front: FrontRecord) => this.frontRows.upsert(front),
    latest: async (searchId: string) =>
      (await this.frontRows.find({ searchId }, { descending: true, limit: 1 }))[0],
    list: (searchId: string) => this.frontRows.find({ searchId }),
  };

  readonly policies: PoliciesRepository = {
    insert: (policy: PolicyRecord) => this.policyRows.insert(policy),
    upsert: (policy: PolicyRecord) => this.policyRows.upsert(policy),
    get: (id: string) => this.policyRows.get({ id }),
    list: () => this.policyRows.find(),
  };

  readonly processedEvents: ProcessedEventsRepository = {
    has: async (eventId: string) => (await this.eventRows.get({ eventId })) !== undefined,
    mark: (eventId: string, consumer: string) =>
      this.eventRows.insertIfAbsent({ eventId, consumer, processedAt: new Date() }),
  };

  /** Connects and creates the indexes (idempotent). */
  async start(): Promise<void> {
    await this.run('*', 'connect', () => this.client.connect(), { idempotent: true });
    this.db = this.client.db(this.options.database);
    await this.modelRows.createIndexes([]);
    await this.searchRows.createIndexes([['state']]);
    await this.candidateRows.createIndexes([['searchId']]);
    await this.scoreRows.createIndexes([['searchId']]);
    await this.frontRows.createIndexes([]);
    await this.policyRows.createIndexes([]);
    await this.eventRows.createIndexes([]);
    this.options.logger?.info({ target: this.target }, 'store started');
  }

  async close(): Promise<void> {
    this.db = undefined;
    await this.client.close();
    this.options.logger?.info({ target: this.target }, 'store closed');
  }

  /** A round trip to the server (for health checks); UnavailableError when it cannot be reached. */
  async ping(): Promise<void> {
    const db = this.database();
    await this.run('*', 'ping', () => db.command({ ping: 1 }), { idempotent: true });
  }

  private database(): Db {
    if (this.db === undefined) throw notStarted('mongodb');
    return this.db;
  }

  private collection(name: string): Collection {
    return this.database().collection(name);
  }

  private async run<R>(
    collection: string,
    operation: string,
    fn: () => Promise<R>,
    opts: { idempotent: boolean; key?: Record<string, unknown> },
  ): Promise<R> {
    // The driver does not wait out every outage by itself (a refused connection fails the operation at
    // once), so the store keeps retrying what is safe to retry until serverSelectionTimeoutMS has passed.
    const deadline = Date.now() + this.waitMs;
    for (let delay = 50; ; delay = Math.min(delay * 2, 1_000)) {
      try {
        return await fn();
      } catch (error) {
        if (error instanceof Hm3Error) throw error;
        if (isDuplicateKey(error)) throw new DuplicateKeyError(collection, opts.key ?? {}, error);
        if (error instanceof MongoClientClosedError) throw notStarted('mongodb');
        if (isUnavailable(error)) {
          const remaining = deadline - Date.now();
          if ((opts.idempotent || neverSent(error)) && remaining > 0) {
            await sleep(Math.min(delay, remaining));
            continue;
          }
          this.options.logger?.warn({ target: this.target, collection, operation }, 'store unavailable');
          throw new UnavailableError(
            `MongoDB unavailable during ${collection}.${operation}: ${(error as Error).message}`,
            { collection, operation, target: this.target },
            error,
          );
        }
        throw new Hm3Error(`MongoDB ${collection}.${operation} failed: ${(error as Error).message}`, {
          status: 'INTERNAL',
          details: { collection, operation, target: this.target },
          cause: error,
        });
      }
    }
  }
}

export function createMongoStore(options: MongoStoreOptions): MongoStore {
  return new MongoStore(options);
}
