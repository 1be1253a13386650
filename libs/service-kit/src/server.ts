/**
 * The gRPC server every HM3 service runs: grpc-js with health, reflection, bearer-token auth,
 * optional TLS / mTLS, message size limits, pino logs, Prometheus metrics and a graceful shutdown.
 *
 *   const config = loadServiceConfig({ env: process.env, argv: process.argv.slice(2) });
 *   const server = createServer(config, { name: 'tensor-merge', packageDefinition });
 *   server.addService(TensorMergeServiceService, { validate: async (req, ctx) => ..., merge: async function* (req, ctx) { ... } });
 *   await server.start();
 *   installShutdownHandlers(server);
 */
import { readFileSync } from 'node:fs';
import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { FailedPreconditionError, InvalidArgumentError, UnavailableError } from '@hm3/errors';
import { HealthImplementation, protoPath as healthProtoPath, type ServingStatus } from 'grpc-health-check';
import type { Registry } from 'prom-client';
import { TokenStore } from './auth.js';
import type { ServiceConfig } from './config.js';
import {
  ActiveCalls,
  splitPath,
  wrapService,
  type ServiceHandlers,
  type WrapDependencies,
} from './handlers.js';
import { createLogger, type Logger } from './logging.js';
import { createRegistry, RpcMetrics, startMetricsEndpoint, type MetricsEndpoint } from './metrics.js';

export interface ServerOptions {
  /** The service's name, on every log line. */
  name?: string;
  /** Default: a pino logger on stdout at `config.logLevel`. */
  logger?: Logger;
  /** Default: a fresh registry with node's default metrics. Services add their own metrics to it. */
  registry?: Registry;
  /**
   * Descriptors of the service's protos for server reflection (grpcurl, grpcui): a proto-loader
   * PackageDefinition, e.g. `loadSync('hm3/v1/merge.proto', { includeDirs: ['proto'] })`, or
   * `loadFileDescriptorSetFromBuffer(bytes)` of a `buf build -o image.binpb` image. The health
   * service is always included; without this option reflection lists health only.
   */
  packageDefinition?: PackageDefinition;
  /** Turn reflection off. Default on. */
  reflection?: boolean;
}

type State = 'created' | 'starting' | 'serving' | 'stopping' | 'stopped';

export class ServiceServer {
  readonly logger: Logger;
  readonly registry: Registry;
  private readonly grpcServer: Server;
  private readonly health = new HealthImplementation({ '': 'NOT_SERVING' });
  private readonly serviceNames = new Set<string>();
  private readonly deps: WrapDependencies;
  private metricsEndpoint: MetricsEndpoint | undefined;
  private boundPort: number | undefined;
  private state: State = 'created';
  private stopped: Promise<void> | undefined;

  constructor(
    readonly config: ServiceConfig,
    options: ServerOptions = {},
  ) {
    this.logger =
      options.logger ??
      createLogger({ level: config.logLevel, ...(options.name === undefined ? {} : { name: options.name }) });
    this.registry = options.registry ?? createRegistry();
    this.grpcServer = new Server({
      'grpc.max_receive_message_length': config.maxReceiveMessageBytes,
      'grpc.max_send_message_length': config.maxSendMessageBytes,
    });
    this.deps = {
      tokens: undefined,
      logger: this.logger,
      metrics: new RpcMetrics(this.registry),
      active: new ActiveCalls(),
    };
    this.health.addToServer(this.grpcServer);
    if (options.reflection !== false) {
      const health = loadSync(healthProtoPath);
      new ReflectionService({ ...health, ...options.packageDefinition }).addToServer(this.grpcServer);
    }
  }

  /** Registers a service; every handler is wrapped with auth, logs, metrics and error mapping. */
  addService<S extends ServiceDefinition>(definition: S, handlers: ServiceHandlers<S>): this {
    if (this.state !== 'created')
      throw new FailedPreconditionError('addService must run before start()', { state: this.state });
    const first = Object.values(definition)[0];
    if (first === undefined) throw new InvalidArgumentError('service definition has no methods');
    this.serviceNames.add(splitPath(first.path).service);
    this.grpcServer.addService(definition, wrapService(definition, handlers, this.deps));
    return this;
  }

  /** The bound gRPC port (after start). */
  get port(): number {
    if (this.boundPort === undefined) throw new FailedPreconditionError('server not started');
    return this.boundPort;
  }

  /** The bound /metrics port, or undefined when metrics are off. */
  get metricsPort(): number | undefined {
    return this.metricsEndpoint?.port;
  }

