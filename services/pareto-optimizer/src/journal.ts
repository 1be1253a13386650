/**
 * The optimizer's journal: the result of each port call of a search (a merge's uri, a policy's
 * proposals, a reward report), keyed by content, written before the search loop sees the result. The
 * loop is deterministic given its seed and these results, so after a restart it re-runs from the
 * start and every journaled call returns at once: no event, evaluation or PPO update is repeated.
 * Two adapters: MongoDB (collection `optimizer_journal`, unique top-level `key`) and in-memory.
 */
import { MongoClient, type Collection, type MongoClientOptions } from 'mongodb';

export interface Journal {
  get(key: string): Promise<unknown>;
  /** Records the value once; a second put of the same key keeps the first value. */
  put(key: string, value: unknown): Promise<void>;
  /** put of many in one round trip (each key keeps its first value). */
  putMany(entries: readonly (readonly [string, unknown])[]): Promise<void>;
  /** Every entry whose key starts with `prefix`, in one round trip (a resumed search's merges). */
  list(prefix: string): Promise<Map<string, unknown>>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export class InMemoryJournal implements Journal {
  private readonly entries = new Map<string, string>();

  get(key: string): Promise<unknown> {
    const text = this.entries.get(key);
    return Promise.resolve(text === undefined ? undefined : (JSON.parse(text) as unknown));
  }

  put(key: string, value: unknown): Promise<void> {
    if (!this.entries.has(key)) this.entries.set(key, JSON.stringify(value));
    return Promise.resolve();
  }

  async putMany(entries: readonly (readonly [string, unknown])[]): Promise<void> {
    for (const [key, value] of entries) await this.put(key, value);
  }

  list(prefix: string): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    for (const [key, text] of this.entries)
      if (key.startsWith(prefix)) out.set(key, JSON.parse(text) as unknown);
    return Promise.resolve(out);
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export const JOURNAL_COLLECTION = 'optimizer_journal';

interface JournalDocument {
  key: string;
  /** The value as JSON text (FerretDB and MongoDB store it alike, whatever its shape). */
  value: string;
  created_at: Date;
}

export interface MongoJournalOptions {
  readonly url: string;
  readonly database: string;
  readonly username?: string;
  readonly password?: string;
}

export class MongoJournal implements Journal {
  private client: MongoClient | undefined;
  private collection: Collection<JournalDocument> | undefined;

  constructor(private readonly options: MongoJournalOptions) {}

  async start(): Promise<void> {
    const clientOptions: MongoClientOptions = {
      ...(this.options.username && this.options.password
        ? { auth: { username: this.options.username, password: this.options.password } }
        : {}),
    };
    this.client = new MongoClient(this.options.url, clientOptions);
    await this.client.connect();
    this.collection = this.client.db(this.options.database).collection<JournalDocument>(JOURNAL_COLLECTION);
    await this.collection.createIndex({ key: 1 }, { unique: true, name: 'key_unique' });
  }

  async get(key: string): Promise<unknown> {
    const doc = await this.require().findOne({ key });
    return doc === null ? undefined : (JSON.parse(doc.value) as unknown);
  }

  async put(key: string, value: unknown): Promise<void> {
    try {
      await this.require().insertOne({ key, value: JSON.stringify(value), created_at: new Date() });
    } catch (error) {
      // Already journaled (a replay, or a second writer): the first value stays.
      if ((error as { code?: unknown }).code !== 11000) throw error;
    }
  }

  async putMany(entries: readonly (readonly [string, unknown])[]): Promise<void> {
    if (entries.length === 0) return;
    const at = new Date();
    try {
      await this.require().insertMany(
        entries.map(([key, value]) => ({ key, value: JSON.stringify(value), created_at: at })),
        { ordered: false },
      );
    } catch (error) {
      // Unordered: everything but the keys already journaled was written; those keep their first value.
      const writeErrors = (error as { writeErrors?: unknown }).writeErrors;
      const list = Array.isArray(writeErrors) ? writeErrors : writeErrors === undefined ? [] : [writeErrors];
      const codes = list.map((e) => (e as { code?: unknown }).code);
      if (codes.length === 0 ? (error as { code?: unknown }).code !== 11000 : codes.some((c) => c !== 11000))
        throw error;
    }
  }

  async list(prefix: string): Promise<Map<string, unknown>> {
    const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const docs = await this.require()
      .find({ key: { $regex: `^${escaped}` } })
      .toArray();
    return new Map(docs.map((d) => [d.key, JSON.parse(d.value) as unknown]));
  }

  async close(): Promise<void> {
    await this.client?.close();
    this.client = undefined;
    this.collection = undefined;
  }

  private require(): Collection<JournalDocument> {
    if (!this.collection) throw new Error('the journal is not started');
    return this.collection;
  }
}
