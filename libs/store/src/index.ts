// @hm3/store: repository ports and the ArtifactStore, with MongoDB, in-memory and local-folder adapters.
export type {
  ArtifactLease,
  ArtifactStore,
  ArtifactWriteResult,
  CandidateRecord,
  CandidateState,
  CandidatesRepository,
  FrontRecord,
  FrontsRepository,
  ModelFile,
  ModelRecord,
  ModelsRepository,
  PoliciesRepository,
  PolicyRecord,
  ProcessedEventRecord,
  ProcessedEventsRepository,
  ScoreRecord,
  ScoresRepository,
  SearchRecord,
  SearchState,
  SearchesRepository,
  Split,
  Store,
} from './ports.js';
export { DUPLICATE_KEY_CODE, DuplicateKeyError, isDuplicateKeyError } from './errors.js';
export type { StoreLogger } from './store-logger.js';
export { InMemoryStore, createInMemoryStore } from './in-memory-store.js';
export { MongoStore, createMongoStore, redactMongoUrl, type MongoStoreOptions } from './mongo-store.js';
export {
  LocalArtifactStore,
  validateArtifactId,
  type LocalArtifactStoreOptions,
} from './local-artifact-store.js';
