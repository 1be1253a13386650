/**
 * The one error base of HM3. Every lib throws subclasses of Hm3Error; the gRPC edge (service-kit)
 * maps `status` to a gRPC status code, so a domain lib never imports grpc.
 */
export type Hm3ErrorStatus =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'PERMISSION_DENIED'
  | 'UNAUTHENTICATED'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'INTERNAL';

export class Hm3Error extends Error {
  /** The gRPC status this error maps to at the edge. */
  readonly status: Hm3ErrorStatus;
  /** Structured context (file, tensor, field, ...) for logs and error details. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    message: string,
    options: { status?: Hm3ErrorStatus; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = options.status ?? 'INTERNAL';
    this.details = options.details ?? {};
  }
}

/** Bad input from a caller: a recipe field, a file, a tensor, a setting. */
export class InvalidArgumentError extends Hm3Error {
  constructor(message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, { status: 'INVALID_ARGUMENT', details, cause });
  }
}

export class NotFoundError extends Hm3Error {
  constructor(message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, { status: 'NOT_FOUND', details, cause });
  }
}

export class FailedPreconditionError extends Hm3Error {
  constructor(message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, { status: 'FAILED_PRECONDITION', details, cause });
  }
}

export class UnavailableError extends Hm3Error {
  constructor(message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, { status: 'UNAVAILABLE', details, cause });
  }
}

export function isHm3Error(error: unknown): error is Hm3Error {
  return error instanceof Hm3Error;
}
