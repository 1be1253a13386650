/**
 * Model references of an evaluation resolve only inside the configured models root, or to a checkpoint
 * in the artifact store (`artifact://<id>`, held by a lease while it is read), or to a model of the
 * fixture zoo (`zoo:<model>`), or through the models registry (a model id alone). Anything else is refused with INVALID_ARGUMENT naming the field.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, NotFoundError } from '@hm3/errors';
import { modelPath, ZOO_MODELS, type ZooModel } from '@hm3/fixtures';
import type { ArtifactStore, ModelsRepository } from '@hm3/store';

export const ARTIFACT_SCHEME = 'artifact://';
/** `zoo:<model>` names a model of the committed fixture zoo. */
export const ZOO_SCHEME = 'zoo:';
/** The folder of a checkpoint inside an artifact, when it is not the artifact itself. */
export const ARTIFACT_MODEL_FOLDER = 'model';

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** A model reference in domain form (hm3.v1.ModelRef). */
export interface ModelRefSpec {
  readonly modelId?: string;
  readonly uri?: string;
}

export interface ResolvedModel {
  readonly dir: string;
  release(): void;
}

export interface ModelResolver {
  readonly modelsRoot: string;
  readonly artifacts: ArtifactStore;
  readonly models: Pick<ModelsRepository, 'get'>;
}

function inside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** The folder `ref` names; `field` names the reference in errors (e.g. `path.pool[1]`). */
export async function resolveModel(
  ref: ModelRefSpec,
  resolver: ModelResolver,
  field: string,
): Promise<ResolvedModel> {
  let uri = ref.uri ?? '';
  if (uri === '' && ref.modelId) {
    const record = await resolver.models.get(ref.modelId);
    if (!record)
      throw new NotFoundError(`${field}: no registered model "${ref.modelId}"`, {
        field,
        modelId: ref.modelId,
      });
    uri = record.uri;
  }
  if (uri === '')
    throw new InvalidArgumentError(`${field}: a model reference needs a uri or a model id`, { field });
  if (uri.includes('\0')) throw new InvalidArgumentError(`${field}: model reference contains NUL`, { field });
  if (uri.startsWith(ZOO_SCHEME)) {
    const name = uri.slice(ZOO_SCHEME.length);
    if (!(ZOO_MODELS as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(`${field}: "${uri}" names no zoo model (${ZOO_MODELS.join(', ')})`, {
        field,
        uri,
      });
    }
    return { dir: modelPath(name as ZooModel), release: () => undefined };
  }
  if (uri.startsWith(ARTIFACT_SCHEME)) {
    const id = uri.slice(ARTIFACT_SCHEME.length);
    if (!(await resolver.artifacts.has(id))) {
      throw new NotFoundError(`${field}: no artifact "${id}"`, { field, uri });
    }
    const lease = await resolver.artifacts.open(id);
    // A checkpoint is the artifact folder itself, or its `model/` folder (the embedded search's layout).
    const nested = path.join(lease.path, ARTIFACT_MODEL_FOLDER);
    const dir =
      (await exists(path.join(lease.path, 'config.json'))) || !(await exists(nested)) ? lease.path : nested;
    return { dir, release: () => lease.release() };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    throw new InvalidArgumentError(
      `${field}: "${uri}" is neither a path inside the models root nor artifact://`,
      {
        field,
        uri,
      },
    );
  }
  const realRoot = await realpath(resolver.modelsRoot);
  const lexicalRoot = path.resolve(resolver.modelsRoot);
  const lexical = path.isAbsolute(uri) ? path.resolve(uri) : path.resolve(realRoot, uri);
  const candidate = inside(lexicalRoot, lexical)
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
  return { dir: real, release: () => undefined };
}
