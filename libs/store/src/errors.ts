import { Hm3Error } from '@hm3/errors';

/** The code MongoDB (and FerretDB) return for a write that breaks a unique index. */
export const DUPLICATE_KEY_CODE = 11000;

/**
 * An insert broke a unique key. Both adapters throw it with the driver's code 11000; `key` holds the
 * domain field names and values of the unique key that was hit (e.g. {candidateId, objective, split}).
 */
export class DuplicateKeyError extends Hm3Error {
  readonly collection: string;
  readonly key: Readonly<Record<string, unknown>>;
  readonly code = DUPLICATE_KEY_CODE;

  constructor(collection: string, key: Record<string, unknown>, cause?: unknown) {
    super(`duplicate key in ${collection}: ${JSON.stringify(key)}`, {
      status: 'ALREADY_EXISTS',
      details: { collection, key, code: DUPLICATE_KEY_CODE },
      cause,
    });
    this.collection = collection;
    this.key = key;
  }
}

export function isDuplicateKeyError(error: unknown): error is DuplicateKeyError {
  return error instanceof DuplicateKeyError;
}
