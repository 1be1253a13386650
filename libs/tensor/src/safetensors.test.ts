import { mkdtemp, open, readdir, readFile, rm, truncate, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CheckpointNotFoundError,
  CheckpointWriteError,
  InvalidCheckpointError,
  type CheckpointRule,
} from './checkpoint-errors.js';
import { Checkpoint } from './checkpoint.js';
import { bf16BitsToNumber, encodeFloats, numberToBf16Bits, type DType } from './dtypes.js';
import { SafetensorsFile } from './safetensors-reader.js';
import {
  CheckpointWriter,
  encodeSafetensorsHeader,
  shardFileName,
  type TensorSpec,
} from './safetensors-writer.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'hm3-safetensors-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let counter = 0;
function fresh(name: string): string {
  counter += 1;
  return path.join(root, `${name}-${counter}`);
}

/** A raw safetensors file: 8-byte length (or `length`), header text, data. */
async function rawFile(
  header: unknown,
  data: Uint8Array,
  options: { length?: bigint; text?: string } = {},
): Promise<string> {
  const text = Buffer.from(options.text ?? JSON.stringify(header), 'utf8');
  const bytes = new Uint8Array(8 + text.byteLength + data.byteLength);
  new DataView(bytes.buffer).setBigUint64(0, options.length ?? BigInt(text.byteLength), true);
  bytes.set(text, 8);
  bytes.set(data, 8 + text.byteLength);
  const file = fresh('raw') + '.safetensors';
  await writeFile(file, bytes);
  return file;
}

async function expectInvalid(
  file: string,
  rule: CheckpointRule,
  tensor?: string,
): Promise<InvalidCheckpointError> {
  const error = await SafetensorsFile.open(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidCheckpointError);
  const e = error as InvalidCheckpointError;
  expect(e.rule).toBe(rule);
  expect(e.message).toContain(file);
  expect(e.details['file']).toBe(file);
  if (tensor !== undefined) {
    expect(e.message).toContain(`tensor ${tensor}`);
    expect(e.tensor).toBe(tensor);
  }
  return e;
}

function iota(n: number, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => (i - n / 2) * scale);
}

async function writeCheckpoint(
  out: string,
  specs: TensorSpec[],
  values: Map<string, Float64Array | Uint8Array>,
  shardBytes?: number,
): Promise<void> {
  const writer = await CheckpointWriter.create(out, specs, {
    recipeSha256: 'ab'.repeat(32),
    toolVersion: '9.9.9',
    ...(shardBytes ? { shardBytes } : {}),
  });
  for (const spec of specs) {
    const v = values.get(spec.name)!;
    if (v instanceof Float64Array) await writer.writeFloats(spec.name, v);
    else await writer.write(spec.name, v);
  }
  await writer.commit();
}

