/**
 * Streaming, crash-safe writer of a Hugging Face checkpoint folder.
 *
 * The caller declares every tensor (name, dtype, shape) up front, so the shard plan and every header
 * are known before any data: tensors go into shards in declaration order, a new shard starting when the
 * next tensor would pass the byte budget (a tensor larger than the budget gets a shard of its own).
 * Shards are named model-0000k-of-0000N.safetensors, or model.safetensors when there is one; a sharded
 * folder gets model.safetensors.index.json, written last. Data is then written tensor by tensor, or row
 * block by row block (each `write` appends at the tensor's cursor), in any order across tensors.
 *
 * Crash safety: everything is written in a temporary folder beside the output (or in `tempRoot`), on
 * the same volume, named `.hm3-tmp-<host>-<pid>-<random>`; `commit` checks that every byte was written, fsyncs every
 * file and the folder, renames the folder into place and fsyncs the parent. Until that rename nothing
 * exists under the output name, so an error (`abort`) or a SIGKILL leaves at most a temporary folder,
 * which the next writer in the same parent removes once its process is gone (`sweepStaleTempDirs`).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError } from '@hm3/errors';
import { CheckpointWriteError } from './checkpoint-errors.js';
import { INDEX_FILE_NAME, SINGLE_FILE_NAME } from './checkpoint.js';
import { DTYPE_SIZES, encodeFloats, isDType, shapeSize, type DType } from './dtypes.js';

/** The default shard byte budget: 5 GB, as Hugging Face's `max_shard_size="5GB"`. */
export const DEFAULT_SHARD_BYTES = 5_000_000_000;

/** A shard's written bytes after which the writer starts an fdatasync of it (see CheckpointWriterOptions.syncEveryBytes). */
export const DEFAULT_SYNC_EVERY_BYTES = 64 * 1024 * 1024;
const TEMP_PREFIX = '.hm3-tmp-';

export interface TensorSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface CheckpointWriterOptions {
  /** Shard byte budget (data bytes per shard); default DEFAULT_SHARD_BYTES. */
  shardBytes?: number;
  /** Recorded as `hm3_recipe_sha256` in every shard's metadata and the index's. */
  recipeSha256?: string;
  /** Recorded as `hm3_version`; default the version of @hm3/tensor. */
  toolVersion?: string;
  /** More `__metadata__` entries (string -> string). */
  metadata?: Readonly<Record<string, string>>;
  /**
   * When the output folder already exists and is not empty: `error` (default) refuses, `keep` treats
   * it as done (content-addressed outputs: same name, same content) and discards the new one, `replace`
   * swaps the new folder in.
   */
  ifExists?: 'error' | 'keep' | 'replace';
  /**
   * Folder that holds the temporary folder (an artifact store's `<root>/.tmp`); it must be on the
   * output's volume so the final rename is atomic. Default: the output's parent.
   */
  tempRoot?: string;
  /**
   * Every this many bytes written to a shard, an fdatasync of it starts in the background (one at a
   * time per shard), so the disk takes the data while the caller computes the rest and commit's fsync
   * finds little left to flush. Default DEFAULT_SYNC_EVERY_BYTES; Infinity: only at commit.
   */
  syncEveryBytes?: number;
}

export interface CommitResult {
  readonly outDir: string;
  /** File names in the folder written by this writer (shards, index, extra files). */
  readonly files: readonly string[];
  /** Tensor data bytes. */
  readonly totalBytes: number;
  /** True when `ifExists: 'keep'` found the output already there and left it untouched. */
  readonly alreadyExisted: boolean;
}

interface PlannedTensor {
  readonly spec: TensorSpec;
  readonly shard: Shard;
  /** Offset of its data within the shard's data section. */
  readonly begin: number;
  readonly byteLength: number;
  written: number;
}

interface Shard {
  readonly file: string;
  readonly tensors: PlannedTensor[];
  dataBytes: number;
  header: Uint8Array | undefined;
  handle: FileHandle | undefined;
  opening: Promise<FileHandle> | undefined;
  /** Bytes written since the last background fdatasync started. */
  unsynced: number;
  /** The background fdatasync in flight (it never rejects: its error is kept in syncError). */
  syncing: Promise<void> | undefined;
  /** The first background fdatasync failure, thrown by commit (the kernel may not report it twice). */
  syncError: unknown;
}

let packageVersion: string | undefined;
function toolVersionDefault(): string {
  if (packageVersion === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
        version?: string;
      };
      packageVersion = pkg.version ?? '0.0.0';
    } catch {
      packageVersion = '0.0.0';
    }
  }
  return packageVersion;
}

