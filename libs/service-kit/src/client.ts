/**
 * Clients for any grpc-js ServiceDefinition with the server's transport settings: bearer token,
 * TLS (ca / cert / key files), default deadlines, retries of UNAVAILABLE with exponential backoff
 * (grpc-js service config retryPolicy), and the trace id sent on as `x-trace-id`.
 *
 *   const merge = createClient(TensorMergeServiceService, { address: 'localhost:50051', token });
 *   const methods = await merge.listMethods({});
 *   for await (const progress of merge.merge(request)) { ... }
 */
import { readFileSync } from 'node:fs';
import {
  Client,
  credentials as grpcCredentials,
  Metadata,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { FailedPreconditionError, InvalidArgumentError } from '@hm3/errors';
import { service as healthDefinition } from 'grpc-health-check';
import { currentTraceId, newTraceId, TRACE_ID_HEADER } from './trace.js';

export interface RetryOptions {
  /** Attempts including the first; grpc-js caps it at 5. Default 4. */
  maxAttempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  backoffMultiplier?: number;
}

export interface ClientOptions {
  /** `host:port`. */
  address: string;
  /** Sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** TLS: omit for plaintext; `{}` verifies against the system roots; files are PEM. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Default deadline of unary calls; default 30 s. */
  deadlineMs?: number;
  /** Default deadline of server-streaming calls; default none. */
  streamDeadlineMs?: number;
  /** Retries of UNAVAILABLE; `false` turns them off. */
  retry?: RetryOptions | false;
  maxReceiveMessageBytes?: number;
  maxSendMessageBytes?: number;
  /** More grpc-js channel options. */
  channelOptions?: ChannelOptions;
}

export interface CallOptions {
  deadlineMs?: number;
  /** Default: the trace id of the RPC this runs in (see currentTraceId), else a new one. */
  traceId?: string;
  metadata?: Metadata;
  signal?: AbortSignal;
}

/** What a client needs of a method: any grpc-js MethodDefinition (ts-proto's, proto-loader's) fits. */
export interface ClientMethodDefinition {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- contravariant position: any request type fits
  readonly requestSerialize: (value: any) => Buffer;
  readonly responseDeserialize: (bytes: Buffer) => unknown;
}
export type ClientServiceDefinition = { readonly [method: string]: ClientMethodDefinition };

type RequestOf<M> = M extends { requestSerialize: (value: infer Req) => Buffer } ? Req : never;
type ResponseOf<M> = M extends { responseDeserialize: (bytes: Buffer) => infer Res } ? Res : never;

export type ClientMethod<M> = M extends { requestStream: true }
  ? never
  : M extends { responseStream: true }
    ? (request: RequestOf<M>, options?: CallOptions) => ClientReadableStream<ResponseOf<M>>
    : (request: RequestOf<M>, options?: CallOptions) => Promise<ResponseOf<M>>;

/** One promise-returning method per unary RPC, one async-iterable stream per server-streaming RPC. */
export type ServiceClient<S extends ClientServiceDefinition> = {
  readonly [K in keyof S]: ClientMethod<S[K]>;
} & {
  /** The grpc-js client, for what this wrapper does not cover. */
  readonly grpcClient: Client;
  close(): void;
};

const RESERVED = new Set(['grpcClient', 'close']);

export function createClient<S extends ClientServiceDefinition>(
  definition: S,
  options: ClientOptions,
): ServiceClient<S> {
  const client = new Client(options.address, channelCredentials(options), channelOptions(options));
  const methods: Record<string, unknown> = { grpcClient: client, close: () => client.close() };
  for (const [key, method] of Object.entries(definition)) {
    if (RESERVED.has(key))
      throw new InvalidArgumentError(`method name ${key} clashes with the client's own`, { key });
    if (method.requestStream) continue;
    if (method.responseStream) {
      methods[key] = (request: unknown, call: CallOptions = {}) => {
        const deadlineMs = call.deadlineMs ?? options.streamDeadlineMs;
        const stream = client.makeServerStreamRequest(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          request,
          callMetadata(options, call),
          deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs },
        );
        const cancel = (): void => stream.cancel();
        call.signal?.addEventListener('abort', cancel, { once: true });
        stream.once('close', () => call.signal?.removeEventListener('abort', cancel));
        return stream;
      };
    } else {
      methods[key] = (request: unknown, call: CallOptions = {}) =>
        new Promise((resolve, reject) => {
          const cancel = (): void => unary.cancel();
          const unary = client.makeUnaryRequest(
            method.path,
            method.requestSerialize,
            method.responseDeserialize,
            request,
            callMetadata(options, call),
            { deadline: Date.now() + (call.deadlineMs ?? options.deadlineMs ?? 30_000) },
            (error: ServiceError | null, response?: unknown) => {
              call.signal?.removeEventListener('abort', cancel);
              if (error === null) resolve(response);
              else reject(error);
            },
          );
          call.signal?.addEventListener('abort', cancel, { once: true });
        });
    }
  }
  return methods as ServiceClient<S>;
}

