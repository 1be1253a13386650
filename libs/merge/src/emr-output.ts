/**
 * EMR-Merging's output layout: the executor writes the shared model (theta_base + tau_uni) as the HF
 * folder, and per task `tasks/<task>/masks.bin` (the 1-bit masks M_t of every merged tensor, one bit
 * per element, LSB first, tensors back to back in plan order) with `tasks/<task>/task.json` (the
 * rescaler lambda_t and each tensor's bit offset), plus `emr.json` listing the tasks and the base.
 * materializeEmrTask turns one task back into a plain HF folder: theta_base + lambda_t M_t tau_uni,
 * tau_uni = shared - base.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { NotFoundError } from '@hm3/errors';
import { Checkpoint, CheckpointWriter, type CommitResult, type FloatArray } from '@hm3/tensor';
import { emrTaskModulator, unifiedTaskVector } from './methods/emr.js';
import { TOKENIZER_FILES } from './side-files.js';
import type { MergePlan } from './plan.js';
import type { ModelRef } from './recipe.js';

export const EMR_MANIFEST = 'emr.json';

export interface EmrTaskManifest {
  /** The task's name (its folder under tasks/). */
  readonly task: string;
  /** The model it was fine-tuned as (recipe reference). */
  readonly model: string;
  /** lambda_t = sum |delta_t| / sum |M_t * tau_uni| over the whole model (1 when the latter is 0). */
  readonly lambda: number;
  /** Bytes of masks.bin, and of the task's tensors at fp16 (masks are 1/16 of that, rounded up to a byte). */
  readonly maskBytes: number;
  readonly fp16Bytes: number;
  readonly tensors: readonly {
    readonly name: string;
    readonly bitOffset: number;
    readonly elements: number;
  }[];
}

export interface EmrManifest {
  readonly method: 'emr';
  /** The base model's folder (materialising a task reads it). */
  readonly baseDir: string;
  readonly tasks: readonly { readonly task: string; readonly model: string; readonly maskBytes: number }[];
}

/** The folder name of a task: its model reference with every character outside [A-Za-z0-9._-] as '_'. */
export function emrTaskName(ref: ModelRef): string {
  return ref.uri.replace(/^\.\//, '').replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** The masks and rescaler sums of every task, filled block by block while the executor merges. */
export class EmrTaskCollector {
  private readonly bits: Uint8Array[];
  private readonly deltaAbs: number[];
  private readonly maskedAbs: number[];
  private readonly offsets = new Map<string, number>();
  private readonly names: string[];
  private readonly models: string[];
  private readonly totalBits: number;

  constructor(private readonly plan: MergePlan) {
    let bit = 0;
    for (const t of plan.tensors) {
      if (t.kind !== 'merge') continue;
      this.offsets.set(t.name, bit);
      bit += t.rows * t.rowElements || 1;
    }
    this.totalBits = bit;
    const first = plan.tensors.find((t) => t.kind === 'merge');
    const byKey = new Map(plan.models.map((m) => [m.key, m.ref]));
    this.models = (first?.models ?? []).map((m) => m.id);
    this.names = this.models.map((id) => emrTaskName(byKey.get(id) ?? { uri: id, modelId: '' }));
    this.bits = this.models.map(() => new Uint8Array(Math.ceil(bit / 8)));
    this.deltaAbs = this.models.map(() => 0);
    this.maskedAbs = this.models.map(() => 0);
  }

  /** One block of tensor `name`: its inputs from element `elementOffset` on. */
  add(name: string, base: FloatArray, models: readonly FloatArray[], elementOffset: number): void {
    const start = this.offsets.get(name);
    if (start === undefined) return;
    const unified = unifiedTaskVector(base, models);
    models.forEach((x, k) => {
      const r = emrTaskModulator(base, x, unified, this.bits[k]!, start + elementOffset);
      this.deltaAbs[k]! += r.deltaAbs;
      this.maskedAbs[k]! += r.maskedAbs;
    });
  }

  /** Writes tasks/<task>/masks.bin + task.json and emr.json into the output being written. */
  async write(writer: CheckpointWriter): Promise<EmrManifest> {
    const tensors = this.plan.tensors
      .filter((t) => t.kind === 'merge')
      .map((t) => ({
        name: t.name,
        bitOffset: this.offsets.get(t.name)!,
        elements: t.rows * t.rowElements || 1,
      }));
    const tasks = [];
    for (let k = 0; k < this.models.length; k++) {
      const bytes = this.bits[k]!;
      const manifest: EmrTaskManifest = {
        task: this.names[k]!,
        model: this.models[k]!,
        lambda: this.maskedAbs[k]! > 0 ? this.deltaAbs[k]! / this.maskedAbs[k]! : 1,
        maskBytes: bytes.byteLength,
        fp16Bytes: this.totalBits * 2,
        tensors,
      };
      await writer.writeFile(`tasks/${manifest.task}/masks.bin`, bytes);
      await writer.writeFile(`tasks/${manifest.task}/task.json`, JSON.stringify(manifest, null, 2) + '\n');
      tasks.push({ task: manifest.task, model: manifest.model, maskBytes: manifest.maskBytes });
    }
    const baseDir = this.plan.tensors.find((t) => t.base !== null)?.base?.dir ?? this.plan.reference.dir;
    const manifest: EmrManifest = { method: 'emr', baseDir, tasks };
    await writer.writeFile(EMR_MANIFEST, JSON.stringify(manifest, null, 2) + '\n');
    return manifest;
  }
}

async function readJson<T>(file: string, what: string): Promise<T> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotFoundError(`${file}: no ${what} (is this the output of an emr merge?)`, { file });
    throw error;
  }
}

