/**
 * Test fixtures: tiny random Llama-family checkpoints made once per machine by
 * tools/conformance/model/model_conformance.py (transformers, saved bf16 with a char-level
 * tokenizer.json), and reference results from transformers through the tool venv.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const script = path.join(repo, 'tools/conformance/model/model_conformance.py');

/** The tool venv's python (created on first use: minutes). */
export function python(): string {
  return path.join(
    execFileSync(path.join(repo, 'tools/python/ensure-venv.sh'), { encoding: 'utf8' }).trim(),
    'bin/python',
  );
}

export interface RandomModels {
  readonly base: string;
  readonly translate: string;
  readonly math: string;
  readonly code: string;
  /** hidden size 32 (the others: 64) */
  readonly narrow: string;
}

/** The four random models (made once per version of the script, in the OS temp folder). */
export async function randomModels(): Promise<RandomModels> {
  const hash = createHash('sha256').update(readFileSync(script)).digest('hex').slice(0, 12);
  const root = path.join(os.tmpdir(), `hm3-model-fixtures-${hash}`);
  const models = {
    base: `${root}/base`,
    translate: `${root}/translate`,
    math: `${root}/math`,
    code: `${root}/code`,
    narrow: `${root}/narrow`,
  };
  if (existsSync(path.join(root, 'narrow/model.safetensors'))) return models;
  const work = await mkdtemp(path.join(os.tmpdir(), 'hm3-model-fixtures-tmp-'));
  await run(python(), [script, 'make', '--out', work], { maxBuffer: 1 << 24 });
  try {
    await rename(work, root);
  } catch {
    await rm(work, { recursive: true, force: true }); // a concurrent run won the rename: same content
  }
  return models;
}

export interface ReferenceSpec {
  readonly models?: readonly string[];
  readonly prompts: readonly (readonly number[])[];
  readonly max_new_tokens?: number;
  /** Also return each model's logits computed in float64 (`logits64`). */
  readonly float64_logits?: boolean;
  readonly paths?: readonly {
    pool: readonly string[];
    steps: readonly {
      pool_index: number;
      layer_index: number;
      affine?: { scale: number[]; shift: number[] };
    }[];
    head_source?: number;
  }[];
  readonly texts?: readonly string[];
  readonly tokenizers?: readonly string[];
}

export interface ReferenceResult {
  models: { logits: number[][][]; generations: number[][]; logits64?: number[][][] }[];
  paths: { logits: number[][][] }[];
  encodings: Record<string, { ids: number[][]; decoded: string[] }>;
}

/** transformers' (PyTorch fp32) results for `spec`. */
export async function reference(spec: ReferenceSpec): Promise<ReferenceResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hm3-model-ref-'));
  try {
    await writeFile(path.join(dir, 'spec.json'), JSON.stringify({ max_new_tokens: 0, ...spec }));
    await run(python(), [script, 'reference', path.join(dir, 'spec.json'), path.join(dir, 'out.json')], {
      maxBuffer: 1 << 24,
    });
    return JSON.parse(await readFile(path.join(dir, 'out.json'), 'utf8')) as ReferenceResult;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Max |a - b| over a [S, V] logits block and its nested-array reference. */
export function maxAbsDiff(ours: Float32Array, theirs: readonly (readonly number[])[]): number {
  let max = 0;
  const v = theirs[0]!.length;
  if (ours.length !== theirs.length * v) return Infinity;
  theirs.forEach((row, s) => row.forEach((x, k) => (max = Math.max(max, Math.abs(ours[s * v + k]! - x)))));
  return max;
}

/** A seeded prompt generator (mulberry32) over token ids [4, vocab). */
export function seededPrompts(
  count: number,
  vocab: number,
  seed: number,
  minLength = 3,
  maxLength = 24,
): number[][] {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: count }, () =>
    Array.from(
      { length: minLength + Math.floor(next() * (maxLength - minLength + 1)) },
      () => 4 + Math.floor(next() * (vocab - 4)),
    ),
  );
}

/** The fixture zoo's four models when the zoo has been trained (tools/fixtures/zoo, or $HM3_ZOO_DIR), else undefined. */
export function zooModels(): RandomModels | undefined {
  const root = process.env['HM3_ZOO_DIR'] ?? path.join(repo, 'tools/fixtures/zoo');
  const models = {
    base: `${root}/base`,
    translate: `${root}/expert-translate`,
    math: `${root}/expert-math`,
    code: `${root}/expert-code`,
  };
  return Object.values(models).every((d) => existsSync(path.join(d, 'config.json')))
    ? { ...models, narrow: '' }
    : undefined;
}
