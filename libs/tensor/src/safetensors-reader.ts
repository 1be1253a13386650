/**
 * safetensors reader: validates the header of a file, then reads one tensor or a row range of it by
 * positioned reads (never the whole file, never mmap).
 *
 * Format: 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets:
 * [begin, end]}, "__metadata__"?: {string: string}}, then the data section; offsets are relative to the
 * data section's first byte (8 + N).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { CheckpointNotFoundError, InvalidCheckpointError } from './checkpoint-errors.js';
import {
  DTYPE_SIZES,
  DTYPES,
  checkFinite,
  decodeFloats,
  f16ToF32Table,
  findNonFinite,
  bf16ToF32Table as bf16ToF32TableShared,
  isDType,
  isFloatDType,
  shapeSize,
  type DType,
  type NonFinitePolicy,
  type NonFiniteReport,
} from './dtypes.js';

/** The largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;
/** Positioned reads are issued in chunks of at most this many bytes. */
export const READ_CHUNK_BYTES = 16 * 1024 * 1024;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's first byte in its file. */
  readonly offset: number;
  readonly byteLength: number;
}

export interface SafetensorsHeader {
  /** N, the JSON header's byte length. */
  readonly headerLength: number;
  /** Absolute offset of the data section (8 + N). */
  readonly dataOffset: number;
  /** Tensors sorted by offset. */
  readonly tensors: readonly TensorInfo[];
  readonly metadata: Readonly<Record<string, string>>;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Validates a header: `json` is the N header bytes, `fileSize` the whole file's size. Pure; `file`
 * only names the file in errors.
 */
export function parseSafetensorsHeader(file: string, json: Uint8Array, fileSize: number): SafetensorsHeader {
  const headerLength = json.byteLength;
  const dataOffset = 8 + headerLength;
  const dataLength = fileSize - dataOffset;
  let text: string;
  let parsed: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch (error) {
    throw new InvalidCheckpointError(file, 'header-json', 'the header is not valid UTF-8', undefined, error);
  }
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InvalidCheckpointError(
      file,
      'header-json',
      `the header is not JSON (${(error as Error).message})`,
      undefined,
      error,
    );
  }
  if (!isPlainObject(parsed))
    throw new InvalidCheckpointError(file, 'header-json', 'the header is JSON but not an object');

  let metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry))
        throw new InvalidCheckpointError(file, 'metadata', '__metadata__ is not an object of strings');
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== 'string')
          throw new InvalidCheckpointError(
            file,
            'metadata',
            `__metadata__.${key} is a ${value === null ? 'null' : typeof value}, not a string`,
          );
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    if (!isPlainObject(entry))
      throw new InvalidCheckpointError(
        file,
        'header-entry',
        'the entry is not an object {dtype, shape, data_offsets}',
        name,
      );
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string')
      throw new InvalidCheckpointError(file, 'header-entry', 'dtype is missing or not a string', name);
    if (!isDType(dtype))
      throw new InvalidCheckpointError(
        file,
        'dtype',
        `unknown dtype ${JSON.stringify(dtype)} (known: ${DTYPES.join(', ')})`,
        name,
      );
    if (!Array.isArray(shape) || !shape.every(isSize))
      throw new InvalidCheckpointError(
        file,
        'header-entry',
        `shape ${JSON.stringify(shape)} is not a list of non-negative integers`,
        name,
      );
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every(isSize) ||
      (offsets[0] as number) > (offsets[1] as number)
    ) {
      throw new InvalidCheckpointError(
        file,
        'header-entry',
        `data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 <= begin <= end`,
        name,
      );
    }
    const [begin, end] = offsets as [number, number];
    const expected = shapeSize(shape) * DTYPE_SIZES[dtype];
    if (!Number.isSafeInteger(expected) || expected !== end - begin) {
      throw new InvalidCheckpointError(
        file,
        'shape-span',
        `shape [${shape.join(', ')}] x ${dtype} (${DTYPE_SIZES[dtype]} bytes) = ${expected} bytes, but data_offsets [${begin}, ${end}] span ${end - begin} bytes`,
        name,
      );
    }
    if (end > dataLength) {
      throw new InvalidCheckpointError(
        file,
        'span-bounds',
        `data_offsets [${begin}, ${end}] run past the end of the data section (${dataLength} bytes; file size ${fileSize}): the file is truncated or the header is wrong`,
        name,
      );
    }
    tensors.push({
      name,
      dtype,
      shape: shape as number[],
      offset: dataOffset + begin,
      byteLength: end - begin,
    });
  }
  tensors.sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  for (let i = 1; i < tensors.length; i++) {
    const prev = tensors[i - 1]!;
    const cur = tensors[i]!;
    if (cur.offset < prev.offset + prev.byteLength) {
      throw new InvalidCheckpointError(
        file,
        'span-overlap',
        `its bytes [${cur.offset - dataOffset}, ${cur.offset - dataOffset + cur.byteLength}) overlap tensor ${prev.name}'s [${prev.offset - dataOffset}, ${prev.offset - dataOffset + prev.byteLength})`,
        cur.name,
      );
    }
  }
  return { headerLength, dataOffset, tensors, metadata };
}

