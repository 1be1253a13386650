// @hm3/pareto-optimizer: ParetoOptimizerService (gRPC) running @hm3/search over Kafka-backed merge and
// evaluation ports and the rl-policy service, with its state in the store and a journal for resume.
export { ParetoOptimizer, type ParetoOptimizerOptions } from './optimizer.js';
export { optimizerHandlers } from './optimizer-grpc.js';
export {
  startParetoOptimizerServer,
  type ParetoOptimizerServerOptions,
  type PolicyServiceAddress,
  type RunningParetoOptimizer,
} from './optimizer-server.js';
export {
  InMemoryJournal,
  MongoJournal,
  JOURNAL_COLLECTION,
  type Journal,
  type MongoJournalOptions,
} from './journal.js';
export { FolderModelCatalog, modelFolder, type CatalogRoots } from './catalog.js';
export { ReplyRouter, OPTIMIZER_CONSUMER_GROUP, REPLY_TOPICS } from './replies.js';
export { candidateTraceId, SearchCancelledError } from './ports.js';
export { createOptimizerMetrics, type OptimizerMetrics } from './metrics.js';
export { specFromWire, specToWire, stateToWire } from './wire.js';
export {
  startStubEvaluator,
  startStubMerger,
  stubScore,
  type StubRequest,
  type StubService,
} from './stub-services.js';
