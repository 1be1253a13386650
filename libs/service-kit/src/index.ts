// @hm3/service-kit: the gRPC server and client bootstrap of every HM3 service (config, health,
// reflection, bearer-token auth, TLS / mTLS, logs, metrics, deadlines, graceful shutdown).
export { loadServiceConfig, serviceConfigSchema, envName, flagName, LOG_LEVELS } from './config.js';
export type { ServiceConfig, ServiceConfigInput, LoadServiceConfigOptions } from './config.js';
export { createServer, ServiceServer } from './server.js';
export type { ServerOptions } from './server.js';
export type {
  RpcContext,
  UnaryHandler,
  ServerStreamHandler,
  ServiceHandlers,
  HandlerFor,
} from './handlers.js';
export { createClient, checkHealth } from './client.js';
export type {
  ClientOptions,
  CallOptions,
  RetryOptions,
  ServiceClient,
  ClientMethod,
  ClientMethodDefinition,
  ClientServiceDefinition,
  HealthStatus,
} from './client.js';
export { installShutdownHandlers } from './shutdown.js';
export type { ShutdownHandlerOptions, Stoppable } from './shutdown.js';
export { grpcCodeOf, statusName, toRpcStatus } from './errors-to-status.js';
export type { RpcStatus } from './errors-to-status.js';
export { currentTraceId, withTraceId, newTraceId, TRACE_ID_HEADER } from './trace.js';
export { createLogger } from './logging.js';
export type { Logger, CreateLoggerOptions } from './logging.js';
export { parseTokenFile } from './auth.js';
export { withProgress } from './progress-stream.js';
