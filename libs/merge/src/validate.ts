/**
 * The errors a merge plan is refused with, before any weight is read. Each names the model folder (or
 * file), the tensor and the recipe field at fault, in the message and in `details`.
 */
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '@hm3/errors';

/** A model of the recipe whose folder does not exist (or holds no config.json / weights). */
export class ModelNotFoundError extends NotFoundError {
  readonly dir: string;
  readonly field: string;
  constructor(dir: string, field: string, reason: string, cause?: unknown) {
    super(`${field}: ${dir}: ${reason}`, { path: dir, field }, cause);
    this.dir = dir;
    this.field = field;
  }
}

/** A model's config.json that cannot be read or is not JSON. */
export class InvalidModelConfigError extends InvalidArgumentError {
  constructor(file: string, field: string, reason: string, cause?: unknown) {
    super(`${field}: ${file}: ${reason}`, { file, field }, cause);
  }
}

/** Two models whose architectures (layers, sizes, heads) differ, so they cannot be merged tensor by tensor. */
export class ArchitectureMismatchError extends InvalidArgumentError {
  constructor(file: string, field: string, difference: string, referenceFile: string) {
    super(`${field}: ${file}: architecture differs from ${referenceFile} (${difference})`, {
      file,
      field,
      difference,
    });
  }
}

/** A tensor the merge needs that a model's checkpoint does not hold. */
export class MissingTensorError extends InvalidArgumentError {
  readonly dir: string;
  readonly tensor: string;
  constructor(dir: string, tensor: string, field: string, why = 'the checkpoint does not hold it') {
    super(`${field}: ${dir}: tensor ${tensor} is missing (${why})`, { path: dir, tensor, field });
    this.dir = dir;
    this.tensor = tensor;
  }
}

/** A tensor whose shape differs from the base's (the reference model's). */
export class TensorShapeMismatchError extends InvalidArgumentError {
  readonly dir: string;
  readonly tensor: string;
  constructor(
    dir: string,
    tensor: string,
    field: string,
    shape: readonly number[],
    referenceShape: readonly number[],
    referenceDir: string,
  ) {
    super(
      `${field}: ${dir}: tensor ${tensor} has shape [${shape.join(', ')}], ` +
        `the base (${referenceDir}) [${referenceShape.join(', ')}]`,
      { path: dir, tensor, field, shape, referenceShape },
    );
    this.dir = dir;
    this.tensor = tensor;
  }
}

/** A tensor whose dtype cannot be merged (an integer tensor where the base has floats, or the reverse). */
export class TensorDTypeError extends InvalidArgumentError {
  constructor(dir: string, tensor: string, field: string, reason: string) {
    super(`${field}: ${dir}: tensor ${tensor}: ${reason}`, { path: dir, tensor, field });
  }
}

/** The recipe asks for something this executor does not do (e.g. a tokenizer_source other than the default). */
export class UnsupportedRecipeError extends InvalidArgumentError {
  constructor(source: string, field: string, reason: string) {
    super(`${source}: ${field}: ${reason}`, { file: source, field });
  }
}

/** The merge cannot fit in the memory bound: a tensor whose method needs it whole, or one row, exceeds it. */
export class MemoryBudgetError extends FailedPreconditionError {
  constructor(tensor: string, neededBytes: number, maxMemory: number, why: string) {
    super(
      `max_memory: tensor ${tensor} needs ${formatBytes(neededBytes)} (${why}), ` +
        `more than --max-memory ${formatBytes(maxMemory)}; raise --max-memory`,
      { tensor, field: 'max_memory', neededBytes, maxMemory },
    );
  }
}

/** The output folder exists and is not empty. */
export class OutputExistsError extends FailedPreconditionError {
  constructor(outDir: string) {
    super(`output folder ${outDir} already exists and is not empty`, { path: outDir, field: 'out_dir' });
  }
}

/** 1536 -> "1.5 KB" (decimal units, as --max-memory and --out-shard-size take them). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'unbounded';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? String(v) : v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** Parses a byte size: `5GB`, `500MB`, `1.5GiB`, `123456` (decimal units; *iB binary). */
export function parseByteSize(text: string, field: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m === null ? undefined : SIZE_UNITS[m[2]!.toLowerCase()];
  if (m === null || unit === undefined) {
    throw new InvalidArgumentError(`${field}: "${text}" is not a size (e.g. 2GB, 500MB, 1.5GiB, 1048576)`, {
      field,
    });
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new InvalidArgumentError(`${field}: "${text}" must be a positive size`, { field });
  }
  return bytes;
}
