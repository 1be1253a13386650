/**
 * One tensor-merge process: the TensorMerge core over a store, an artifact folder and a bus, served
 * over gRPC (service-kit: auth, health, metrics, shutdown) with the merge-request consumer beside it.
 */
import { LocalArtifactStore, type Store } from '@hm3/store';
import type { EventBus, IdempotentSubscription } from '@hm3/events';
import { merge } from '@hm3/proto';
import { createServer, type Logger, type ServiceConfig, type ServiceServer } from '@hm3/service-kit';
import { tiesBandedBackend } from '@hm3/tensor';
import type { Device } from './device.js';
import { startMergeConsumer } from './merge-consumer.js';
import { TensorMerge } from './tensor-merge.js';
import { tensorMergeHandlers } from './tensor-merge-service.js';

export interface TensorMergeServerOptions {
  readonly config: ServiceConfig;
  readonly store: Store;
  readonly modelsRoot: string;
  readonly artifactRoot: string;
  /** The bus the merge-request consumer runs on; none: gRPC only. */
  readonly bus?: EventBus;
  readonly threads?: number;
  readonly maxMemory?: number;
  readonly defaultDevice?: Device;
  readonly logger?: Logger;
  readonly consumerGroup?: string;
}

export interface RunningTensorMerge {
  readonly server: ServiceServer;
  readonly core: TensorMerge;
  readonly consumer: IdempotentSubscription | undefined;
  /** The bound gRPC port. */
  readonly port: number;
  /** Stops the consumer, then the server (graceful). The store and bus stay the caller's. */
  stop(reason?: string): Promise<void>;
}

/** Starts the gRPC server and (with a bus) the consumer. The store and bus must be started already. */
export async function startTensorMergeServer(options: TensorMergeServerOptions): Promise<RunningTensorMerge> {
  const artifacts = new LocalArtifactStore(options.artifactRoot);
  await artifacts.start();
  const core = new TensorMerge({
    store: options.store,
    artifacts,
    modelsRoot: options.modelsRoot,
    ...(options.threads === undefined ? {} : { threads: options.threads }),
    ...(options.maxMemory === undefined ? {} : { maxMemory: options.maxMemory }),
    ...(options.defaultDevice === undefined ? {} : { defaultDevice: options.defaultDevice }),
  });
  const server = createServer(options.config, {
    name: 'tensor-merge',
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  server.addService(merge.TensorMergeServiceService, tensorMergeHandlers(core));
  await server.start();
  // the merges still run without the WebAssembly kernels (same bytes), but several times slower: say so
  const backend = tiesBandedBackend();
  if (backend.kind === 'js')
    server.logger.warn(
      { reason: backend.reason },
      'the WebAssembly merge kernels did not load: bf16 ties and task_arithmetic run on the JS kernels, several times slower',
    );
  let consumer: IdempotentSubscription | undefined;
  try {
    consumer =
      options.bus === undefined
        ? undefined
        : await startMergeConsumer(options.bus, options.store.processedEvents, core, {
            logger: server.logger,
            ...(options.consumerGroup === undefined ? {} : { groupId: options.consumerGroup }),
          });
  } catch (error) {
    await server.shutdown('consumer failed to start');
    throw error;
  }
  return {
    server,
    core,
    consumer,
    port: server.port,
    stop: async (reason = 'stop') => {
      await consumer?.stop();
      await server.shutdown(reason);
    },
  };
}
