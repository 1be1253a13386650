/**
 * Model references resolve only inside the configured models root: a relative path that climbs out
 * (`..`), an absolute path elsewhere, or a symlink whose target lies outside is refused with
 * InvalidArgumentError naming the recipe field; a reference inside the root that does not exist is
 * NotFoundError.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, NotFoundError } from '@hm3/errors';

/** The artifact scheme of a ModelRef.uri: `artifact://<id>`. */
export const ARTIFACT_SCHEME = 'artifact://';

function inside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * The real path of the model folder `uri` names under `root`. `field` names the reference in errors
 * (e.g. `models[1].model`).
 */
export async function resolveModelFolder(root: string, uri: string, field: string): Promise<string> {
  if (uri === '') throw new InvalidArgumentError(`${field}: empty model reference`, { field });
  if (uri.includes('\0')) throw new InvalidArgumentError(`${field}: model reference contains NUL`, { field });
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    throw new InvalidArgumentError(
      `${field}: "${uri}" is not a path inside the models root (only artifact:// references and paths are accepted)`,
      { field, uri },
    );
  }
  const realRoot = await realpath(root);
  const lexical = path.resolve(realRoot, uri);
  const lexicalRoot = path.resolve(root);
  // An absolute path may name the root by its configured (unresolved) spelling.
  const candidate =
    path.isAbsolute(uri) && inside(lexicalRoot, lexical)
      ? path.resolve(realRoot, path.relative(lexicalRoot, lexical))
      : lexical;
  if (!inside(realRoot, candidate)) {
    throw new InvalidArgumentError(`${field}: "${uri}" is outside the models root`, { field, uri });
  }
  let real: string;
  try {
    real = await realpath(candidate);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`${field}: no model folder "${uri}" in the models root`, { field, uri }, error);
    }
    throw error;
  }
  if (!inside(realRoot, real)) {
    throw new InvalidArgumentError(
      `${field}: "${uri}" resolves (through a symlink) outside the models root`,
      {
        field,
        uri,
      },
    );
  }
  if (!(await stat(real)).isDirectory()) {
    throw new InvalidArgumentError(`${field}: "${uri}" is not a folder`, { field, uri });
  }
  return real;
}

/** The artifact id of an `artifact://<id>` reference, else null. */
export function artifactIdOf(uri: string): string | null {
  return uri.startsWith(ARTIFACT_SCHEME) ? uri.slice(ARTIFACT_SCHEME.length) : null;
}
