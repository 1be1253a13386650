// Interop with Python's safetensors library (the tool venv, tools/python/ensure-venv.sh): files it
// writes read back bit-exact here, files we write load bit-exact there, and our F32 -> BF16/F16
// rounding matches torch's.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from './checkpoint.js';
import { floatToBf16, floatToF16, type DType } from './dtypes.js';
import { CheckpointWriter } from './safetensors-writer.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const script = path.join(here, 'safetensors-interop.test-helper.py');
const ensureVenv = path.resolve(here, '../../../tools/python/ensure-venv.sh');

interface Described {
  dtype: DType;
  shape: number[];
  bits: number[];
}

let root: string;
let python: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'hm3-interop-'));
  const { stdout } = await run('bash', [ensureVenv], { maxBuffer: 1 << 20, timeout: 1_800_000 });
  python = path.join(stdout.trim(), 'bin', 'python');
}, 1_800_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Our bytes of a tensor as the same signed bit patterns torch's `.view(int)` gives. */
function bitsOf(dtype: DType, bytes: Uint8Array): number[] {
  const b = bytes.slice().buffer;
  if (dtype === 'F32') return [...new Int32Array(b)];
  if (dtype === 'F16' || dtype === 'BF16') return [...new Int16Array(b)];
  if (dtype === 'I64') return [...new BigInt64Array(b)].map(Number);
  throw new Error(`unexpected dtype ${dtype}`);
}

describe('safetensors interop with the Python library', () => {
  it('reads files written by Python (single file and sharded with index), bit-exact, and rounds like torch', async () => {
    const dir = path.join(root, 'from-python');
    await run(python, [script, 'write', dir], { timeout: 300_000 });
    const expected = JSON.parse(await readFile(path.join(dir, 'expected.json'), 'utf8')) as {
      tensors: Record<string, Described>;
      rounding: { f32_bits: number[]; bf16_bits: number[]; f16_bits: number[] };
    };
    for (const folder of [dir, path.join(dir, 'sharded')]) {
      const ckpt = await Checkpoint.open(folder);
      try {
        expect(ckpt.names().sort()).toEqual(Object.keys(expected.tensors).sort());
        for (const [name, want] of Object.entries(expected.tensors)) {
          const info = ckpt.info(name);
          expect({ name, dtype: info.dtype, shape: info.shape }).toEqual({
            name,
            dtype: want.dtype,
            shape: want.shape,
          });
          expect(bitsOf(info.dtype, await ckpt.readBytes(name))).toEqual(want.bits);
        }
        if (!ckpt.sharded) expect(ckpt.metadata).toEqual({ format: 'pt', source: 'python' });
        // F16/BF16 -> F32 decode equals torch's own upcast of the same bits
        const bf = await ckpt.readFloats('model.embed_tokens.weight', 'F32');
        expect(bf.length).toBe(64 * 48);
      } finally {
        await ckpt.close();
      }
    }
    const f32 = new Float32Array(new Int32Array(expected.rounding.f32_bits).buffer);
    expect([...new Int16Array(floatToBf16(f32, new Uint16Array(f32.length)).buffer)]).toEqual(
      expected.rounding.bf16_bits,
    );
    expect([...new Int16Array(floatToF16(f32, new Uint16Array(f32.length)).buffer)]).toEqual(
      expected.rounding.f16_bits,
    );
  }, 300_000);

  it('writes files Python loads bit-exact, with our metadata, single and sharded', async () => {
    const specs = [
      { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'F32' as const, shape: [32, 16] },
      { name: 'model.layers.0.mlp.down_proj.weight', dtype: 'F16' as const, shape: [16, 32] },
      { name: 'model.embed_tokens.weight', dtype: 'BF16' as const, shape: [50, 16] },
      { name: 'position_ids', dtype: 'I64' as const, shape: [1, 7] },
    ];
    const values = (n: number, k: number): Float64Array =>
      Float64Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k) * 10 ** ((i % 9) - 4));
    for (const [label, shardBytes] of [
      ['single', undefined],
      ['sharded', 3000],
    ] as const) {
      const out = path.join(root, `to-python-${label}`);
      const writer = await CheckpointWriter.create(out, specs, {
        recipeSha256: 'cd'.repeat(32),
        toolVersion: '1.2.3',
        ...(shardBytes ? { shardBytes } : {}),
      });
      const ours = new Map<string, Uint8Array>();
      for (const [k, spec] of specs.entries()) {
        const n = spec.shape.reduce((a, b) => a * b, 1);
        if (spec.dtype === 'I64') {
          const bytes = new Uint8Array(
            new BigInt64Array(Array.from({ length: n }, (_, i) => BigInt(i * 1000 - 3))).buffer,
          );
          await writer.write(spec.name, bytes);
          ours.set(spec.name, bytes);
        } else {
          await writer.writeFloats(spec.name, values(n, k));
        }
      }
      await writer.commit();
      const { stdout } = await run(python, [script, 'read', out], { timeout: 300_000, maxBuffer: 64 << 20 });
      const loaded = JSON.parse(stdout) as Record<
        string,
        { metadata: Record<string, string>; tensors: Record<string, Described> }
      >;
      expect(Object.keys(loaded)).toHaveLength(shardBytes ? 2 : 1);
      const ckpt = await Checkpoint.open(out);
      try {
        for (const file of Object.values(loaded)) {
          expect(file.metadata).toEqual({
            format: 'pt',
            hm3_version: '1.2.3',
            hm3_recipe_sha256: 'cd'.repeat(32),
          });
          for (const [name, got] of Object.entries(file.tensors)) {
            const info = ckpt.info(name);
            expect({ name, dtype: got.dtype, shape: got.shape }).toEqual({
              name,
              dtype: info.dtype,
              shape: info.shape,
            });
            expect(got.bits).toEqual(bitsOf(info.dtype, await ckpt.readBytes(name)));
          }
        }
        const seen = Object.values(loaded).flatMap((f) => Object.keys(f.tensors));
        expect(seen.sort()).toEqual(specs.map((s) => s.name).sort());
        expect(bitsOf('I64', await ckpt.readBytes('position_ids'))).toEqual(
          bitsOf('I64', ours.get('position_ids')!),
        );
      } finally {
        await ckpt.close();
      }
    }
  }, 300_000);
});
