/**
 * Typed errors of @hm3/evaluation. Bad input (a task spec field, a dataset line) is INVALID_ARGUMENT
 * and names the field, the file and the line; a dataset that is absent is NOT_FOUND; bytes that do not
 * match the dataset's registered sha256 are FAILED_PRECONDITION.
 */
import { FailedPreconditionError, Hm3Error, InvalidArgumentError, NotFoundError } from '@hm3/errors';

/** A task spec field is missing or malformed (`field` names it, e.g. `promptTemplate`). */
export class InvalidTaskSpecError extends InvalidArgumentError {
  constructor(
    readonly field: string,
    message: string,
    details: Record<string, unknown> = {},
  ) {
    super(`task spec ${field}: ${message}`, { field, ...details });
  }
}

/** The metric named is not one the evaluator computes. */
export class UnknownMetricError extends InvalidArgumentError {
  constructor(
    readonly metric: string,
    readonly known: readonly string[],
  ) {
    super(`unknown metric "${metric}" (known: ${known.join(', ')})`, { field: 'metric', metric, known });
  }
}

/** A dataset's bytes are not valid: a malformed JSONL line (1-based `line`), a missing field, no examples. */
export class InvalidDatasetError extends InvalidArgumentError {
  constructor(
    message: string,
    readonly source: string,
    readonly line?: number,
    details: Record<string, unknown> = {},
  ) {
    super(line === undefined ? `${source}: ${message}` : `${source}:${line}: ${message}`, {
      source,
      ...(line === undefined ? {} : { line }),
      ...details,
    });
  }
}

/** A dataset with no example to score (an empty file, or an empty split / limit). */
export class EmptyDatasetError extends InvalidDatasetError {
  constructor(source: string, why = 'holds no example') {
    super(why, source);
  }
}

/** A dataset reference that resolves to nothing. */
export class DatasetNotFoundError extends NotFoundError {
  constructor(uri: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(`dataset "${uri}" not found`, { uri, ...details }, cause);
  }
}

/** The dataset's bytes differ from the sha256 its reference pins. */
export class DatasetDigestMismatchError extends FailedPreconditionError {
  constructor(uri: string, expected: string, actual: string) {
    super(`dataset "${uri}" has sha256 ${actual}, the reference pins ${expected}`, {
      uri,
      expected,
      actual,
    });
  }
}

/** The evaluation was cancelled through its AbortSignal. */
export class EvaluationCancelledError extends Hm3Error {
  constructor(task: string, done: number, total: number) {
    super(`evaluation of "${task}" cancelled after ${done} of ${total} examples`, {
      status: 'CANCELLED',
      details: { task, done, total },
    });
  }
}
