/**
 * Typed handlers for any grpc-js ServiceDefinition (ts-proto's `outputServices=grpc-js` output or a
 * hand-built one), each wrapped with auth, one log line, metrics, cancellation and error mapping.
 *
 * A unary handler is `(request, context) => response | Promise<response>`; a server-streaming one
 * is `(request, context) => AsyncIterable<message>` (an `async function*`). Client- and
 * bidi-streaming methods are not wrapped.
 */
import { randomUUID } from 'node:crypto';
import {
  status as GrpcStatus,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type Metadata,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { InvalidArgumentError, isHm3Error } from '@hm3/errors';
import { bearerToken, type TokenStore } from './auth.js';
import { statusName, toRpcStatus, type RpcStatus } from './errors-to-status.js';
import type { Logger } from './logging.js';
import type { RpcMetrics, RpcType } from './metrics.js';
import { traceIdFrom, withTraceId } from './trace.js';

export interface RpcContext {
  /** `/package.Service/Method`. */
  readonly path: string;
  readonly requestId: string;
  readonly traceId: string;
  readonly metadata: Metadata;
  /** The caller's deadline, if it set one. */
  readonly deadline: Date | undefined;
  /** Aborted when the call is cancelled, its deadline passes, or a shutdown runs out of grace. */
  readonly signal: AbortSignal;
  isCancelled(): boolean;
  /** A child logger carrying the request id and the trace id. */
  readonly logger: Logger;
  readonly peer: string;
}

export type UnaryHandler<Req, Res> = (request: Req, context: RpcContext) => Res | Promise<Res>;
export type ServerStreamHandler<Req, Res> = (request: Req, context: RpcContext) => AsyncIterable<Res>;

type RequestOf<M> = M extends { requestDeserialize: (bytes: Buffer) => infer Req } ? Req : never;
type ResponseOf<M> = M extends { responseSerialize: (value: infer Res) => Buffer } ? Res : never;

/** The handler type of one method, from its definition's stream flags. */
export type HandlerFor<M> = M extends { requestStream: true }
  ? never
  : M extends { requestStream: false; responseStream: false }
    ? UnaryHandler<RequestOf<M>, ResponseOf<M>>
    : M extends { requestStream: false; responseStream: true }
      ? ServerStreamHandler<RequestOf<M>, ResponseOf<M>>
      : UnaryHandler<RequestOf<M>, ResponseOf<M>> | ServerStreamHandler<RequestOf<M>, ResponseOf<M>>;

export type ServiceHandlers<S extends ServiceDefinition> = { [K in keyof S]: HandlerFor<S[K]> };

/** The aborters of the calls now running, so a forced shutdown can abort them all. */
export class ActiveCalls {
  private readonly controllers = new Set<AbortController>();
  get size(): number {
    return this.controllers.size;
  }
  add(controller: AbortController): void {
    this.controllers.add(controller);
  }
  delete(controller: AbortController): void {
    this.controllers.delete(controller);
  }
  abortAll(reason: string): void {
    for (const c of this.controllers) c.abort(new Error(reason));
  }
}

export interface WrapDependencies {
  tokens: TokenStore | undefined;
  logger: Logger;
  metrics: RpcMetrics;
  active: ActiveCalls;
}

/** `/pkg.Svc/Method` -> `pkg.Svc` and `Method`. */
export function splitPath(path: string): { service: string; method: string } {
  const match = /^\/([^/]+)\/([^/]+)$/.exec(path);
  if (match === null) throw new InvalidArgumentError(`not a gRPC method path: ${path}`, { path });
  return { service: match[1] ?? '', method: match[2] ?? '' };
}

/** The grpc-js implementation object for `definition`, every method wrapped. */
export function wrapService<S extends ServiceDefinition>(
  definition: S,
  handlers: ServiceHandlers<S>,
  deps: WrapDependencies,
): UntypedServiceImplementation {
  const implementation: UntypedServiceImplementation = {};
  for (const key of Object.keys(definition)) {
    const method = definition[key];
    if (method === undefined) continue;
    if (method.requestStream) {
      throw new InvalidArgumentError(
        `${method.path} is client- or bidi-streaming; service-kit wraps unary and server-streaming methods only`,
        {
          path: method.path,
        },
      );
    }
    const handler = (handlers as Record<string, unknown>)[key];
    if (typeof handler !== 'function') {
      throw new InvalidArgumentError(`no handler for ${method.path}`, { path: method.path, key });
    }
    implementation[key] = method.responseStream
      ? wrapServerStream(method.path, handler as ServerStreamHandler<unknown, unknown>, deps)
      : wrapUnary(method.path, handler as UnaryHandler<unknown, unknown>, deps);
  }
  return implementation;
}

type AnyCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>;

/** The bookkeeping of one call: ids, abort signal, metrics and its single log line. */
class Rpc {
  readonly context: RpcContext;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly startedAt = performance.now();
  private readonly endMetric: (code: string) => void;
  private readonly onCancelled = (): void => this.abort();
  private abortedBy: RpcStatus | undefined;

  constructor(
    private readonly call: AnyCall,
    path: string,
    type: RpcType,
    private readonly deps: WrapDependencies,
  ) {
    const { service, method } = splitPath(path);
    const requestId = randomUUID();
    const traceId = traceIdFrom(call.metadata);
    const deadline = deadlineOf(call.getDeadline());
    const signal = this.controller.signal;
    this.context = {
      path,
      requestId,
      traceId,
      metadata: call.metadata,
      deadline,
      signal,
      isCancelled: () => signal.aborted,
      logger: deps.logger.child({ requestId, traceId }),
      peer: call.getPeer(),
    };
    call.on('cancelled', this.onCancelled);
    const remainingMs = deadline === undefined ? Infinity : Math.max(0, deadline.getTime() - Date.now());
    if (remainingMs <= MAX_TIMER_MS) {
      // grpc-js ends the call at its deadline and emits 'cancelled'; this timer is the backstop.
      this.timer = setTimeout(this.onCancelled, remainingMs);
      this.timer.unref();
    }
    deps.active.add(this.controller);
    this.endMetric = deps.metrics.start(service, method, type);
  }

  authorized(): RpcStatus | undefined {
    if (this.deps.tokens === undefined) return undefined;
    const token = bearerToken(this.call.metadata);
    if (this.deps.tokens.verify(token)) return undefined;
    return {
      code: GrpcStatus.UNAUTHENTICATED,
      details:
        token === undefined ? 'missing bearer token (authorization: Bearer <token>)' : 'invalid bearer token',
    };
  }

  /** Runs the handler inside the call's trace scope. */
  run<T>(fn: () => T): T {
    return withTraceId(this.context.traceId, fn);
  }

  /** The status the caller sees when the call was aborted (deadline, cancel or forced shutdown). */
  abortedStatus(): RpcStatus | undefined {
    const signal = this.controller.signal;
    if (!signal.aborted) return undefined;
    if (this.abortedBy !== undefined) return this.abortedBy;
    const reason: unknown = signal.reason;
    return {
      code: GrpcStatus.CANCELLED,
      details: reason instanceof Error ? reason.message : 'call cancelled',
    };
  }

  /** The status for an error thrown by a handler: the abort status when aborted, else the mapping. */
  statusOf(error: unknown): RpcStatus {
    return this.abortedStatus() ?? toRpcStatus(error, this.context.requestId);
  }

  finish(rpcStatus: RpcStatus, error?: unknown): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.call.off('cancelled', this.onCancelled);
    this.deps.active.delete(this.controller);
    const code = statusName(rpcStatus.code);
    this.endMetric(code);
    const line = {
      rpc: this.context.path,
      requestId: this.context.requestId,
      traceId: this.context.traceId,
      code,
      durationMs: Math.round((performance.now() - this.startedAt) * 10) / 10,
      peer: this.context.peer,
    };
    if (rpcStatus.code === GrpcStatus.INTERNAL) {
      this.deps.logger.error({ ...line, err: error }, 'rpc failed');
    } else if (isHm3Error(error)) {
      this.deps.logger.info({ ...line, error: error.message, details: error.details }, 'rpc');
    } else {
      this.deps.logger.info(line, 'rpc');
    }
  }

  /**
   * The client cancels at its own deadline a little before the server's copy of it passes (the
   * server computes it on arrival), so a cancel this close to the deadline counts as the deadline.
   */
  private abort(): void {
    if (this.controller.signal.aborted) return;
    const deadline = this.context.deadline;
    this.abortedBy =
      deadline !== undefined && Date.now() >= deadline.getTime() - DEADLINE_SLACK_MS
        ? { code: GrpcStatus.DEADLINE_EXCEEDED, details: 'deadline exceeded' }
        : { code: GrpcStatus.CANCELLED, details: 'call cancelled' };
    this.controller.abort(new Error(this.abortedBy.details));
  }
}

