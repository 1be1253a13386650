/**
 * The typed errors of @hm3/model. Each carries the file, field, step or index it is about, and maps to
 * one gRPC status at the edge through its Hm3Error base.
 */
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '@hm3/errors';

/** A config.json names an architecture (or a feature of one) the runtime does not build. */
export class UnsupportedArchitectureError extends InvalidArgumentError {
  readonly file: string;
  readonly field: string;
  constructor(file: string, field: string, reason: string) {
    super(`${file}: unsupported architecture: field "${field}" ${reason}`, { file, field });
    this.file = file;
    this.field = field;
  }
}

/** A config.json field is missing or has the wrong type or range. */
export class InvalidModelConfigError extends InvalidArgumentError {
  readonly file: string;
  readonly field: string;
  constructor(file: string, field: string, reason: string) {
    super(`${file}: field "${field}" ${reason}`, { file, field });
    this.file = file;
    this.field = field;
  }
}

/** A model folder without config.json. */
export class ModelConfigNotFoundError extends NotFoundError {
  readonly file: string;
  constructor(file: string) {
    super(`${file}: no config.json in the model folder`, { file });
    this.file = file;
  }
}

/** A model folder without tokenizer.json. */
export class MissingTokenizerError extends NotFoundError {
  readonly file: string;
  constructor(file: string, reason = 'no tokenizer.json in the model folder') {
    super(`${file}: ${reason}`, { file });
    this.file = file;
  }
}

/** What is wrong with an inference path. */
export type InvalidPathRule =
  | 'empty-pool'
  | 'empty-steps'
  | 'pool-index'
  | 'layer-index'
  | 'head-source'
  | 'hidden-size'
  | 'affine-length';

/** An inference path that cannot run: the rule it breaks and the step (if any) that breaks it. */
export class InvalidPathError extends InvalidArgumentError {
  readonly rule: InvalidPathRule;
  readonly step: number | undefined;
  constructor(
    rule: InvalidPathRule,
    message: string,
    details: { step?: number } & Record<string, unknown> = {},
  ) {
    super(
      `invalid inference path (${rule}${details.step === undefined ? '' : `, step ${details.step}`}): ${message}`,
      { rule, ...details },
    );
    this.rule = rule;
    this.step = details.step;
  }
}

/** Bad runtime input: token ids out of the vocabulary, empty batches, lengths past a window. */
export class InvalidModelInputError extends InvalidArgumentError {}

/** The requested execution provider is not available (e.g. `device: cuda` without the CUDA libraries). */
export class DeviceUnavailableError extends FailedPreconditionError {
  readonly device: string;
  constructor(device: string, cause: unknown) {
    super(
      `execution provider "${device}" is not available: ${cause instanceof Error ? cause.message : String(cause)}`,
      { device },
      cause,
    );
    this.device = device;
  }
}
