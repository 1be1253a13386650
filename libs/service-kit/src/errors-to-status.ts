/**
 * The one place where errors become gRPC statuses: an Hm3Error maps its `.status`; anything else is
 * INTERNAL with a generic message (the details go to the log, never to the caller).
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { isHm3Error, type Hm3ErrorStatus } from '@hm3/errors';

const CODES: Readonly<Record<Hm3ErrorStatus, GrpcStatus>> = {
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  ALREADY_EXISTS: GrpcStatus.ALREADY_EXISTS,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  RESOURCE_EXHAUSTED: GrpcStatus.RESOURCE_EXHAUSTED,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  DEADLINE_EXCEEDED: GrpcStatus.DEADLINE_EXCEEDED,
  CANCELLED: GrpcStatus.CANCELLED,
  INTERNAL: GrpcStatus.INTERNAL,
};

export interface RpcStatus {
  code: GrpcStatus;
  details: string;
}

export function grpcCodeOf(status: Hm3ErrorStatus): GrpcStatus {
  return CODES[status];
}

/** `GrpcStatus.NOT_FOUND` -> `'NOT_FOUND'`, for logs and metric labels. */
export function statusName(code: GrpcStatus): string {
  return GrpcStatus[code] ?? `CODE_${code}`;
}

export function toRpcStatus(error: unknown, requestId: string): RpcStatus {
  if (isHm3Error(error)) return { code: grpcCodeOf(error.status), details: error.message };
  return { code: GrpcStatus.INTERNAL, details: `internal error (request ${requestId})` };
}