/** The file name of shard k (1-based) of n. */
export function shardFileName(k: number, n: number): string {
  if (n === 1) return SINGLE_FILE_NAME;
  return `model-${String(k).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/**
 * The safetensors header bytes (8-byte length + JSON padded with spaces to a multiple of 8) for
 * `tensors` laid out back to back in order.
 */
export function encodeSafetensorsHeader(
  tensors: readonly TensorSpec[],
  metadata: Readonly<Record<string, string>>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  let offset = 0;
  for (const t of tensors) {
    const bytes = shapeSize(t.shape) * DTYPE_SIZES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

function validateSpecs(tensors: readonly TensorSpec[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name === '' || t.name === '__metadata__')
      throw new InvalidArgumentError(`tensor name ${JSON.stringify(t.name)} is not allowed`, {
        tensor: t.name,
      });
    if (seen.has(t.name))
      throw new InvalidArgumentError(`tensor ${t.name} is declared twice`, { tensor: t.name });
    seen.add(t.name);
    if (!isDType(t.dtype))
      throw new InvalidArgumentError(`tensor ${t.name}: unknown dtype ${String(t.dtype)}`, {
        tensor: t.name,
        field: 'dtype',
      });
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new InvalidArgumentError(
        `tensor ${t.name}: shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`,
        { tensor: t.name, field: 'shape' },
      );
    }
  }
}

/** A temporary folder name that `sweepStaleTempDirs` can attribute to this host and process. */
function tempName(): string {
  return `${TEMP_PREFIX}${os.hostname()}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary folders in `parentDir` left by writers of this host whose process is gone (a crash
 * or SIGKILL). Folders of live processes, or of other hosts sharing the volume, are left alone.
 * Returns the removed paths.
 */
export async function sweepStaleTempDirs(parentDir: string): Promise<string[]> {
  const host = os.hostname();
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(parentDir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    const match = /^(.*)-(\d+)-[0-9a-f]+$/.exec(name.slice(TEMP_PREFIX.length));
    if (!match || match[1] !== host) continue;
    const pid = Number(match[2]);
    if (pid === process.pid || isAlive(pid)) continue;
    const full = path.join(parentDir, name);
    await rm(full, { recursive: true, force: true });
    removed.push(full);
  }
  return removed;
}

async function isNonEmptyDir(dir: string): Promise<boolean> {
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) return true; // a file in the way counts as occupied
    return (await readdir(dir)).length > 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeFully(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.byteLength) {
    const { bytesWritten } = await fh.write(data, done, data.byteLength - done, position + done);
    done += bytesWritten;
  }
}

export class CheckpointWriter {
  readonly outDir: string;
  readonly tempDir: string;
  private readonly options: CheckpointWriterOptions;
  private readonly metadata: Record<string, string>;
  private readonly shards: Shard[];
  private readonly tensors: Map<string, PlannedTensor>;
  private readonly extraFiles = new Set<string>();
  private state: 'open' | 'committed' | 'aborted' = 'open';

  private constructor(
    outDir: string,
    tempDir: string,
    specs: readonly TensorSpec[],
    options: CheckpointWriterOptions,
  ) {
    this.outDir = outDir;
    this.tempDir = tempDir;
    this.options = options;
    this.metadata = {
      ...options.metadata,
      format: 'pt',
      hm3_version: options.toolVersion ?? toolVersionDefault(),
      ...(options.recipeSha256 === undefined ? {} : { hm3_recipe_sha256: options.recipeSha256 }),
    };
    const budget = options.shardBytes ?? DEFAULT_SHARD_BYTES;
    const groups: TensorSpec[][] = [];
    let current: TensorSpec[] = [];
    let bytes = 0;
    for (const spec of specs) {
      const size = shapeSize(spec.shape) * DTYPE_SIZES[spec.dtype];
      if (current.length > 0 && bytes + size > budget) {
        groups.push(current);
        current = [];
        bytes = 0;
      }
      current.push(spec);
      bytes += size;
    }
    if (current.length > 0 || groups.length === 0) groups.push(current);
    this.tensors = new Map();
    this.shards = groups.map((group, i) => {
      const shard: Shard = {
        file: shardFileName(i + 1, groups.length),
        tensors: [],
        dataBytes: 0,
        header: undefined,
        handle: undefined,
        opening: undefined,
        unsynced: 0,
        syncing: undefined,
        syncError: undefined,
      };
      for (const spec of group) {
        const byteLength = shapeSize(spec.shape) * DTYPE_SIZES[spec.dtype];
        const planned: PlannedTensor = { spec, shard, begin: shard.dataBytes, byteLength, written: 0 };
        shard.tensors.push(planned);
        shard.dataBytes += byteLength;
        this.tensors.set(spec.name, planned);
      }
      return shard;
    });
  }

