/**
 * The optimizer's model catalog: a model reference is a folder inside the models root (the same
 * spelling tensor-merge and the evaluator accept), `zoo:<model>`, or `artifact://<id>` in the shared
 * artifact store. Reads config.json (architecture, layers, width) and hashes the weight files (the
 * content ids of candidates). The uri it reports is the reference as the other services spell it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '@hm3/errors';
import type { ModelCatalogPort, ModelInfo, ModelRef } from '@hm3/search';

export const ARTIFACT_SCHEME = 'artifact://';
export const ZOO_SCHEME = 'zoo:';

export interface CatalogRoots {
  readonly modelsRoot: string;
  readonly artifactRoot: string;
  /** Folder of the fixture zoo (`zoo:<model>`), when known. */
  readonly zooRoot?: string;
}

async function isDir(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

function inside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** The folder a model reference names; refuses anything outside the configured roots. */
export async function modelFolder(uri: string, roots: CatalogRoots, field: string): Promise<string> {
  if (uri === '') throw new InvalidArgumentError(`${field}: a model reference needs a uri`, { field });
  if (uri.startsWith(ARTIFACT_SCHEME)) {
    const id = uri.slice(ARTIFACT_SCHEME.length);
    if (!/^[A-Za-z0-9._-]+$/.test(id))
      throw new InvalidArgumentError(`${field}: "${uri}" is not a valid artifact id`, { field, uri });
    const dir = path.join(roots.artifactRoot, id);
    if (await isDir(path.join(dir, 'model'))) return path.join(dir, 'model');
    if (await isDir(dir)) return dir;
    throw new NotFoundError(`${field}: no artifact "${id}"`, { field, uri });
  }
  if (uri.startsWith(ZOO_SCHEME)) {
    if (roots.zooRoot === undefined)
      throw new InvalidArgumentError(`${field}: zoo models are not configured here`, { field, uri });
    const name = uri.slice(ZOO_SCHEME.length);
    if (!/^[a-z0-9-]+$/.test(name))
      throw new InvalidArgumentError(`${field}: "${uri}" names no zoo model`, { field, uri });
    return path.join(roots.zooRoot, name);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri))
    throw new InvalidArgumentError(
      `${field}: "${uri}" is neither a path inside the models root nor artifact://`,
      {
        field,
        uri,
      },
    );
  const realRoot = await realpath(roots.modelsRoot);
  const lexical = path.isAbsolute(uri) ? path.resolve(uri) : path.resolve(realRoot, uri);
  const lexicalRoot = path.resolve(roots.modelsRoot);
  const candidate = inside(lexicalRoot, lexical)
    ? path.resolve(realRoot, path.relative(lexicalRoot, lexical))
    : lexical;
  if (!inside(realRoot, candidate))
    throw new InvalidArgumentError(`${field}: "${uri}" is outside the models root`, { field, uri });
  return candidate;
}

async function sha256Of(files: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(path.basename(file));
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

export class FolderModelCatalog implements ModelCatalogPort {
  private readonly cache = new Map<string, Promise<ModelInfo>>();

  constructor(private readonly roots: CatalogRoots) {}

  describe(ref: ModelRef, field: string): Promise<ModelInfo> {
    const key = ref.uri;
    let entry = this.cache.get(key);
    if (!entry) {
      entry = this.read(ref, field);
      entry.catch(() => this.cache.delete(key));
      this.cache.set(key, entry);
    }
    return entry;
  }

  private async read(ref: ModelRef, field: string): Promise<ModelInfo> {
    const dir = await modelFolder(ref.uri, this.roots, field);
    if (!(await isDir(dir)))
      throw new NotFoundError(`${field}: no model folder at ${ref.uri}`, { field, uri: ref.uri });
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    } catch (cause) {
      throw new NotFoundError(
        `${field}: ${ref.uri} has no readable config.json`,
        { field, uri: ref.uri },
        cause,
      );
    }
    const architecture = Array.isArray(config['architectures'])
      ? String(config['architectures'][0])
      : String(config['model_type'] ?? 'unknown');
    const numLayers = Number(config['num_hidden_layers'] ?? config['n_layer']);
    const hiddenSize = Number(config['hidden_size'] ?? config['n_embd']);
    if (!Number.isInteger(numLayers) || !Number.isInteger(hiddenSize))
      throw new FailedPreconditionError(
        `${field}: ${ref.uri}'s config.json gives no layer count or hidden size`,
        {
          field,
        },
      );
    const weights = (await readdir(dir))
      .filter((f) => f.endsWith('.safetensors'))
      .sort()
      .map((f) => path.join(dir, f));
    if (weights.length === 0)
      throw new NotFoundError(`${field}: ${ref.uri} has no .safetensors weights`, { field, uri: ref.uri });
    return { ref, uri: ref.uri, sha256: await sha256Of(weights), architecture, numLayers, hiddenSize };
  }
}
