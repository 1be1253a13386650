/**
 * Model registration: a model folder's manifest from its config.json and safetensors headers (no
 * weight is decoded), with every file's sha256 (streamed). The manifest digest (sha256 over the
 * sorted file list) is the model's content identity: the default registry id, and what a merge's
 * content id hashes instead of the model's path.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '@hm3/errors';
import { architectureFromConfig } from '@hm3/merge';
import { Checkpoint, isFloatDType, shapeSize, type DType } from '@hm3/tensor';

export interface ManifestFile {
  /** Path relative to the model folder. */
  readonly path: string;
  readonly bytes: number;
  /** Hex sha256 of the file's bytes. */
  readonly sha256: string;
}

export interface ModelManifest {
  readonly modelId: string;
  readonly uri: string;
  /** The config's architecture class, e.g. `LlamaForCausalLM`. */
  readonly architecture: string;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  /** The dtype most of the float weights are stored in. */
  readonly dtype: DType;
  readonly parameterCount: number;
  readonly files: readonly ManifestFile[];
  readonly config: Readonly<Record<string, unknown>>;
}

/** Hex sha256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** sha256 over the sorted `path sha256` lines of a file list: the content identity of a model. */
export function manifestDigest(files: readonly { path: string; sha256: string }[]): string {
  const lines = [...files]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((f) => `${f.path}\t${f.sha256}\n`);
  return createHash('sha256').update(lines.join('')).digest('hex');
}

/** Every regular file of the folder (not dot files), with its size and sha256, sorted by path. */
export async function hashFolder(dir: string): Promise<ManifestFile[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files: ManifestFile[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (entry.name.startsWith('.') || !entry.isFile()) continue;
    const full = path.join(dir, entry.name);
    files.push({ path: entry.name, bytes: (await stat(full)).size, sha256: await sha256File(full) });
  }
  return files;
}

/**
 * Reads the manifest of the model folder `dir` (registered as `uri`). `modelId` empty: the manifest
 * digest. Throws InvalidArgumentError for a folder that is not a model this service can merge.
 */
export async function readModelManifest(dir: string, uri: string, modelId = ''): Promise<ModelManifest> {
  const configPath = path.join(dir, 'config.json');
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new InvalidArgumentError(
      `${uri}: cannot read config.json: ${(error as Error).message}`,
      { uri, file: configPath },
      error,
    );
  }
  const arch = architectureFromConfig(config, configPath);
  const checkpoint = await Checkpoint.open(dir);
  const counts = new Map<DType, number>();
  let parameterCount = 0;
  try {
    for (const t of checkpoint.tensors()) {
      const n = shapeSize(t.shape);
      parameterCount += n;
      if (isFloatDType(t.dtype)) counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + n);
    }
  } finally {
    await checkpoint.close();
  }
  const dtype = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'F32';
  const files = await hashFolder(dir);
  const classes = config['architectures'];
  const architecture = Array.isArray(classes) && typeof classes[0] === 'string' ? classes[0] : arch.family;
  return {
    modelId: modelId !== '' ? modelId : manifestDigest(files),
    uri,
    architecture,
    numLayers: arch.numLayers,
    hiddenSize: arch.hiddenSize,
    vocabSize: arch.vocabSize,
    dtype,
    parameterCount,
    files,
    config,
  };
}