describe('writer -> reader round trip', () => {
  const specs: TensorSpec[] = [
    { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [16, 8] },
    { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F16', shape: [8, 4] },
    { name: 'model.norm.weight', dtype: 'F32', shape: [8] },
    { name: 'f64', dtype: 'F64', shape: [2, 3] },
    { name: 'position_ids', dtype: 'I64', shape: [1, 5] },
    { name: 'scalar', dtype: 'F32', shape: [] },
    { name: 'empty', dtype: 'F32', shape: [0, 4] },
    { name: 'flags', dtype: 'BOOL', shape: [3] },
  ];
  const values = new Map<string, Float64Array | Uint8Array>([
    ['model.embed_tokens.weight', iota(128, 0.25)],
    ['model.layers.0.mlp.up_proj.weight', iota(32, 0.125)],
    ['model.norm.weight', iota(8, 1.5)],
    ['f64', Float64Array.from([0.1, 0.2, 0.3, 1e-300, -5, 7])],
    ['position_ids', new Uint8Array(new BigInt64Array([0n, 1n, 2n, -3n, 2n ** 40n]).buffer)],
    ['scalar', Float64Array.from([3.5])],
    ['empty', new Float64Array(0)],
    ['flags', new Uint8Array([1, 0, 1])],
  ]);

  it('writes one model.safetensors with padded header and metadata, and reads every dtype back', async () => {
    const out = fresh('single');
    await writeCheckpoint(out, specs, values);
    expect((await readdir(out)).sort()).toEqual(['model.safetensors']);
    const raw = await readFile(path.join(out, 'model.safetensors'));
    const n = Number(raw.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const file = await SafetensorsFile.open(path.join(out, 'model.safetensors'));
    try {
      expect(file.metadata).toEqual({
        format: 'pt',
        hm3_version: '9.9.9',
        hm3_recipe_sha256: 'ab'.repeat(32),
      });
      expect(file.tensors.map((t) => t.name)).toEqual(specs.map((s) => s.name));
      expect([...(await file.readFloats('model.norm.weight', 'F64'))]).toEqual([
        ...values.get('model.norm.weight')!,
      ]);
      expect([...(await file.readFloats('f64', 'F64'))]).toEqual([...values.get('f64')!]);
      expect([...(await file.readFloats('f64', 'F32'))]).toEqual([...values.get('f64')!].map(Math.fround));
      // BF16/F16 values chosen exactly representable
      expect([...(await file.readFloats('model.embed_tokens.weight', 'F32'))]).toEqual([
        ...values.get('model.embed_tokens.weight')!,
      ]);
      expect([...(await file.readFloats('model.layers.0.mlp.up_proj.weight', 'F64'))]).toEqual([
        ...values.get('model.layers.0.mlp.up_proj.weight')!,
      ]);
      expect([...new BigInt64Array((await file.readBytes('position_ids')).buffer)]).toEqual([
        0n,
        1n,
        2n,
        -3n,
        2n ** 40n,
      ]);
      expect([...(await file.readBytes('flags'))]).toEqual([1, 0, 1]);
      expect([...(await file.readFloats('scalar', 'F32'))]).toEqual([3.5]);
      expect((await file.readFloats('empty', 'F32')).length).toBe(0);
      await expect(file.readFloats('position_ids', 'F32')).rejects.toThrow(/not a float dtype/);
      await expect(file.readBytes('nope')).rejects.toThrow(CheckpointNotFoundError);
    } finally {
      await file.close();
    }
  });

  it('reports NaN/Inf in inputs by policy, naming file, tensor and flat index', async () => {
    const out = fresh('nonfinite');
    await writeCheckpoint(
      out,
      [{ name: 'w', dtype: 'BF16', shape: [4, 4] }],
      new Map([['w', Float64Array.from({ length: 16 }, (_, i) => (i === 13 ? NaN : i))]]),
    );
    const file = path.join(out, 'model.safetensors');
    const ckpt = await Checkpoint.open(out);
    try {
      await expect(ckpt.readFloats('w', 'F32', { nonFinite: 'error' })).rejects.toThrow(
        new RegExp(`${file}: tensor w holds a non-finite value \\(NaN\\) at flat index 13`),
      );
      await expect(ckpt.readFloats('w', 'F32', { rows: [3, 4], nonFinite: 'error' })).rejects.toMatchObject({
        details: { index: 13, tensor: 'w', file },
      });
      const warned: unknown[] = [];
      const v = await ckpt.readFloats('w', 'F64', { nonFinite: 'warn', onNonFinite: (r) => warned.push(r) });
      expect(Number.isNaN(v[13])).toBe(true);
      expect(warned).toEqual([{ file, tensor: 'w', index: 13, value: NaN }]);
      expect((await ckpt.readFloats('w', 'F32', { rows: [0, 3], nonFinite: 'error' })).length).toBe(12);
    } finally {
      await ckpt.close();
    }
  });

  it('reads row ranges by positioned reads', async () => {
    const out = fresh('rows');
    await writeCheckpoint(out, specs, values);
    const file = await SafetensorsFile.open(path.join(out, 'model.safetensors'));
    try {
      const all = values.get('model.embed_tokens.weight')!;
      const rows = await file.readFloats('model.embed_tokens.weight', 'F64', { rows: [3, 7] });
      expect([...rows]).toEqual([...all.subarray(3 * 8, 7 * 8)]);
      const bytes = await file.readRowBytes('model.embed_tokens.weight', 15, 16);
      expect(bytes.byteLength).toBe(16);
      expect([...new Uint16Array(bytes.slice().buffer)].map(bf16BitsToNumber)).toEqual([
        ...all.subarray(120, 128),
      ]);
      const out32 = new Float32Array(8);
      await file.readFloats('model.embed_tokens.weight', 'F32', { rows: [0, 1], out: out32 });
      expect([...out32]).toEqual([...all.subarray(0, 8)]);
      expect((await file.readRowBytes('model.embed_tokens.weight', 4, 4)).byteLength).toBe(0);
      await expect(file.readRowBytes('model.embed_tokens.weight', 5, 17)).rejects.toMatchObject({
        rule: 'row-range',
        tensor: 'model.embed_tokens.weight',
      });
      await expect(file.readRowBytes('scalar', 0, 1)).rejects.toThrow(/scalar tensor has no rows/);
    } finally {
      await file.close();
    }
  });

  it('decodes a tensor larger than one read chunk (16 MiB) in chunks', async () => {
    const out = fresh('big');
    const n = 9 * 1024 * 1024; // BF16: 18 MiB
    const bits = new Uint16Array(n);
    for (let i = 0; i < n; i++) bits[i] = numberToBf16Bits((i % 251) - 125);
    const writer = await CheckpointWriter.create(out, [
      { name: 'w', dtype: 'BF16', shape: [n / 1024, 1024] },
    ]);
    const bytes = new Uint8Array(bits.buffer);
    // row blocks: written in three appends
    await writer.write('w', bytes.subarray(0, 5_000_000));
    await writer.write('w', bytes.subarray(5_000_000, 12_000_000));
    await writer.write('w', bytes.subarray(12_000_000));
    await writer.commit();
    const ckpt = await Checkpoint.open(out);
    try {
      const v = await ckpt.readFloats('w', 'F32');
      let bad = 0;
      for (let i = 0; i < n; i++) if (v[i] !== (i % 251) - 125) bad++;
      expect(bad).toBe(0);
      const tail = await ckpt.readFloats('w', 'F64', { rows: [9215, 9216] });
      expect(tail[1023]).toBe(((n - 1) % 251) - 125);
    } finally {
      await ckpt.close();
    }
  });

  it('shards by the byte budget, writes the index last, and reads through it', async () => {
    const out = fresh('sharded');
    // sizes: 256, 64, 32, 48, 40, 4, 0, 3 bytes; budget 300 -> [embed] [up, norm, f64, position_ids, scalar, empty, flags]? no:
    // 256 | 64+32+48+40+4+0+3 = 191 -> two shards
    await writeCheckpoint(out, specs, values, 300);
    const names = (await readdir(out)).sort();
    expect(names).toEqual([shardFileName(1, 2), shardFileName(2, 2), 'model.safetensors.index.json'].sort());
    expect(shardFileName(1, 2)).toBe('model-00001-of-00002.safetensors');
    const index = JSON.parse(await readFile(path.join(out, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: Record<string, unknown>;
      weight_map: Record<string, string>;
    };
    expect(index.metadata['total_size']).toBe(256 + 64 + 32 + 48 + 40 + 4 + 0 + 3);
    expect(index.metadata['hm3_recipe_sha256']).toBe('ab'.repeat(32));
    expect(index.weight_map['model.embed_tokens.weight']).toBe('model-00001-of-00002.safetensors');
    expect(index.weight_map['flags']).toBe('model-00002-of-00002.safetensors');
    const ckpt = await Checkpoint.open(out);
    try {
      expect(ckpt.sharded).toBe(true);
      expect(ckpt.names().sort()).toEqual(specs.map((s) => s.name).sort());
      expect(ckpt.info('model.norm.weight')).toMatchObject({
        dtype: 'F32',
        shape: [8],
        file: path.join(out, 'model-00002-of-00002.safetensors'),
      });
      expect([...(await ckpt.readFloats('model.norm.weight', 'F64'))]).toEqual([
        ...values.get('model.norm.weight')!,
      ]);
      expect([...(await ckpt.readFloats('model.embed_tokens.weight', 'F32', { rows: [1, 2] }))]).toEqual([
        ...values.get('model.embed_tokens.weight')!.subarray(8, 16),
      ]);
      expect([...(await ckpt.readBytes('flags'))]).toEqual([1, 0, 1]);
      expect(ckpt.files()).toHaveLength(2);
      expect(() => ckpt.info('missing.weight')).toThrow(CheckpointNotFoundError);
    } finally {
      await ckpt.close();
    }
  });

  it('a tensor larger than the budget gets a shard of its own', async () => {
    const writer = await CheckpointWriter.create(
      fresh('plan'),
      [
        { name: 'a', dtype: 'F32', shape: [10] },
        { name: 'big', dtype: 'F32', shape: [100] },
        { name: 'b', dtype: 'F32', shape: [10] },
        { name: 'c', dtype: 'F32', shape: [10] },
      ],
      { shardBytes: 100 },
    );
    expect(writer.plan.map((s) => s.tensors)).toEqual([['a'], ['big'], ['b', 'c']]);
    expect(writer.plan.map((s) => s.file)).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
    ]);
    await writer.abort();
  });

  it('writes extra files (config, tokenizer) into the folder', async () => {
    const out = fresh('extra');
    const writer = await CheckpointWriter.create(out, [{ name: 'x', dtype: 'F32', shape: [1] }]);
    await writer.writeFloats('x', new Float32Array([1]));
    await writer.writeFile('config.json', '{"model_type":"llama"}');
    await writer.writeFile('sub/tokenizer.json', new Uint8Array([123, 125]));
    await expect(writer.writeFile('../escape.txt', 'x')).rejects.toThrow(/not allowed/);
    const result = await writer.commit();
    expect(result.files).toEqual(['model.safetensors', 'config.json', path.join('sub', 'tokenizer.json')]);
    expect(await readFile(path.join(out, 'config.json'), 'utf8')).toBe('{"model_type":"llama"}');
  });
});

describe('bad safetensors files: typed errors naming the file, tensor and rule', () => {
  const f32x4 = new Uint8Array(16);

  it('a file shorter than 8 bytes', async () => {
    const file = fresh('tiny') + '.safetensors';
    await writeFile(file, new Uint8Array([1, 2, 3]));
    await expectInvalid(file, 'file-size');
  });

  it('a truncated file (data cut short)', async () => {
    const out = fresh('trunc');
    await writeCheckpoint(
      out,
      [
        { name: 'a', dtype: 'F32', shape: [4] },
        { name: 'b.weight', dtype: 'F32', shape: [1000] },
      ],
      new Map([
        ['a', iota(4)],
        ['b.weight', iota(1000)],
      ]),
    );
    const file = path.join(out, 'model.safetensors');
    const { size } = await import('node:fs/promises').then((fs) => fs.stat(file));
    await truncate(file, size - 100);
    const e = await expectInvalid(file, 'span-bounds', 'b.weight');
    expect(e.message).toMatch(/truncated/);
  });

  it('the header length runs past the end of the file', async () => {
    const file = await rawFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32x4, {
      length: 1_000_000n,
    });
    const e = await expectInvalid(file, 'header-length');
    expect(e.message).toMatch(/header length 1000000 runs past the end of the file/);
  });

  it('the header is not JSON', async () => {
    const file = await rawFile(undefined, f32x4, { text: '{"a": {"dtype": "F32", oops' });
    await expectInvalid(file, 'header-json');
    const notObject = await rawFile([1, 2], f32x4);
    await expectInvalid(notObject, 'header-json');
  });

  it('overlapping spans', async () => {
    const file = await rawFile(
      {
        first: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        second: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      },
      f32x4,
    );
    const e = await expectInvalid(file, 'span-overlap', 'second');
    expect(e.message).toContain('first');
  });

  it('an unknown dtype', async () => {
    const file = await rawFile(
      { 'lm_head.weight': { dtype: 'Q4_K', shape: [4], data_offsets: [0, 16] } },
      f32x4,
    );
    const e = await expectInvalid(file, 'dtype', 'lm_head.weight');
    expect(e.message).toContain('Q4_K');
  });

  it('a shape not matching the byte span', async () => {
    const file = await rawFile({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, f32x4);
    const e = await expectInvalid(file, 'shape-span', 'w');
    expect(e.message).toMatch(/24 bytes.*span 16 bytes/);
  });

  it('malformed entries and metadata', async () => {
    await expectInvalid(
      await rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 16] } }, f32x4),
      'header-entry',
      'w',
    );
    await expectInvalid(
      await rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [16, 0] } }, f32x4),
      'header-entry',
      'w',
    );
    await expectInvalid(await rawFile({ w: 3 }, f32x4), 'header-entry', 'w');
    await expectInvalid(await rawFile({ __metadata__: { format: 1 } }, f32x4), 'metadata');
  });

  it('accepts a valid hand-made file with __metadata__ and header padding', async () => {
    const file = await rawFile(undefined, new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer), {
      text:
        JSON.stringify({
          __metadata__: { format: 'pt' },
          w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
        }) + '   ',
    });
    const st = await SafetensorsFile.open(file);
    expect([...(await st.readFloats('w', 'F32'))]).toEqual([1, 2, 3, 4]);
    await st.close();
  });
});