  /**
   * Plans the output and creates its temporary folder beside `outDir` (sweeping stale ones first).
   * Nothing appears under `outDir` until `commit`.
   */
  static async create(
    outDir: string,
    tensors: readonly TensorSpec[],
    options: CheckpointWriterOptions = {},
  ): Promise<CheckpointWriter> {
    validateSpecs(tensors);
    const shardBytes = options.shardBytes ?? DEFAULT_SHARD_BYTES;
    if (!Number.isSafeInteger(shardBytes) || shardBytes < 1)
      throw new InvalidArgumentError(`shard size must be a positive integer byte count, got ${shardBytes}`, {
        field: 'shardBytes',
      });
    const syncEvery = options.syncEveryBytes ?? DEFAULT_SYNC_EVERY_BYTES;
    if (!(syncEvery >= 1))
      throw new InvalidArgumentError(`syncEveryBytes must be at least 1 (or Infinity), got ${syncEvery}`, {
        field: 'syncEveryBytes',
      });
    const out = path.resolve(outDir);
    const parent = path.dirname(out);
    if ((options.ifExists ?? 'error') === 'error' && (await isNonEmptyDir(out))) {
      throw new CheckpointWriteError(`output folder ${out} already exists and is not empty`, { path: out });
    }
    const tempRoot = path.resolve(options.tempRoot ?? parent);
    await mkdir(parent, { recursive: true });
    await mkdir(tempRoot, { recursive: true });
    await sweepStaleTempDirs(tempRoot);
    const temp = path.join(tempRoot, tempName());
    await mkdir(temp);
    return new CheckpointWriter(out, temp, tensors, options);
  }

  /** The shard plan: file name and tensor names of each shard. */
  get plan(): readonly { file: string; tensors: readonly string[]; dataBytes: number }[] {
    return this.shards.map((s) => ({
      file: s.file,
      tensors: s.tensors.map((t) => t.spec.name),
      dataBytes: s.dataBytes,
    }));
  }

  /** Bytes of `name` still to write. */
  remaining(name: string): number {
    const t = this.planned(name);
    return t.byteLength - t.written;
  }

  /** Appends raw little-endian bytes of tensor `name` (the whole tensor or the next row block). */
  async write(name: string, bytes: Uint8Array): Promise<void> {
    this.assertOpen();
    const t = this.planned(name);
    if (t.written + bytes.byteLength > t.byteLength) {
      throw new CheckpointWriteError(
        `tensor ${name}: writing ${bytes.byteLength} bytes at ${t.written} passes its ${t.byteLength} bytes`,
        { tensor: name },
      );
    }
    const position = t.written;
    t.written += bytes.byteLength; // claimed before awaiting, so concurrent appends keep their order
    const fh = await this.shardHandle(t.shard);
    await writeFully(fh, bytes, t.shard.header!.byteLength + t.begin + position);
    this.syncInBackground(t.shard, fh, bytes.byteLength);
  }

  /** Counts `written` bytes of `shard`, and starts its background fdatasync when they pass the threshold. */
  private syncInBackground(shard: Shard, fh: FileHandle, written: number): void {
    shard.unsynced += written;
    if (
      shard.syncing !== undefined ||
      shard.unsynced < (this.options.syncEveryBytes ?? DEFAULT_SYNC_EVERY_BYTES)
    )
      return;
    shard.unsynced = 0;
    shard.syncing = fh.datasync().then(
      () => {
        shard.syncing = undefined;
      },
      (error: unknown) => {
        shard.syncError ??= error;
        shard.syncing = undefined;
      },
    );
  }

  /** Appends F32/F64 values of tensor `name`, encoded to its dtype (round-to-nearest-even when narrowing). */
  async writeFloats(name: string, values: Float32Array | Float64Array): Promise<void> {
    const t = this.planned(name);
    await this.write(name, encodeFloats(t.spec.dtype, values));
  }

