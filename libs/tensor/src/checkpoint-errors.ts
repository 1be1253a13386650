/**
 * Typed errors of checkpoint IO. Each names the file, the tensor (when one is at fault) and the rule
 * broken, in the message and in `details`, so a user can find the bad byte and a service can map the
 * error to one gRPC status.
 */
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '@hm3/errors';

/** The validation rules of a safetensors file / checkpoint folder, as named in errors. */
export type CheckpointRule =
  | 'file-size' // shorter than the 8-byte header length
  | 'header-length' // header length past the end of the file, or over the limit
  | 'header-json' // header not UTF-8 JSON, or not a JSON object
  | 'header-entry' // an entry is not {dtype, shape, data_offsets}
  | 'dtype' // unknown dtype
  | 'shape-span' // shape x dtype size differs from the byte span
  | 'span-bounds' // a span reaches past the data section (a truncated file)
  | 'span-overlap' // two spans overlap
  | 'metadata' // __metadata__ is not a string -> string map
  | 'index-json' // model.safetensors.index.json malformed
  | 'index-entry' // the index names a tensor its shard does not hold
  | 'duplicate-tensor' // two shards hold one tensor name
  | 'row-range' // a row range outside the tensor
  | 'short-read'; // the file shrank under us

/** A safetensors file or checkpoint folder breaks a rule of the format. */
export class InvalidCheckpointError extends InvalidArgumentError {
  readonly file: string;
  readonly tensor: string | undefined;
  readonly rule: CheckpointRule;

  constructor(file: string, rule: CheckpointRule, message: string, tensor?: string, cause?: unknown) {
    super(
      `${file}${tensor === undefined ? '' : `: tensor ${tensor}`}: ${message} [rule ${rule}]`,
      { file, tensor, rule },
      cause,
    );
    this.file = file;
    this.tensor = tensor;
    this.rule = rule;
  }
}

/** A checkpoint folder, a shard or a tensor does not exist. */
export class CheckpointNotFoundError extends NotFoundError {
  readonly path: string;
  readonly tensor: string | undefined;

  constructor(path: string, message: string, tensor?: string, cause?: unknown) {
    super(`${path}${tensor === undefined ? '' : `: tensor ${tensor}`}: ${message}`, { path, tensor }, cause);
    this.path = path;
    this.tensor = tensor;
  }
}

/** The writer was used out of order (a tensor written twice or past its size, commit with data missing, ...). */
export class CheckpointWriteError extends FailedPreconditionError {
  constructor(message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, details, cause);
  }
}