/**
 * Fills `target` from `fh` at `position`, in chunks of at most READ_CHUNK_BYTES; a short read (the file
 * shrank) is an InvalidCheckpointError.
 */
export async function readFully(
  fh: FileHandle,
  target: Uint8Array,
  position: number,
  file: string,
  tensor?: string,
): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    const length = Math.min(READ_CHUNK_BYTES, target.byteLength - done);
    const { bytesRead } = await fh.read(target, done, length, position + done);
    if (bytesRead === 0) {
      throw new InvalidCheckpointError(
        file,
        'short-read',
        `the file ended at byte ${position + done} while ${target.byteLength - done} more bytes were expected`,
        tensor,
      );
    }
    done += bytesRead;
  }
}

export interface ReadFloatsOptions<T extends Float32Array | Float64Array> {
  /** Rows [start, end) along dimension 0; the whole tensor when absent. */
  rows?: readonly [number, number];
  /** Where to decode; must hold the element count. */
  out?: T;
  /** Check the decoded values for NaN/Inf: `error` throws NonFiniteTensorError, `warn` calls `onNonFinite`. */
  nonFinite?: NonFinitePolicy;
  onNonFinite?: (report: NonFiniteReport) => void;
}

/** One open safetensors file. Close it when done. */
export class SafetensorsFile {
  readonly path: string;
  readonly fileSize: number;
  readonly header: SafetensorsHeader;
  private readonly handle: FileHandle;
  private readonly byName: Map<string, TensorInfo>;