  /** Writes an extra file (config.json, tokenizer files, README.md, ...) into the output folder. */
  async writeFile(relativePath: string, data: string | Uint8Array): Promise<void> {
    this.assertOpen();
    const normal = path.normalize(relativePath);
    if (
      path.isAbsolute(normal) ||
      normal.startsWith('..') ||
      normal === '.' ||
      normal === INDEX_FILE_NAME ||
      this.shards.some((s) => s.file === normal)
    ) {
      throw new InvalidArgumentError(`extra file path ${JSON.stringify(relativePath)} is not allowed`, {
        field: 'path',
        path: relativePath,
      });
    }
    const full = path.join(this.tempDir, normal);
    await mkdir(path.dirname(full), { recursive: true });
    const fh = await open(full, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    this.extraFiles.add(normal);
  }

  /**
   * Checks that every tensor is complete, fsyncs and closes the shards, writes the index (sharded only)
   * last, fsyncs the folder, renames it into place and fsyncs the parent. On failure the temporary
   * folder is removed and nothing is left under the output name.
   */
  async commit(): Promise<CommitResult> {
    this.assertOpen();
    try {
      const incomplete = [...this.tensors.values()].filter((t) => t.written !== t.byteLength);
      if (incomplete.length > 0) {
        const first = incomplete[0]!;
        throw new CheckpointWriteError(
          `${incomplete.length} tensor(s) incomplete, first ${first.spec.name} (${first.written} of ${first.byteLength} bytes written)`,
          { tensor: first.spec.name, incomplete: incomplete.map((t) => t.spec.name) },
        );
      }
      let totalBytes = 0;
      for (const shard of this.shards) {
        const fh = await this.shardHandle(shard); // opens (and writes the header of) a shard of only empty tensors
        await shard.syncing;
        if (shard.syncError !== undefined)
          throw new CheckpointWriteError(
            `writing ${shard.file} to disk failed: ${String(shard.syncError)}`,
            { path: path.join(this.tempDir, shard.file) },
            shard.syncError,
          );
        await fh.sync();
        await fh.close();
        shard.handle = undefined;
        totalBytes += shard.dataBytes;
      }
      const files = this.shards.map((s) => s.file);
      if (this.shards.length > 1) {
        const weightMap: Record<string, string> = {};
        for (const name of [...this.tensors.keys()].sort())
          weightMap[name] = this.tensors.get(name)!.shard.file;
        const index = { metadata: { total_size: totalBytes, ...this.metadata }, weight_map: weightMap };
        const fh = await open(path.join(this.tempDir, INDEX_FILE_NAME), 'w');
        try {
          await fh.writeFile(JSON.stringify(index, null, 2) + '\n');
          await fh.sync();
        } finally {
          await fh.close();
        }
        files.push(INDEX_FILE_NAME);
      }
      files.push(...this.extraFiles);
      await fsyncPath(this.tempDir);
      const alreadyExisted = await this.moveIntoPlace();
      this.state = 'committed';
      return { outDir: this.outDir, files, totalBytes, alreadyExisted };
    } catch (error) {
      await this.abort();
      throw error;
    }
  }

  /** Closes every file and removes the temporary folder. Safe to call more than once. */
  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    for (const shard of this.shards) {
      const fh = shard.handle ?? (shard.opening ? await shard.opening.catch(() => undefined) : undefined);
      shard.handle = undefined;
      await shard.syncing; // never rejects
      await fh?.close().catch(() => undefined);
    }
    await rm(this.tempDir, { recursive: true, force: true });
  }

  private async moveIntoPlace(): Promise<boolean> {
    const parent = path.dirname(this.outDir);
    const mode = this.options.ifExists ?? 'error';
    if (await isNonEmptyDir(this.outDir)) {
      if (mode === 'keep') {
        await rm(this.tempDir, { recursive: true, force: true });
        return true;
      }
      if (mode === 'error')
        throw new CheckpointWriteError(`output folder ${this.outDir} already exists and is not empty`, {
          path: this.outDir,
        });
      const old = path.join(path.dirname(this.tempDir), tempName());
      await rename(this.outDir, old);
      await rename(this.tempDir, this.outDir);
      await fsyncPath(parent);
      await rm(old, { recursive: true, force: true });
      return false;
    }
    try {
      await rename(this.tempDir, this.outDir); // replaces an empty folder atomically
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        if (mode === 'keep') {
          await rm(this.tempDir, { recursive: true, force: true });
          return true;
        }
        throw new CheckpointWriteError(
          `output folder ${this.outDir} appeared while writing`,
          { path: this.outDir },
          error,
        );
      }
      throw error;
    }
    await fsyncPath(parent);
    return false;
  }

  private planned(name: string): PlannedTensor {
    const t = this.tensors.get(name);
    if (!t) throw new CheckpointWriteError(`tensor ${name} was not declared`, { tensor: name });
    return t;
  }

  private assertOpen(): void {
    if (this.state !== 'open')
      throw new CheckpointWriteError(`the writer of ${this.outDir} is ${this.state}`, { path: this.outDir });
  }

  private shardHandle(shard: Shard): Promise<FileHandle> {
    if (shard.handle) return Promise.resolve(shard.handle);
    shard.opening ??= (async () => {
      const header = encodeSafetensorsHeader(
        shard.tensors.map((t) => t.spec),
        this.metadata,
      );
      const fh = await open(path.join(this.tempDir, shard.file), 'w');
      await writeFully(fh, header, 0);
      shard.header = header;
      shard.handle = fh;
      return fh;
    })();
    return shard.opening;
  }
}
