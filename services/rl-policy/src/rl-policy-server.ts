/**
 * One rl-policy process: the PolicyService core over a store (policy metadata) and an artifact folder
 * (weights, ONNX exports), served over gRPC (service-kit: auth, health, metrics, shutdown).
 */
import { policy } from '@hm3/proto';
import { createServer, type Logger, type ServiceConfig, type ServiceServer } from '@hm3/service-kit';
import { LocalArtifactStore, type Store } from '@hm3/store';
import { policyHandlers } from './policy-grpc.js';
import { PolicyServiceCore } from './policy-service.js';

export interface RlPolicyServerOptions {
  readonly config: ServiceConfig;
  /** Started already; stays the caller's. */
  readonly store: Store;
  readonly artifactRoot: string;
  readonly logger?: Logger;
}

export interface RunningRlPolicy {
  readonly server: ServiceServer;
  readonly core: PolicyServiceCore;
  /** The bound gRPC port. */
  readonly port: number;
  /** Stops the server (graceful). The store stays the caller's. */
  stop(reason?: string): Promise<void>;
}

export async function startRlPolicyServer(options: RlPolicyServerOptions): Promise<RunningRlPolicy> {
  const artifacts = new LocalArtifactStore(options.artifactRoot);
  await artifacts.start();
  const core = new PolicyServiceCore({ policies: options.store.policies, artifacts });
  const server = createServer(options.config, {
    name: 'rl-policy',
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  server.addService(policy.PolicyServiceService, policyHandlers(core));
  await server.start();
  return {
    server,
    core,
    port: server.port,
    stop: async (reason = 'stop') => {
      await server.shutdown(reason);
    },
  };
}