  private constructor(path: string, handle: FileHandle, fileSize: number, header: SafetensorsHeader) {
    this.path = path;
    this.handle = handle;
    this.fileSize = fileSize;
    this.header = header;
    this.byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  /** Opens `path` and validates its header; reads only the 8 + N header bytes. */
  static async open(path: string): Promise<SafetensorsFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new CheckpointNotFoundError(path, 'no such safetensors file', undefined, error);
      throw error;
    }
    try {
      const { size } = await handle.stat();
      if (size < 8)
        throw new InvalidCheckpointError(
          path,
          'file-size',
          `the file has ${size} bytes, fewer than the 8-byte header length: it is truncated`,
        );
      const lengthBytes = new Uint8Array(8);
      await readFully(handle, lengthBytes, 0, path);
      const n = new DataView(lengthBytes.buffer).getBigUint64(0, true);
      if (n > BigInt(size - 8)) {
        throw new InvalidCheckpointError(
          path,
          'header-length',
          `the header length ${n} runs past the end of the file (${size} bytes, ${size - 8} after the length): truncated or not safetensors`,
        );
      }
      if (n > BigInt(MAX_HEADER_BYTES))
        throw new InvalidCheckpointError(
          path,
          'header-length',
          `the header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`,
        );
      const json = new Uint8Array(Number(n));
      await readFully(handle, json, 8, path);
      return new SafetensorsFile(path, handle, size, parseSafetensorsHeader(path, json, size));
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  get metadata(): Readonly<Record<string, string>> {
    return this.header.metadata;
  }

  /** Tensors in file order. */
  get tensors(): readonly TensorInfo[] {
    return this.header.tensors;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The tensor's info; CheckpointNotFoundError when the file holds no such tensor. */
  get(name: string): TensorInfo {
    const info = this.byName.get(name);
    if (!info) throw new CheckpointNotFoundError(this.path, 'no such tensor in this file', name);
    return info;
  }

  /** The raw bytes of a whole tensor (into `out` when given, which must be at least that long). */
  async readBytes(name: string, out?: Uint8Array): Promise<Uint8Array> {
    const info = this.get(name);
    const target = out ? out.subarray(0, info.byteLength) : new Uint8Array(info.byteLength);
    if (target.byteLength < info.byteLength)
      throw new InvalidCheckpointError(
        this.path,
        'row-range',
        `output buffer holds ${target.byteLength} bytes, ${info.byteLength} needed`,
        name,
      );
    await readFully(this.handle, target, info.offset, this.path, name);
    return target;
  }

  /** The byte span [begin, end) of rows [rowStart, rowEnd) of tensor `name`, relative to its first byte. */
  rowSpan(name: string, rowStart: number, rowEnd: number): { begin: number; end: number; rowBytes: number } {
    const info = this.get(name);
    return rowSpanOf(this.path, info, rowStart, rowEnd);
  }

  /** The raw bytes of rows [rowStart, rowEnd) along dimension 0. */
  async readRowBytes(name: string, rowStart: number, rowEnd: number, out?: Uint8Array): Promise<Uint8Array> {
    const info = this.get(name);
    const { begin, end } = rowSpanOf(this.path, info, rowStart, rowEnd);
    const target = out ? out.subarray(0, end - begin) : new Uint8Array(end - begin);
    if (target.byteLength < end - begin)
      throw new InvalidCheckpointError(
        this.path,
        'row-range',
        `output buffer holds ${target.byteLength} bytes, ${end - begin} needed`,
        name,
      );
    await readFully(this.handle, target, info.offset + begin, this.path, name);
    return target;
  }

  /**
   * Reads a float tensor (or its rows) decoded to F32 or F64. The raw bytes pass through a reusable
   * chunk buffer, so memory is the output plus one chunk, whatever the tensor size.
   */
  async readFloats(
    name: string,
    into: 'F32',
    options?: ReadFloatsOptions<Float32Array>,
  ): Promise<Float32Array>;
  async readFloats(
    name: string,
    into: 'F64',
    options?: ReadFloatsOptions<Float64Array>,
  ): Promise<Float64Array>;
  async readFloats(
    name: string,
    into: 'F32' | 'F64',
    options: ReadFloatsOptions<Float32Array | Float64Array> = {},
  ): Promise<Float32Array | Float64Array> {
    const info = this.get(name);
    if (!isFloatDType(info.dtype)) {
      throw new InvalidCheckpointError(
        this.path,
        'dtype',
        `dtype ${info.dtype} is not a float dtype; read its bytes and pass them through`,
        name,
      );
    }
    const { begin, end } = options.rows
      ? rowSpanOf(this.path, info, options.rows[0], options.rows[1])
      : { begin: 0, end: info.byteLength };
    const { values, firstNonFinite } = await readDecoded(
      this.handle,
      this.path,
      info,
      begin,
      end,
      into,
      options.out,
    );
    if (options.nonFinite && firstNonFinite !== -1) {
      // checked on the raw bits while decoding (16-bit sources), else here on the values
      const count = (end - begin) / DTYPE_SIZES[info.dtype];
      const from = firstNonFinite ?? 0;
      checkFinite(into, values.subarray(from, count), {
        file: this.path,
        tensor: name,
        policy: options.nonFinite,
        indexOffset: begin / DTYPE_SIZES[info.dtype] + from,
        ...(options.onNonFinite ? { onWarn: options.onNonFinite } : {}),
      });
    }
    return values;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

export function rowSpanOf(
  file: string,
  info: TensorInfo,
  rowStart: number,
  rowEnd: number,
): { begin: number; end: number; rowBytes: number } {
  const rows = info.shape[0];
  if (rows === undefined)
    throw new InvalidCheckpointError(file, 'row-range', 'a scalar tensor has no rows', info.name);
  if (
    !Number.isSafeInteger(rowStart) ||
    !Number.isSafeInteger(rowEnd) ||
    rowStart < 0 ||
    rowStart > rowEnd ||
    rowEnd > rows
  ) {
    throw new InvalidCheckpointError(
      file,
      'row-range',
      `rows [${rowStart}, ${rowEnd}) are not within [0, ${rows}]`,
      info.name,
    );
  }
  const rowBytes = rows === 0 ? 0 : info.byteLength / rows;
  return { begin: rowStart * rowBytes, end: rowEnd * rowBytes, rowBytes };
}

/**
 * Reads bytes [begin, end) of a float tensor decoded into F32 or F64. Widening reads (16-bit -> F32/F64,
 * F32 -> F64) put the raw bytes in the tail of the output's own bytes and expand them front to back in
 * place (element i is written at or before the raw position of element i, so nothing unread is
 * overwritten): one positioned read, no staging buffer. 16-bit sources are checked for NaN/Inf on their
 * bits in the same loop. Returns the decoded values and the index of the first non-finite one (-1: none;
 * null: not checked).
 */
async function readDecoded(
  handle: FileHandle,
  file: string,
  info: TensorInfo,
  begin: number,
  end: number,
  into: 'F32' | 'F64',
  out: Float32Array | Float64Array | undefined,
): Promise<{ values: Float32Array | Float64Array; firstNonFinite: number | null }> {
  const size = DTYPE_SIZES[info.dtype];
  const count = (end - begin) / size;
  const target = out ?? (into === 'F32' ? new Float32Array(count) : new Float64Array(count));
  if (target.length < count)
    throw new InvalidCheckpointError(
      file,
      'row-range',
      `output holds ${target.length} elements, ${count} needed`,
      info.name,
    );
  if (count === 0) return { values: target, firstNonFinite: -1 };
  const targetSize = target instanceof Float64Array ? 8 : 4;
  if (size <= targetSize) {
    // same width (a plain read) or widening (raw bytes in the tail, expanded in place)
    const raw = new Uint8Array(target.buffer, target.byteOffset + count * (targetSize - size), count * size);
    await readFully(handle, raw, info.offset + begin, file, info.name);
    if (size === targetSize) return { values: target, firstNonFinite: null };
    const firstNonFinite = expandInPlace(info.dtype, target, count);
    return { values: target, firstNonFinite };
  }
  // F64 -> F32 (narrowing): through a staging chunk
  const chunkElems = Math.max(1, Math.floor(Math.min(READ_CHUNK_BYTES, end - begin) / size));
  const chunk = new Uint8Array(chunkElems * size);
  for (let e = 0; e < count; e += chunkElems) {
    const n = Math.min(chunkElems, count - e);
    const bytes = chunk.subarray(0, n * size);
    await readFully(handle, bytes, info.offset + begin + e * size, file, info.name);
    decodeFloats(info.dtype, bytes, into, target.subarray(e, e + n));
  }
  return { values: target, firstNonFinite: null };
}

/**
 * Expands `count` raw elements of `dtype` held in the tail of `target`'s bytes into `target[0, count)`;
 * returns the index of the first NaN/Inf for 16-bit sources (-1: none), null for F32 -> F64.
 */
function expandInPlace(dtype: DType, target: Float32Array | Float64Array, count: number): number | null {
  if (dtype === 'F32') {
    // F32 -> F64: the raw F32 values sit at F32 index count of the target's bytes
    const src = new Float32Array(target.buffer, target.byteOffset, 2 * count);
    const dst = target as Float64Array;
    for (let i = 0; i < count; i++) dst[i] = src[count + i]!;
    return null;
  }
  if (target instanceof Float32Array) {
    const src = new Uint16Array(target.buffer, target.byteOffset, 2 * count);
    return dtype === 'BF16' ? expandBf16ToF32(src, target, count) : expandF16ToF32(src, target, count);
  }
  const src = new Uint16Array(target.buffer, target.byteOffset, 4 * count);
  return expandHalfToF64(src, target, count, dtype === 'BF16');
}

// NaN/Inf checks on 16-bit patterns without a branch per element: (h & exp) + low bit of exp carries
// into bit 15 exactly when every exponent bit is set; a flagged range is scanned again for the index.

function expandBf16ToF32(src: Uint16Array, target: Float32Array, count: number): number {
  const dst = new Uint32Array(target.buffer, target.byteOffset, count);
  let flags = 0;
  for (let i = 0; i < count; i++) {
    const h = src[count + i]!;
    flags |= (h & 0x7f80) + 0x80;
    dst[i] = h << 16;
  }
  return (flags & 0x8000) === 0 ? -1 : findNonFinite('F32', target.subarray(0, count));
}

function expandF16ToF32(src: Uint16Array, target: Float32Array, count: number): number {
  const table = f16ToF32Table();
  let flags = 0;
  for (let i = 0; i < count; i++) {
    const h = src[count + i]!;
    flags |= (h & 0x7c00) + 0x400;
    target[i] = table[h]!;
  }
  return (flags & 0x8000) === 0 ? -1 : findNonFinite('F32', target.subarray(0, count));
}

function expandHalfToF64(src: Uint16Array, target: Float64Array, count: number, bf16: boolean): number {
  const table = bf16 ? bf16ToF32TableShared() : f16ToF32Table();
  const mask = bf16 ? 0x7f80 : 0x7c00;
  const carry = bf16 ? 0x80 : 0x400;
  let flags = 0;
  for (let i = 0; i < count; i++) {
    const h = src[3 * count + i]!;
    flags |= (h & mask) + carry;
    target[i] = table[h]!;
  }
  return (flags & 0x8000) === 0 ? -1 : findNonFinite('F64', target.subarray(0, count));
}