/** Files of the shared model copied into a materialised task: its config plus the executor's side files. */
const SIDE_FILES = ['config.json', ...TOKENIZER_FILES];

/**
 * Materialises task `task` of the emr output `emrDir` as a plain HF folder `outDir`:
 * theta_base + lambda_t * M_t * (shared - theta_base) per merged tensor, in the shared model's dtypes.
 * `baseDir` overrides the base folder recorded in emr.json.
 */
export async function materializeEmrTask(
  emrDir: string,
  task: string,
  outDir: string,
  options: { baseDir?: string } = {},
): Promise<CommitResult> {
  const manifest = await readJson<EmrManifest>(path.join(emrDir, EMR_MANIFEST), EMR_MANIFEST);
  const entry = manifest.tasks.find((t) => t.task === task || t.model === task);
  if (entry === undefined) {
    throw new NotFoundError(
      `${emrDir}: no task "${task}" (tasks: ${manifest.tasks.map((t) => t.task).join(', ')})`,
      { task, file: path.join(emrDir, EMR_MANIFEST) },
    );
  }
  const taskDir = path.join(emrDir, 'tasks', entry.task);
  const info = await readJson<EmrTaskManifest>(path.join(taskDir, 'task.json'), 'task.json');
  const bits = new Uint8Array(await readFile(path.join(taskDir, 'masks.bin')));
  const offsets = new Map(info.tensors.map((t) => [t.name, t.bitOffset]));
  const shared = await Checkpoint.open(emrDir);
  const base = await Checkpoint.open(options.baseDir ?? manifest.baseDir);
  let writer: CheckpointWriter | undefined;
  try {
    writer = await CheckpointWriter.create(
      outDir,
      shared.tensors().map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
      { metadata: { hm3_emr_task: entry.task } },
    );
    for (const t of shared.tensors()) {
      const offset = offsets.get(t.name);
      if (offset === undefined) {
        await writer.write(t.name, await shared.readBytes(t.name));
        continue;
      }
      const s = await shared.readFloats(t.name, 'F64');
      const rows = t.shape.length > 0 ? t.shape[0]! : 1;
      const b = await base.readFloats(t.name, 'F64', t.shape.length > 0 ? { rows: [0, rows] } : {});
      const out = new Float64Array(s.length);
      for (let i = 0; i < s.length; i++) {
        const bit = offset + i;
        const m = (bits[bit >>> 3]! >>> (bit & 7)) & 1;
        out[i] = b[i]! + (m === 1 ? info.lambda * (s[i]! - b[i]!) : 0);
      }
      await writer.writeFloats(t.name, out);
    }
    for (const file of SIDE_FILES) {
      const from = path.join(emrDir, file);
      if (
        await stat(from)
          .then((st) => st.isFile())
          .catch(() => false)
      )
        await writer.writeFile(file, await readFile(from));
    }
    return await writer.commit();
  } catch (error) {
    await writer?.abort();
    throw error;
  } finally {
    await shared.close();
    await base.close();
  }
}
