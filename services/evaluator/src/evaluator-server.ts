/**
 * One evaluator process: the Evaluator core over a store, an artifact folder and a bus, served over
 * gRPC (service-kit: auth, health, metrics, shutdown) with the evaluation-request consumer and the
 * score recorder beside it.
 */
import type { EventBus, IdempotentSubscription } from '@hm3/events';
import type { Device } from '@hm3/model';
import { evaluator } from '@hm3/proto';
import { createServer, type Logger, type ServiceConfig, type ServiceServer } from '@hm3/service-kit';
import { LocalArtifactStore, type Store } from '@hm3/store';
import { startEvalConsumer } from './eval-consumer.js';
import { evaluationMetrics } from './evaluation-metrics.js';
import { Evaluator } from './evaluator.js';
import { evaluatorHandlers } from './evaluator-service.js';
import { startScoreRecorder } from './score-recorder.js';

export interface EvaluatorServerOptions {
  readonly config: ServiceConfig;
  readonly store: Store;
  readonly modelsRoot: string;
  readonly datasetRoots: readonly string[];
  readonly artifactRoot: string;
  /** The bus the consumers run on; none: gRPC only. */
  readonly bus?: EventBus;
  /** Run the hm3.eval.requested consumer (default true with a bus). Off when an external cluster evaluates. */
  readonly consumeRequests?: boolean;
  /** Record the scores of every hm3.eval.completed (default true with a bus). */
  readonly recordScores?: boolean;
  readonly defaultDevice?: Device;
  readonly intraOpThreads?: number;
  /** Flush denormals in the model runtimes (EvaluatorOptions.flushDenormals; default false). */
  readonly flushDenormals?: boolean;
  /** Keep per-example records in the artifact store (default true; needs a writable artifact root). */
  readonly keepRecords?: boolean;
  readonly logger?: Logger;
  readonly consumerGroup?: string;
}

export interface RunningEvaluator {
  readonly server: ServiceServer;
  readonly core: Evaluator;
  readonly consumer: IdempotentSubscription | undefined;
  readonly recorder: IdempotentSubscription | undefined;
  readonly port: number;
  /** Stops the consumers, then the server (graceful), then the runtime. The store and bus stay the caller's. */
  stop(reason?: string): Promise<void>;
}

/** Starts the gRPC server and (with a bus) the consumers. The store and bus must be started already. */
export async function startEvaluatorServer(options: EvaluatorServerOptions): Promise<RunningEvaluator> {
  const artifacts = new LocalArtifactStore(options.artifactRoot);
  await artifacts.start();
  const server = createServer(options.config, {
    name: 'evaluator',
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  const metrics = evaluationMetrics(server.registry);
  const core = new Evaluator({
    store: options.store,
    artifacts,
    modelsRoot: options.modelsRoot,
    datasetRoots: options.datasetRoots,
    ...(options.defaultDevice === undefined ? {} : { defaultDevice: options.defaultDevice }),
    ...(options.intraOpThreads === undefined ? {} : { intraOpThreads: options.intraOpThreads }),
    ...(options.keepRecords === undefined ? {} : { keepRecords: options.keepRecords }),
    ...(options.flushDenormals === undefined ? {} : { flushDenormals: options.flushDenormals }),
    onScored: (score, seconds) => metrics.observe(score, seconds),
    onWarning: (message, details) => server.logger.warn(details, message),
  });
  server.addService(evaluator.EvaluatorServiceService, evaluatorHandlers(core));
  await server.start();
  let consumer: IdempotentSubscription | undefined;
  let recorder: IdempotentSubscription | undefined;
  try {
    if (options.bus !== undefined && options.consumeRequests !== false) {
      consumer = await startEvalConsumer(options.bus, options.store.processedEvents, core, {
        logger: server.logger,
        ...(options.consumerGroup === undefined ? {} : { groupId: options.consumerGroup }),
      });
    }
    if (options.bus !== undefined && options.recordScores !== false) {
      recorder = await startScoreRecorder(options.bus, options.store.processedEvents, options.store.scores, {
        logger: server.logger,
        searches: options.store.searches,
      });
    }
  } catch (error) {
    await consumer?.stop();
    await server.shutdown('consumer failed to start');
    await core.close();
    throw error;
  }
  return {
    server,
    core,
    consumer,
    recorder,
    port: server.port,
    stop: async (reason = 'stop') => {
      await consumer?.stop();
      await recorder?.stop();
      await server.shutdown(reason);
      await core.close();
    },
  };
}
