/**
 * Where the embedded search finds things: `zoo:<model>` / `zoo:<task>` name the fixture zoo, a plain
 * path is relative to the spec's folder, `artifact://<id>` is a checkpoint of the local artifact store.
 */
import path from 'node:path';
import { InvalidArgumentError } from '@hm3/errors';
import { ZOO_MODELS, ZOO_TASKS, modelPath, type ZooModel, type ZooTask } from '@hm3/fixtures';

export interface Locations {
  /** Relative paths in the spec resolve against this folder. */
  readonly specDir: string;
  /** The artifact store's root (merged checkpoints live in `<root>/<id>/model`). */
  readonly artifactsRoot: string;
}

/** The folder of a merged checkpoint inside its artifact. */
export const ARTIFACT_MODEL_FOLDER = 'model';

export function resolveModelUri(uri: string, where: Locations, field: string): string {
  if (uri.startsWith('zoo:')) {
    const name = uri.slice(4);
    if (!(ZOO_MODELS as readonly string[]).includes(name))
      throw new InvalidArgumentError(`${field}: "${uri}" names no zoo model (${ZOO_MODELS.join(', ')})`, {
        field,
      });
    return modelPath(name as ZooModel);
  }
  if (uri.startsWith('artifact://'))
    return path.join(where.artifactsRoot, uri.slice(11), ARTIFACT_MODEL_FOLDER);
  return path.resolve(where.specDir, uri);
}

export function zooTaskOf(uri: string): ZooTask | undefined {
  if (!uri.startsWith('zoo:')) return undefined;
  const name = uri.slice(4);
  return (ZOO_TASKS as readonly string[]).includes(name) ? (name as ZooTask) : undefined;
}
