/**
 * A Hugging Face checkpoint folder: model.safetensors, or shards model-0000k-of-0000N.safetensors with
 * model.safetensors.index.json ({metadata, weight_map: {tensor: shard file}}). Opening validates every
 * shard's header and that every index entry exists in its shard; reads go to the right shard by name.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointNotFoundError, InvalidCheckpointError } from './checkpoint-errors.js';
import { SafetensorsFile, type ReadFloatsOptions, type TensorInfo } from './safetensors-reader.js';

export const SINGLE_FILE_NAME = 'model.safetensors';
export const INDEX_FILE_NAME = 'model.safetensors.index.json';

export interface CheckpointTensorInfo extends TensorInfo {
  /** Absolute path of the shard holding the tensor. */
  readonly file: string;
}

export class Checkpoint {
  readonly dir: string;
  /** Whether the folder is sharded (has an index). */
  readonly sharded: boolean;
  /** The index's `metadata` (sharded) or the single file's `__metadata__`. */
  readonly metadata: Readonly<Record<string, unknown>>;
  private readonly shards: ReadonlyMap<string, SafetensorsFile>;
  private readonly entries: ReadonlyMap<string, { shard: SafetensorsFile; info: TensorInfo }>;

  private constructor(
    dir: string,
    sharded: boolean,
    metadata: Record<string, unknown>,
    shards: Map<string, SafetensorsFile>,
    entries: Map<string, { shard: SafetensorsFile; info: TensorInfo }>,
  ) {
    this.dir = dir;
    this.sharded = sharded;
    this.metadata = metadata;
    this.shards = shards;
    this.entries = entries;
  }

  /** Opens the checkpoint in folder `dir`. */
  static async open(dir: string): Promise<Checkpoint> {
    const folder = path.resolve(dir);
    let isDir = false;
    try {
      isDir = (await stat(folder)).isDirectory();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (!isDir) throw new CheckpointNotFoundError(folder, 'no such model folder');
    const indexPath = path.join(folder, INDEX_FILE_NAME);
    const index = await readIndex(indexPath);
    if (index) return Checkpoint.openSharded(folder, indexPath, index);
    const single = path.join(folder, SINGLE_FILE_NAME);
    try {
      await stat(single);
    } catch {
      throw new CheckpointNotFoundError(
        folder,
        `the model folder holds neither ${SINGLE_FILE_NAME} nor ${INDEX_FILE_NAME}`,
      );
    }
    const file = await SafetensorsFile.open(single);
    const entries = new Map(file.tensors.map((info) => [info.name, { shard: file, info }]));
    return new Checkpoint(folder, false, { ...file.metadata }, new Map([[single, file]]), entries);
  }

  /** Tensor names in the order of the index (sharded) or of the file's data section. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /** Absolute paths of the shard files. */
  files(): string[] {
    return [...this.shards.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): CheckpointTensorInfo {
    const entry = this.entry(name);
    return { ...entry.info, file: entry.shard.path };
  }

  /** Every tensor's info, in `names()` order. */
  tensors(): CheckpointTensorInfo[] {
    return [...this.entries.values()].map(({ shard, info }) => ({ ...info, file: shard.path }));
  }

  readBytes(name: string, out?: Uint8Array): Promise<Uint8Array> {
    return this.entry(name).shard.readBytes(name, out);
  }

  readRowBytes(name: string, rowStart: number, rowEnd: number, out?: Uint8Array): Promise<Uint8Array> {
    return this.entry(name).shard.readRowBytes(name, rowStart, rowEnd, out);
  }

  readFloats(name: string, into: 'F32', options?: ReadFloatsOptions<Float32Array>): Promise<Float32Array>;
  readFloats(name: string, into: 'F64', options?: ReadFloatsOptions<Float64Array>): Promise<Float64Array>;
  readFloats(
    name: string,
    into: 'F32' | 'F64',
    options?: ReadFloatsOptions<Float32Array | Float64Array>,
  ): Promise<Float32Array | Float64Array> {
    const shard = this.entry(name).shard;
    return into === 'F32'
      ? shard.readFloats(name, 'F32', options as ReadFloatsOptions<Float32Array>)
      : shard.readFloats(name, 'F64', options as ReadFloatsOptions<Float64Array>);
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((s) => s.close()));
  }

  private static async openSharded(folder: string, indexPath: string, index: Index): Promise<Checkpoint> {
    const shards = new Map<string, SafetensorsFile>();
    try {
      for (const file of new Set(index.weightMap.map(([, f]) => f))) {
        const shardPath = path.join(folder, file);
        shards.set(shardPath, await SafetensorsFile.open(shardPath));
      }
      const entries = new Map<string, { shard: SafetensorsFile; info: TensorInfo }>();
      for (const [tensor, file] of index.weightMap) {
        const shard = shards.get(path.join(folder, file))!;
        if (!shard.has(tensor))
          throw new InvalidCheckpointError(
            indexPath,
            'index-entry',
            `the index puts it in ${file}, which does not hold it`,
            tensor,
          );
        entries.set(tensor, { shard, info: shard.get(tensor) });
      }
      return new Checkpoint(folder, true, index.metadata, shards, entries);
    } catch (error) {
      await Promise.all([...shards.values()].map((s) => s.close()));
      throw error;
    }
  }

  private entry(name: string): { shard: SafetensorsFile; info: TensorInfo } {
    const entry = this.entries.get(name);
    if (!entry) throw new CheckpointNotFoundError(this.dir, 'no such tensor in the checkpoint', name);
    return entry;
  }
}

interface Index {
  metadata: Record<string, unknown>;
  weightMap: [string, string][];
}

async function readIndex(indexPath: string): Promise<Index | undefined> {
  let text: string;
  try {
    text = await readFile(indexPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InvalidCheckpointError(
      indexPath,
      'index-json',
      `the index is not JSON (${(error as Error).message})`,
      undefined,
      error,
    );
  }
  const obj = parsed as { metadata?: unknown; weight_map?: unknown } | null;
  if (
    typeof obj !== 'object' ||
    obj === null ||
    typeof obj.weight_map !== 'object' ||
    obj.weight_map === null ||
    Array.isArray(obj.weight_map)
  ) {
    throw new InvalidCheckpointError(indexPath, 'index-json', 'the index has no weight_map object');
  }
  const weightMap: [string, string][] = [];
  for (const [tensor, file] of Object.entries(obj.weight_map as Record<string, unknown>)) {
    // Shards live in the folder itself: a path with a separator or `..` could point anywhere.
    if (
      typeof file !== 'string' ||
      file === '' ||
      file !== path.basename(file) ||
      file === '.' ||
      file === '..'
    ) {
      throw new InvalidCheckpointError(
        indexPath,
        'index-json',
        `weight_map names ${JSON.stringify(file)}, not a file name in the folder`,
        tensor,
      );
    }
    weightMap.push([tensor, file]);
  }
  const metadata =
    typeof obj.metadata === 'object' && obj.metadata !== null
      ? (obj.metadata as Record<string, unknown>)
      : {};
  return { metadata, weightMap };
}