const DEADLINE_SLACK_MS = 100;
/** setTimeout fires at once beyond this (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

function deadlineOf(value: Date | number): Date | undefined {
  const ms = value instanceof Date ? value.getTime() : value;
  return Number.isFinite(ms) ? new Date(ms) : undefined;
}

const OK: RpcStatus = { code: GrpcStatus.OK, details: 'OK' };

function wrapUnary(
  path: string,
  handler: UnaryHandler<unknown, unknown>,
  deps: WrapDependencies,
): handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const rpc = new Rpc(call, path, 'unary', deps);
    const refused = rpc.authorized();
    if (refused !== undefined) {
      callback(refused);
      rpc.finish(refused);
      return;
    }
    rpc
      .run(async () => handler(call.request, rpc.context))
      .then(
        (response) => {
          const aborted = rpc.abortedStatus();
          if (aborted !== undefined) return rpc.finish(aborted);
          callback(null, response);
          rpc.finish(OK);
        },
        (error: unknown) => {
          const failed = rpc.statusOf(error);
          callback(failed);
          rpc.finish(failed, error);
        },
      );
  };
}

function wrapServerStream(
  path: string,
  handler: ServerStreamHandler<unknown, unknown>,
  deps: WrapDependencies,
): handleServerStreamingCall<unknown, unknown> {
  return (call) => {
    const rpc = new Rpc(call, path, 'server_stream', deps);
    const refused = rpc.authorized();
    if (refused !== undefined) {
      call.emit('error', refused);
      rpc.finish(refused);
      return;
    }
    const signal = rpc.context.signal;
    rpc
      .run(async () => {
        for await (const message of handler(call.request, rpc.context)) {
          if (signal.aborted) break;
          if (!call.write(message)) await drained(call, signal);
        }
      })
      .then(
        () => {
          const aborted = rpc.abortedStatus();
          if (aborted !== undefined) return rpc.finish(aborted);
          call.end();
          rpc.finish(OK);
        },
        (error: unknown) => {
          const failed = rpc.statusOf(error);
          call.emit('error', failed);
          rpc.finish(failed, error);
        },
      );
  };
}

function drained(call: ServerWritableStream<unknown, unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
