/**
 * Prometheus metrics with prom-client: per-RPC counts by method and status code, a latency histogram,
 * an in-flight gauge, node's default metrics, served as text on GET /metrics.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type RpcType = 'unary' | 'server_stream';

export class RpcMetrics {
  private readonly handled: Counter<'grpc_service' | 'grpc_method' | 'grpc_type' | 'grpc_code'>;
  private readonly latency: Histogram<'grpc_service' | 'grpc_method' | 'grpc_type'>;
  private readonly inFlight: Gauge<'grpc_service' | 'grpc_method'>;

  constructor(readonly registry: Registry) {
    this.handled = new Counter({
      name: 'grpc_server_handled_total',
      help: 'RPCs completed on the server, by method and status code.',
      labelNames: ['grpc_service', 'grpc_method', 'grpc_type', 'grpc_code'],
      registers: [registry],
    });
    this.latency = new Histogram({
      name: 'grpc_server_handling_seconds',
      help: 'Time from the start of an RPC to its status, by method.',
      labelNames: ['grpc_service', 'grpc_method', 'grpc_type'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    });
    this.inFlight = new Gauge({
      name: 'grpc_server_in_flight',
      help: 'RPCs started and not yet completed, by method.',
      labelNames: ['grpc_service', 'grpc_method'],
      registers: [registry],
    });
  }

  /** Marks an RPC as started; call the returned function once with its final status name. */
  start(service: string, method: string, type: RpcType): (code: string) => void {
    const startedAt = process.hrtime.bigint();
    this.inFlight.inc({ grpc_service: service, grpc_method: method });
    let done = false;
    return (code) => {
      if (done) return;
      done = true;
      this.inFlight.dec({ grpc_service: service, grpc_method: method });
      this.handled.inc({ grpc_service: service, grpc_method: method, grpc_type: type, grpc_code: code });
      const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      this.latency.observe({ grpc_service: service, grpc_method: method, grpc_type: type }, seconds);
    };
  }
}

/** A registry with node's default metrics (process CPU, memory, event loop lag, GC). */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

export interface MetricsEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `registry` on GET /metrics (404 elsewhere). */
export async function startMetricsEndpoint(
  registry: Registry,
  host: string,
  port: number,
): Promise<MetricsEndpoint> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => res.writeHead(500).end(`metrics failed: ${String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