export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** grpc.health.v1.Health/Check of `service` ('' = the whole server). Rejects when unreachable. */
export async function checkHealth(
  options: ClientOptions,
  service = '',
  callOptions: CallOptions = {},
): Promise<HealthStatus> {
  // proto-loader keys methods by their proto names.
  const definition = healthDefinition as unknown as {
    Check: {
      path: string;
      requestStream: false;
      responseStream: false;
      requestSerialize: (v: { service: string }) => Buffer;
      responseDeserialize: (b: Buffer) => { status: HealthStatus };
    };
  };
  const client = createClient(definition, { ...options, retry: false });
  try {
    return (await client.Check({ service }, { deadlineMs: 5000, ...callOptions })).status;
  } finally {
    client.close();
  }
}

function callMetadata(options: ClientOptions, call: CallOptions): Metadata {
  const metadata = call.metadata?.clone() ?? new Metadata();
  if (options.token !== undefined) metadata.set('authorization', `Bearer ${options.token}`);
  metadata.set(TRACE_ID_HEADER, call.traceId ?? currentTraceId() ?? newTraceId());
  return metadata;
}

function channelCredentials(options: ClientOptions): ChannelCredentials {
  const tls = options.tls;
  if (tls === undefined) return grpcCredentials.createInsecure();
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new InvalidArgumentError('a client certificate needs both certFile and keyFile', {
      field: tls.certFile === undefined ? 'certFile' : 'keyFile',
    });
  }
  const read = (file: string | undefined, field: string): Buffer | null => {
    if (file === undefined) return null;
    try {
      return readFileSync(file);
    } catch (cause) {
      throw new FailedPreconditionError(`cannot read ${field} ${file}`, { field, file }, cause);
    }
  };
  return grpcCredentials.createSsl(
    read(tls.caFile, 'caFile'),
    read(tls.keyFile, 'keyFile'),
    read(tls.certFile, 'certFile'),
  );
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`;
}

function channelOptions(options: ClientOptions): ChannelOptions {
  const result: ChannelOptions = {
    'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
    'grpc.max_send_message_length': options.maxSendMessageBytes ?? 4 * 1024 * 1024,
  };
  if (options.retry === false) {
    result['grpc.enable_retries'] = 0;
  } else {
    const retry = options.retry ?? {};
    result['grpc.service_config'] = JSON.stringify({
      methodConfig: [
        {
          name: [{}],
          retryPolicy: {
            maxAttempts: retry.maxAttempts ?? 4,
            initialBackoff: seconds(retry.initialBackoffMs ?? 100),
            maxBackoff: seconds(retry.maxBackoffMs ?? 2000),
            backoffMultiplier: retry.backoffMultiplier ?? 2,
            retryableStatusCodes: ['UNAVAILABLE'],
          },
        },
      ],
    });
  }
  return { ...result, ...options.channelOptions };
}
