/**
 * One pareto-optimizer process: ParetoOptimizer over a store, a bus (Kafka in production), its
 * journal, the model catalog of the shared volumes and a PolicyService client, served over gRPC
 * (service-kit: auth, health, metrics, shutdown). Resumes the searches left RUNNING on start.
 */
import { optimizer, policy } from '@hm3/proto';
import type { EventBus } from '@hm3/events';
import {
  createClient,
  createServer,
  type Logger,
  type ServiceConfig,
  type ServiceServer,
} from '@hm3/service-kit';
import { LocalArtifactStore, type Store } from '@hm3/store';
import { FolderModelCatalog } from './catalog.js';
import type { Journal } from './journal.js';
import { createOptimizerMetrics } from './metrics.js';
import { ParetoOptimizer } from './optimizer.js';
import { optimizerHandlers } from './optimizer-grpc.js';

export interface PolicyServiceAddress {
  readonly address: string;
  readonly token?: string;
  readonly tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

export interface ParetoOptimizerServerOptions {
  readonly config: ServiceConfig;
  /** Started already; stays the caller's. */
  readonly store: Store;
  /** Started already; stays the caller's. */
  readonly bus: EventBus;
  /** Started already; stays the caller's. */
  readonly journal: Journal;
  readonly modelsRoot: string;
  readonly artifactRoot: string;
  readonly zooRoot?: string;
  readonly policyService: PolicyServiceAddress;
  readonly attemptTimeoutMs?: number;
  readonly evaluationTimeoutMs?: number;
  /** Merges and evaluations a search keeps in flight; default 32. */
  readonly concurrency?: number;
  /** Rounds whose merged checkpoints the retention policy keeps besides the front's; default 2; negative: no retention. */
  readonly retentionRounds?: number;
  /** How often consumer lag is refreshed on /metrics; default 15 s. */
  readonly lagRefreshMs?: number;
  readonly logger?: Logger;
}

export interface RunningParetoOptimizer {
  readonly server: ServiceServer;
  readonly core: ParetoOptimizer;
  readonly port: number;
  /** Stops the server and the answer consumer; running searches resume in the next process. */
  stop(reason?: string): Promise<void>;
}

export async function startParetoOptimizerServer(
  options: ParetoOptimizerServerOptions,
): Promise<RunningParetoOptimizer> {
  const server = createServer(options.config, {
    name: 'pareto-optimizer',
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  const policyClient = createClient(policy.PolicyServiceService, {
    address: options.policyService.address,
    ...(options.policyService.token === undefined ? {} : { token: options.policyService.token }),
    ...(options.policyService.tls === undefined ? {} : { tls: options.policyService.tls }),
    deadlineMs: 120_000,
  });
  const retentionRounds = options.retentionRounds ?? 2;
  const artifacts = new LocalArtifactStore(options.artifactRoot);
  const core = new ParetoOptimizer({
    store: options.store,
    bus: options.bus,
    journal: options.journal,
    catalog: new FolderModelCatalog({
      modelsRoot: options.modelsRoot,
      artifactRoot: options.artifactRoot,
      ...(options.zooRoot === undefined ? {} : { zooRoot: options.zooRoot }),
    }),
    policy: policyClient,
    logger: server.logger,
    metrics: createOptimizerMetrics(server.registry),
    ...(options.attemptTimeoutMs === undefined ? {} : { attemptTimeoutMs: options.attemptTimeoutMs }),
    ...(options.evaluationTimeoutMs === undefined
      ? {}
      : { evaluationTimeoutMs: options.evaluationTimeoutMs }),
    ...(retentionRounds >= 0 ? { retention: { artifacts, keepRounds: retentionRounds } } : {}),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
  });
  server.addService(optimizer.ParetoOptimizerServiceService, optimizerHandlers(core));
  await core.start();
  try {
    await server.start();
  } catch (error) {
    await core.stop();
    throw error;
  }
  // Consumer lag on /metrics, refreshed in the background.
  const refreshLag = () =>
    core.lag().catch((error: unknown) => server.logger.debug({ err: error }, 'lag refresh failed'));
  void refreshLag();
  const lagTimer = setInterval(() => void refreshLag(), options.lagRefreshMs ?? 15_000);
  lagTimer.unref();
  return {
    server,
    core,
    port: server.port,
    stop: async (reason = 'stop') => {
      clearInterval(lagTimer);
      await server.shutdown(reason);
      await core.stop();
      policyClient.close();
    },
  };
}