describe('checkpoint folders: missing pieces', () => {
  it('a missing model folder is a NotFound naming the folder', async () => {
    const dir = fresh('nowhere');
    const error = await Checkpoint.open(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointNotFoundError);
    expect((error as Error).message).toContain(dir);
    expect((error as CheckpointNotFoundError).status).toBe('NOT_FOUND');
  });

  it('a folder with no safetensors', async () => {
    const dir = fresh('empty-folder');
    await mkdir(dir);
    await expect(Checkpoint.open(dir)).rejects.toThrow(
      /neither model.safetensors nor model.safetensors.index.json/,
    );
  });

  it('an index naming a tensor its shard lacks, and an index naming a missing shard', async () => {
    const out = fresh('bad-index');
    await writeCheckpoint(
      out,
      [
        { name: 'a', dtype: 'F32', shape: [40] },
        { name: 'b', dtype: 'F32', shape: [40] },
      ],
      new Map([
        ['a', iota(40)],
        ['b', iota(40)],
      ]),
      200,
    );
    const indexPath = path.join(out, 'model.safetensors.index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map: Record<string, string> };
    index.weight_map['ghost.weight'] = 'model-00001-of-00002.safetensors';
    await writeFile(indexPath, JSON.stringify(index));
    const e = await Checkpoint.open(out).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(InvalidCheckpointError);
    expect(e).toMatchObject({ rule: 'index-entry', tensor: 'ghost.weight', file: indexPath });
    delete index.weight_map['ghost.weight'];
    index.weight_map['b'] = 'model-00009-of-00009.safetensors';
    await writeFile(indexPath, JSON.stringify(index));
    const missing = await Checkpoint.open(out).catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(CheckpointNotFoundError);
    expect((missing as Error).message).toContain('model-00009-of-00009.safetensors');
    index.weight_map['b'] = '../elsewhere.safetensors';
    await writeFile(indexPath, JSON.stringify(index));
    await expect(Checkpoint.open(out)).rejects.toMatchObject({ rule: 'index-json' });
  });
});

describe('writer safety', () => {
  it('commit with a tensor incomplete fails and leaves no folder, temp removed', async () => {
    const parent = fresh('incomplete');
    const out = path.join(parent, 'out');
    const writer = await CheckpointWriter.create(out, [{ name: 'a', dtype: 'F32', shape: [4] }]);
    await writer.write('a', new Uint8Array(8));
    await expect(writer.write('a', new Uint8Array(12))).rejects.toThrow(CheckpointWriteError);
    await expect(writer.commit()).rejects.toThrow(/incomplete, first a \(8 of 16 bytes written\)/);
    expect(await readdir(parent)).toEqual([]);
    await expect(writer.write('a', new Uint8Array(8))).rejects.toThrow(/aborted/);
  });

  it('refuses a non-empty output folder unless told to keep or replace; an empty one is fine', async () => {
    const out = fresh('exists');
    await mkdir(out);
    const specs: TensorSpec[] = [{ name: 'a', dtype: 'F32', shape: [1] }];
    const first = await CheckpointWriter.create(out, specs); // empty folder: allowed
    await first.writeFloats('a', new Float32Array([1]));
    await first.commit();
    await expect(CheckpointWriter.create(out, specs)).rejects.toThrow(/already exists and is not empty/);
    const keep = await CheckpointWriter.create(out, specs, { ifExists: 'keep' });
    await keep.writeFloats('a', new Float32Array([2]));
    expect((await keep.commit()).alreadyExisted).toBe(true);
    const replace = await CheckpointWriter.create(out, specs, { ifExists: 'replace' });
    await replace.writeFloats('a', new Float32Array([3]));
    expect((await replace.commit()).alreadyExisted).toBe(false);
    const ckpt = await Checkpoint.open(out);
    expect([...(await ckpt.readFloats('a', 'F32'))]).toEqual([3]);
    await ckpt.close();
    expect((await readdir(path.dirname(out))).filter((n) => n.startsWith('.hm3-tmp-'))).toEqual([]);
  });

  it("accepts concurrent appends to several tensors, keeping each tensor's block order", async () => {
    const out = fresh('concurrent');
    const specs: TensorSpec[] = ['a', 'b', 'c'].map((name) => ({ name, dtype: 'F32', shape: [4, 1000] }));
    const writer = await CheckpointWriter.create(out, specs, { shardBytes: 20_000 });
    const block = (name: string, k: number): Float32Array =>
      new Float32Array(2000).fill(name.charCodeAt(0) * 10 + k);
    await Promise.all(
      specs.flatMap((s) => [
        writer.writeFloats(s.name, block(s.name, 0)),
        writer.writeFloats(s.name, block(s.name, 1)),
      ]),
    );
    await writer.commit();
    const ckpt = await Checkpoint.open(out);
    for (const s of specs) {
      const v = await ckpt.readFloats(s.name, 'F32');
      expect([v[0], v[1999], v[2000], v[3999]]).toEqual([
        s.name.charCodeAt(0) * 10,
        s.name.charCodeAt(0) * 10,
        s.name.charCodeAt(0) * 10 + 1,
        s.name.charCodeAt(0) * 10 + 1,
      ]);
    }
    await ckpt.close();
  });

  it('flushes shards in the background as they grow (fdatasync), and the result is the same', async () => {
    const out = fresh('early-sync');
    const specs: TensorSpec[] = ['a', 'b'].map((name) => ({ name, dtype: 'F32', shape: [8, 1000] }));
    const probe = await open(path.join(root, 'probe'), 'w');
    const handleProto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const datasync = vi.spyOn(handleProto, 'datasync');
    try {
      // 8 appends of 8 KB per shard, a sync due every 16 KB (one at a time per shard)
      const writer = await CheckpointWriter.create(out, specs, {
        shardBytes: 40_000,
        syncEveryBytes: 16_000,
      });
      for (let k = 0; k < 4; k++)
        await Promise.all(
          specs.map((s) => writer.writeFloats(s.name, new Float32Array(2000).fill(s.name.charCodeAt(0) + k))),
        );
      expect(datasync.mock.calls.length).toBeGreaterThanOrEqual(2); // one per shard at least
      await writer.commit();
      const ckpt = await Checkpoint.open(out);
      for (const s of specs) {
        const v = await ckpt.readFloats(s.name, 'F32');
        expect([v[0], v[2000], v[4000], v[7999]]).toEqual([0, 1, 2, 3].map((k) => s.name.charCodeAt(0) + k));
      }
      await ckpt.close();
      // an abort while a background sync may be running removes everything
      const aborted = fresh('early-sync-abort');
      const w2 = await CheckpointWriter.create(aborted, specs, { syncEveryBytes: 1 });
      await w2.writeFloats('a', new Float32Array(2000));
      await w2.abort();
      expect(await readdir(path.dirname(w2.tempDir))).not.toContain(path.basename(w2.tempDir));
    } finally {
      datasync.mockRestore();
    }
    await expect(CheckpointWriter.create(fresh('bad-sync'), specs, { syncEveryBytes: 0 })).rejects.toThrow(
      /syncEveryBytes/,
    );
  });

  it("works in a given temp root on the same volume (an artifact store's .tmp)", async () => {
    const store = fresh('store');
    const writer = await CheckpointWriter.create(
      path.join(store, 'abc123'),
      [{ name: 'a', dtype: 'F16', shape: [2] }],
      { tempRoot: path.join(store, '.tmp') },
    );
    expect(path.dirname(writer.tempDir)).toBe(path.join(store, '.tmp'));
    await writer.writeFloats('a', new Float64Array([0.5, -1]));
    await writer.commit();
    expect((await readdir(store)).sort()).toEqual(['.tmp', 'abc123']);
    expect(await readdir(path.join(store, '.tmp'))).toEqual([]);
    const ckpt = await Checkpoint.open(path.join(store, 'abc123'));
    expect([...(await ckpt.readFloats('a', 'F64'))]).toEqual([0.5, -1]);
    await ckpt.close();
  });

  it('rejects bad declarations', async () => {
    const out = fresh('decl');
    await expect(
      CheckpointWriter.create(out, [
        { name: 'a', dtype: 'F32', shape: [1] },
        { name: 'a', dtype: 'F32', shape: [1] },
      ]),
    ).rejects.toThrow(/declared twice/);
    await expect(
      CheckpointWriter.create(out, [{ name: 'a', dtype: 'X' as DType, shape: [1] }]),
    ).rejects.toThrow(/unknown dtype/);
    await expect(CheckpointWriter.create(out, [{ name: 'a', dtype: 'F32', shape: [1.5] }])).rejects.toThrow(
      /shape/,
    );
    await expect(CheckpointWriter.create(out, [], { shardBytes: 0 })).rejects.toThrow(/shard size/);
  });

  it('encodes headers padded with spaces to a multiple of 8', () => {
    const h = encodeSafetensorsHeader([{ name: 'abc', dtype: 'BF16', shape: [3] }], {});
    const n = Number(new DataView(h.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    expect(h.byteLength).toBe(8 + n);
    const text = Buffer.from(h.subarray(8)).toString('utf8');
    expect(JSON.parse(text)).toEqual({ abc: { dtype: 'BF16', shape: [3], data_offsets: [0, 6] } });
    expect(text.endsWith(' ') || text.endsWith('}')).toBe(true);
    expect(encodeFloats('BF16', new Float32Array([1])).byteLength).toBe(2);
  });
});
