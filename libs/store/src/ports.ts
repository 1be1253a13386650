/**
 * Repository ports of HM3's state. Two adapters implement them (MongoDB through the official driver,
 * and in-memory); ONE contract suite runs against both.
 *
 * Unique keys are on top-level fields only (FerretDB's SQLite backend does not index nested fields):
 *   models.id, searches.id, candidates.id, scores (candidateId, objective, split),
 *   fronts (searchId, round), policies.id, processed_events.eventId.
 * An insert that breaks a unique key throws DuplicateKeyError (code 11000, as the MongoDB driver says).
 * Documents hold JSON-compatible values; Dates are stored as dates.
 */

export interface ModelFile {
  /** Path relative to the model folder. */
  path: string;
  sha256: string;
  bytes: number;
}

export interface ModelRecord {
  id: string;
  uri: string;
  architecture: string;
  dtype: string;
  files: ModelFile[];
  /** The config.json as read, kept for planning without touching the files again. */
  config?: Record<string, unknown>;
  createdAt: Date;
}

export type SearchState = 'PENDING' | 'RUNNING' | 'COMPLETED' | 'CANCELLED' | 'FAILED';

export interface SearchRecord {
  id: string;
  /** The search spec as given (domain JSON, not wire bytes). */
  spec: Record<string, unknown>;
  state: SearchState;
  round: number;
  error?: string;
  createdAt: Date;
  updatedAt: Date;
}

export type CandidateState = 'PENDING' | 'MERGING' | 'MERGED' | 'EVALUATING' | 'SCORED' | 'FAILED';

export interface CandidateRecord {
  /** Content id: hash of (recipe with source sha256s, path, affine maps, head source). */
  id: string;
  searchId: string;
  round: number;
  recipe?: Record<string, unknown>;
  path?: Record<string, unknown>;
  artifactId?: string;
  state: CandidateState;
  error?: string;
  createdAt: Date;
  updatedAt: Date;
}

export type Split = 'search' | 'heldout';

export interface ScoreRecord {
  candidateId: string;
  objective: string;
  split: Split;
  searchId: string;
  value: number;
  /** Optional per-metric extras (counts, timings); per-example records live in the artifact store. */
  details?: Record<string, unknown>;
  createdAt: Date;
}

export interface FrontRecord {
  searchId: string;
  round: number;
  candidateIds: string[];
  hypervolume: number;
  createdAt: Date;
}

export interface PolicyRecord {
  id: string;
  /** Artifact id of the weights (safetensors) in the ArtifactStore. */
  weightsArtifactId?: string;
  settings: Record<string, unknown>;
  iterations: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface ProcessedEventRecord {
  eventId: string;
  consumer: string;
  processedAt: Date;
}

export interface ModelsRepository {
  insert(model: ModelRecord): Promise<void>;
  upsert(model: ModelRecord): Promise<void>;
  get(id: string): Promise<ModelRecord | undefined>;
  list(): Promise<ModelRecord[]>;
}

export interface SearchesRepository {
  insert(search: SearchRecord): Promise<void>;
  get(id: string): Promise<SearchRecord | undefined>;
  /**
   * Applies the patch to top-level fields; returns the updated record, undefined if absent.
   * A key present with the value `undefined` clears an optional field (`error`); clearing a required
   * field is an InvalidArgumentError. `updatedAt` is the caller's to set.
   */
  update(id: string, patch: Partial<Omit<SearchRecord, 'id'>>): Promise<SearchRecord | undefined>;
  list(filter?: { state?: SearchState }): Promise<SearchRecord[]>;
}

export interface CandidatesRepository {
  insert(candidate: CandidateRecord): Promise<void>;
  /** Inserts if absent; returns true when this call created it (content ids make this idempotent). */
  insertIfAbsent(candidate: CandidateRecord): Promise<boolean>;
  /**
   * insertIfAbsent of many in one round trip: the absent ones are created, the others left as they
   * are; returns how many this call created.
   */
  insertManyIfAbsent(candidates: readonly CandidateRecord[]): Promise<number>;
  get(id: string): Promise<CandidateRecord | undefined>;
  /** Same patch rules as SearchesRepository.update. */
  update(id: string, patch: Partial<Omit<CandidateRecord, 'id'>>): Promise<CandidateRecord | undefined>;
  /** The same patch on every listed id, in one round trip; returns how many records matched. */
  updateMany(ids: readonly string[], patch: Partial<Omit<CandidateRecord, 'id'>>): Promise<number>;
  listBySearch(searchId: string): Promise<CandidateRecord[]>;
}

export interface ScoresRepository {
  insert(score: ScoreRecord): Promise<void>;
  /** Idempotent write of a score: replaces the value for its unique key. */
  upsert(score: ScoreRecord): Promise<void>;
  get(candidateId: string, objective: string, split: Split): Promise<ScoreRecord | undefined>;
  /**
   * upsert of many in one round trip (each record replaces the one of its key, or is created);
   * idempotent like upsert.
   */
  upsertMany(scores: readonly ScoreRecord[]): Promise<void>;
  listByCandidate(candidateId: string): Promise<ScoreRecord[]>;
  /** The scores of any of these candidates, in one round trip, ordered like listByCandidate's. */
  listByCandidates(candidateIds: readonly string[]): Promise<ScoreRecord[]>;
  listBySearch(searchId: string): Promise<ScoreRecord[]>;
}

export interface FrontsRepository {
  /** Records the front of a round once; a second front for the same (searchId, round) is a DuplicateKeyError. */
  insert(front: FrontRecord): Promise<void>;
  /** Idempotent per (searchId, round). */
  upsert(front: FrontRecord): Promise<void>;
  latest(searchId: string): Promise<FrontRecord | undefined>;
  list(searchId: string): Promise<FrontRecord[]>;
}

export interface PoliciesRepository {
  insert(policy: PolicyRecord): Promise<void>;
  upsert(policy: PolicyRecord): Promise<void>;
  get(id: string): Promise<PolicyRecord | undefined>;
  list(): Promise<PolicyRecord[]>;
}

export interface ProcessedEventsRepository {
  has(eventId: string): Promise<boolean>;
  /** Records the marker; returns false when it was already there (never throws for a duplicate). */
  mark(eventId: string, consumer: string): Promise<boolean>;
}

export interface Store {
  readonly models: ModelsRepository;
  readonly searches: SearchesRepository;
  readonly candidates: CandidatesRepository;
  readonly scores: ScoresRepository;
  readonly fronts: FrontsRepository;
  readonly policies: PoliciesRepository;
  readonly processedEvents: ProcessedEventsRepository;
  /** Connects and creates indexes (idempotent). */
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Checkpoints and other files, addressed by content id. A writer fills a fresh folder under
 * `<root>/.tmp/<random>` on the same volume; the store fsyncs and renames it to `<root>/<id>`.
 * An existing `<root>/<id>` is success (same content id), not an error.
 */
export interface ArtifactWriteResult {
  id: string;
  path: string;
  /** False when the artifact already existed and the new copy was discarded. */
  created: boolean;
}

export interface ArtifactLease {
  readonly id: string;
  readonly path: string;
  release(): void;
}

export interface ArtifactStore {
  write(id: string, fill: (tempDir: string) => Promise<void>): Promise<ArtifactWriteResult>;
  has(id: string): Promise<boolean>;
  /** Holds the artifact open for reading: delete waits (or refuses) while a lease is held. */
  open(id: string): Promise<ArtifactLease>;
  /** Deletes unless a reader holds it; returns false when it was held and so kept. */
  delete(id: string): Promise<boolean>;
  list(): Promise<string[]>;
}