  /** RPCs now running. */
  get inFlight(): number {
    return this.deps.active.size;
  }

  /** Loads the tokens, binds, starts the metrics endpoint and reports SERVING. */
  async start(): Promise<void> {
    if (this.state !== 'created')
      throw new FailedPreconditionError('server already started', { state: this.state });
    this.state = 'starting';
    const { config } = this;
    try {
      if (config.tokenFile !== undefined) {
        this.deps.tokens = new TokenStore(config.tokenFile, this.logger, config.tokenReloadIntervalMs);
      } else {
        this.logger.warn(
          'bearer-token auth is OFF (allowUnauthenticated); never run like this outside a test',
        );
      }
      const address = config.host.includes(':')
        ? `[${config.host}]:${config.port}`
        : `${config.host}:${config.port}`;
      const credentials = this.credentials();
      this.boundPort = await new Promise<number>((resolve, reject) => {
        this.grpcServer.bindAsync(address, credentials, (error, port) =>
          error === null
            ? resolve(port)
            : reject(new UnavailableError(`cannot bind ${address}: ${error.message}`, { address }, error)),
        );
      });
      if (config.metricsPort !== null) {
        this.metricsEndpoint = await startMetricsEndpoint(this.registry, config.host, config.metricsPort);
      }
    } catch (error) {
      this.deps.tokens?.close();
      this.grpcServer.forceShutdown();
      await this.metricsEndpoint?.close();
      this.state = 'stopped';
      throw error;
    }
    this.setHealth('SERVING');
    this.state = 'serving';
    this.logger.info(
      {
        port: this.boundPort,
        metricsPort: this.metricsPort ?? null,
        services: [...this.serviceNames],
        tls: config.tlsCertFile !== undefined,
        mtls: config.mtls,
        auth: this.deps.tokens !== undefined,
      },
      'server listening',
    );
  }

  /**
   * Health NOT_SERVING at once; calls are still accepted for `shutdownDrainDelayMs` (so load
   * balancers see it); then tryShutdown lets in-flight calls finish; whatever still runs when
   * `shutdownGraceMs` (counted from the start of the shutdown) is over is cancelled.
   */
  shutdown(reason = 'shutdown'): Promise<void> {
    this.stopped ??= this.drain(reason);
    return this.stopped;
  }

  private async drain(reason: string): Promise<void> {
    const { shutdownDrainDelayMs, shutdownGraceMs } = this.config;
    const startedAt = Date.now();
    const wasServing = this.state === 'serving';
    this.state = 'stopping';
    this.setHealth('NOT_SERVING');
    this.logger.info({ reason, inFlight: this.inFlight }, 'shutting down: health NOT_SERVING');
    let drained = true;
    if (wasServing) {
      await sleep(Math.min(shutdownDrainDelayMs, shutdownGraceMs));
      drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), Math.max(0, startedAt + shutdownGraceMs - Date.now()));
        this.grpcServer.tryShutdown(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    }
    if (!drained) {
      this.logger.warn(
        { inFlight: this.inFlight, shutdownGraceMs },
        'grace period over: cancelling in-flight calls',
      );
      this.deps.active.abortAll('server shut down');
    }
    this.grpcServer.forceShutdown();
    this.deps.tokens?.close();
    await this.metricsEndpoint?.close();
    this.state = 'stopped';
    this.logger.info({ reason, drained, durationMs: Date.now() - startedAt }, 'server stopped');
  }

  private setHealth(status: ServingStatus): void {
    this.health.setStatus('', status);
    for (const name of this.serviceNames) this.health.setStatus(name, status);
  }

  private credentials(): ServerCredentials {
    const { tlsCertFile, tlsKeyFile, tlsCaFile, mtls } = this.config;
    if (tlsCertFile === undefined || tlsKeyFile === undefined) return ServerCredentials.createInsecure();
    const read = (file: string, field: string): Buffer => {
      try {
        return readFileSync(file);
      } catch (cause) {
        throw new FailedPreconditionError(`cannot read ${field} ${file}`, { field, file }, cause);
      }
    };
    return ServerCredentials.createSsl(
      tlsCaFile === undefined ? null : read(tlsCaFile, 'tlsCaFile'),
      [{ cert_chain: read(tlsCertFile, 'tlsCertFile'), private_key: read(tlsKeyFile, 'tlsKeyFile') }],
      mtls,
    );
  }
}

export function createServer(config: ServiceConfig, options: ServerOptions = {}): ServiceServer {
  return new ServiceServer(config, options);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
