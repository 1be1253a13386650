/**
 * Export of an inference path as a standalone Hugging Face checkpoint folder, and the loader that
 * turns such a folder back into a path.
 *
 * The folder is the head source's model with its layers replaced by the path's: step i's layer is
 * copied (raw bytes, dtype kept) from its source as `model.layers.<i>.*`, config.json is the head
 * source's with num_hidden_layers = steps.length (per-layer lists such as layer_types follow the
 * steps), tokenizer and generation files come from the head source, and hm3-path.json records where
 * every layer came from (sources with the sha256 of their weight files). A path without affine maps
 * is then an ordinary Llama-family checkpoint that transformers loads as is. A path with affine maps
 * also gets hm3-affine.safetensors (`steps.<i>.scale` / `steps.<i>.shift`, F32 [hidden]) and a README
 * saying that only HM3's runtime applies them: `loadExportedPath(dir)` rebuilds the path for it.
 *
 * The folder is written by @hm3/tensor's CheckpointWriter: in a temporary folder beside `outDir`,
 * fsynced, then renamed into place, so a crash leaves nothing half-written under `outDir`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '@hm3/errors';
import {
  Checkpoint,
  CheckpointWriter,
  encodeSafetensorsHeader,
  INDEX_FILE_NAME,
  SafetensorsFile,
  type TensorSpec,
} from '@hm3/tensor';
import { parseModelConfig, readModelConfig, type LlamaArchitecture } from './config.js';
import { validatePath, type Affine, type InferencePath, type PathStep } from './inference-path.js';

/** Written beside the weights: where every layer of the folder came from. */
export const PATH_FILE_NAME = 'hm3-path.json';
/** The affine maps of an exported path (F32 tensors `steps.<i>.scale` and `steps.<i>.shift`). */
export const AFFINE_FILE_NAME = 'hm3-affine.safetensors';
const README_FILE_NAME = 'README.md';
const PATH_FORMAT = 'hm3-path';
const PATH_FORMAT_VERSION = 1;

/** Files copied from the head source when present (tokenizer, generation settings, chat template). */
const HEAD_SIDE_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
  'added_tokens.json',
  'generation_config.json',
  'chat_template.jinja',
  'chat_template.json',
] as const;

/** config.json lists with one entry per layer: step i takes entry layerIndex of its source's list. */
const PER_LAYER_CONFIG_KEYS = ['layer_types', 'no_rope_layers'] as const;

/** The architecture fields a layer's weights and numerics depend on: they must match the head source's. */
const LAYER_FIELDS = [
  'hiddenSize',
  'intermediateSize',
  'numHeads',
  'numKvHeads',
  'headDim',
  'rmsNormEps',
  'ropeTheta',
  'qkvBias',
  'oBias',
  'mlpBias',
  'slidingWindow',
] as const satisfies readonly (keyof LlamaArchitecture)[];

/** Tensors are copied in blocks of at most this many bytes (row blocks of larger tensors). */
const COPY_BLOCK_BYTES = 64 * 1024 * 1024;

const LAYER_TENSOR = /^model\.layers\.(\d+)\.(.+)$/;

export interface ExportPathOptions {
  /** Shard byte budget of the weights (default: @hm3/tensor's, 5 GB as Hugging Face's). */
  readonly shardBytes?: number;
  /** Folder for the temporary folder, on outDir's volume (an artifact store's `.tmp`); default: outDir's parent. */
  readonly tempRoot?: string;
}

export interface ExportedSourceFile {
  /** File name inside the source folder. */
  readonly name: string;
  readonly bytes: number;
  readonly sha256: string;
}

export interface ExportedSource {
  readonly poolIndex: number;
  /** The source folder (absolute). */
  readonly dir: string;
  /** Its weight files (shards, and the index when sharded). */
  readonly files: readonly ExportedSourceFile[];
}

export interface ExportReport {
  readonly outDir: string;
  /** File names written into outDir. */
  readonly files: readonly string[];
  /** Bytes written in all, every file of the folder. */
  readonly bytes: number;
  /** Tensor data bytes of the weights (without headers, extra files). */
  readonly tensorBytes: number;
  readonly numLayers: number;
  /** Steps with an affine map (0: a standalone checkpoint transformers runs as is). */
  readonly affineSteps: number;
  /** True when the folder has no affine map, so any Llama-family runtime gives the path's results. */
  readonly standalone: boolean;
  readonly sources: readonly ExportedSource[];
}

/** hm3-path.json. */
export interface ExportedPathFile {
  readonly format: typeof PATH_FORMAT;
  readonly version: typeof PATH_FORMAT_VERSION;
  readonly standalone: boolean;
  readonly headSource: number;
  readonly numLayers: number;
  readonly sources: readonly ExportedSource[];
  readonly steps: readonly {
    readonly layer: number;
    readonly poolIndex: number;
    readonly layerIndex: number;
    readonly affine: boolean;
  }[];
  readonly affineFile: string | null;
}

/** The output folder already exists and holds something. */
export class ExportTargetExistsError extends FailedPreconditionError {
  readonly path: string;
  constructor(dir: string) {
    super(`export folder ${dir} already exists and is not empty`, { path: dir });
    this.path = dir;
  }
}

/** A path whose layers one config.json cannot describe (a step's layer differs from the head source's). */
export class UnexportablePathError extends InvalidArgumentError {
  readonly step: number;
  readonly field: string;
  constructor(step: number, field: string, message: string, details: Record<string, unknown> = {}) {
    super(`cannot export the path as one checkpoint (step ${step}, ${field}): ${message}`, {
      step,
      field,
      ...details,
    });
    this.step = step;
    this.field = field;
  }
}

/** An exported folder whose hm3-path.json or hm3-affine.safetensors is malformed. */
export class InvalidExportedPathError extends InvalidArgumentError {
  readonly file: string;
  readonly field: string;
  constructor(file: string, field: string, reason: string) {
    super(`${file}: ${field} ${reason}`, { file, field });
    this.file = file;
    this.field = field;
  }
}

/**
 * Writes `path` as a checkpoint folder at `outDir` (see the module comment). Refuses a non-empty
 * `outDir` (ExportTargetExistsError), an invalid path (InvalidPathError) and a path mixing layers of
 * different shapes or numerics (UnexportablePathError).
 */
export async function exportPathCheckpoint(
  inferencePath: InferencePath,
  outDir: string,
  options: ExportPathOptions = {},
): Promise<ExportReport> {
  const out = path.resolve(outDir);
  if (await isNonEmptyDir(out)) throw new ExportTargetExistsError(out);

  const pool = inferencePath.pool.map((d) => path.resolve(d));
  const archs = await Promise.all(pool.map((d) => readModelConfig(d)));
  const head = validatePath(inferencePath, archs);
  const headArch = archs[head]!;
  inferencePath.steps.forEach((s, i) => checkLayerFits(i, s, archs[s.poolIndex]!, headArch, pool));

  const used = [...new Set([head, ...inferencePath.steps.map((s) => s.poolIndex)])].sort((a, b) => a - b);
  const checkpoints = new Map<number, Checkpoint>();
  let writer: CheckpointWriter | undefined;
  try {
    for (const i of used) checkpoints.set(i, await Checkpoint.open(pool[i]!));
    const plan = copyPlan(inferencePath.steps, head, checkpoints);
    const sources = await Promise.all(used.map((i) => describeSource(i, pool[i]!, checkpoints.get(i)!)));
    const headConfig = JSON.parse(await readFile(path.join(pool[head]!, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const config = await exportedConfig(headConfig, inferencePath.steps, pool);
    parseModelConfig(config, path.join(out, 'config.json')); // the folder must stay loadable

    writer = await CheckpointWriter.create(
      out,
      plan.map((p) => p.spec),
      { shardBytes: options.shardBytes, tempRoot: options.tempRoot, metadata: { hm3_export: PATH_FORMAT } },
    );
    for (const p of plan) await copyTensor(checkpoints.get(p.poolIndex)!, p.from, writer, p.spec.name);

    await writer.writeFile('config.json', JSON.stringify(config, null, 2) + '\n');
    for (const name of HEAD_SIDE_FILES) {
      const data = await readOptional(path.join(pool[head]!, name));
      if (data !== undefined) await writer.writeFile(name, data);
    }
    const affineSteps = inferencePath.steps.filter((s) => s.affine !== undefined).length;
    const standalone = affineSteps === 0;
    const pathFile: ExportedPathFile = {
      format: PATH_FORMAT,
      version: PATH_FORMAT_VERSION,
      standalone,
      headSource: head,
      numLayers: inferencePath.steps.length,
      sources,
      steps: inferencePath.steps.map((s, layer) => ({
        layer,
        poolIndex: s.poolIndex,
        layerIndex: s.layerIndex,
        affine: s.affine !== undefined,
      })),
      affineFile: standalone ? null : AFFINE_FILE_NAME,
    };
    await writer.writeFile(PATH_FILE_NAME, JSON.stringify(pathFile, null, 2) + '\n');
    if (!standalone) {
      await writer.writeFile(AFFINE_FILE_NAME, encodeAffineFile(inferencePath.steps));
      await writer.writeFile(README_FILE_NAME, affineReadme(pathFile, pool));
    }
    const committed = await writer.commit();
    let bytes = 0;
    for (const f of committed.files) bytes += (await stat(path.join(out, f))).size;
    return {
      outDir: out,
      files: committed.files,
      bytes,
      tensorBytes: committed.totalBytes,
      numLayers: inferencePath.steps.length,
      affineSteps,
      standalone,
      sources,
    };
  } catch (error) {
    await writer?.abort();
    throw error;
  } finally {
    await Promise.all([...checkpoints.values()].map((c) => c.close()));
  }
}

/**
 * The inference path of an exported folder: its own layers in order, with the affine maps of
 * hm3-affine.safetensors (when present) before their steps, embedding and head from the folder itself.
 * A plain HF folder (no hm3 files) gives its own path.
 */
export async function loadExportedPath(dir: string): Promise<InferencePath> {
  const folder = path.resolve(dir);
  const arch = await readModelConfig(folder);
  const pathFile = path.join(folder, PATH_FILE_NAME);
  const recorded = await readOptional(pathFile);
  let affineName: string | null = null;
  if (recorded !== undefined) {
    const json = parsePathFile(pathFile, recorded.toString('utf8'));
    if (json.numLayers !== arch.numLayers)
      throw new InvalidExportedPathError(
        pathFile,
        'numLayers',
        `is ${json.numLayers} but config.json has num_hidden_layers ${arch.numLayers}`,
      );
    affineName = json.affineFile;
  }
  const affines =
    affineName === null
      ? new Map<number, Affine>()
      : await readAffineFile(path.join(folder, affineName), arch);
  return {
    pool: [folder],
    steps: Array.from({ length: arch.numLayers }, (_, layerIndex) => ({
      poolIndex: 0,
      layerIndex,
      ...(affines.has(layerIndex) ? { affine: affines.get(layerIndex) } : {}),
    })),
    headSource: 0,
  };
}

function checkLayerFits(
  step: number,
  s: PathStep,
  arch: LlamaArchitecture,
  headArch: LlamaArchitecture,
  pool: readonly string[],
): void {
  for (const field of LAYER_FIELDS) {
    if (arch[field] !== headArch[field]) {
      throw new UnexportablePathError(
        step,
        field,
        `layer ${s.layerIndex} of ${pool[s.poolIndex]} has ${field} ${String(arch[field])}, the head source's config has ${String(headArch[field])}`,
        { model: pool[s.poolIndex], layerIndex: s.layerIndex, value: arch[field], expected: headArch[field] },
      );
    }
  }
}

interface CopyItem {
  readonly spec: TensorSpec;
  readonly poolIndex: number;
  readonly from: string;
}

/** Every tensor of the folder: the head source's embedding, the steps' layers renumbered, then the rest of the head. */
function copyPlan(
  steps: readonly PathStep[],
  head: number,
  checkpoints: ReadonlyMap<number, Checkpoint>,
): CopyItem[] {
  const headCkpt = checkpoints.get(head)!;
  const item = (poolIndex: number, from: string, name: string): CopyItem => {
    const info = checkpoints.get(poolIndex)!.info(from);
    return { spec: { name, dtype: info.dtype, shape: info.shape }, poolIndex, from };
  };
  const nonLayer = headCkpt.names().filter((n) => !LAYER_TENSOR.test(n));
  const first = nonLayer.filter((n) => n.startsWith('model.embed_tokens.'));
  const rest = nonLayer.filter((n) => !n.startsWith('model.embed_tokens.'));
  const layers = steps.flatMap((s, i) => {
    const names = checkpoints
      .get(s.poolIndex)!
      .names()
      .filter((n) => LAYER_TENSOR.exec(n)?.[1] === String(s.layerIndex));
    if (names.length === 0) {
      throw new UnexportablePathError(
        i,
        'layerIndex',
        `the checkpoint of ${checkpoints.get(s.poolIndex)!.dir} holds no tensor model.layers.${s.layerIndex}.*`,
      );
    }
    return names.map((n) => item(s.poolIndex, n, `model.layers.${i}.${LAYER_TENSOR.exec(n)![2]!}`));
  });
  return [...first.map((n) => item(head, n, n)), ...layers, ...rest.map((n) => item(head, n, n))];
}

/** Copies tensor `from` as `to`, raw bytes, in row blocks of at most COPY_BLOCK_BYTES. */
async function copyTensor(
  source: Checkpoint,
  from: string,
  writer: CheckpointWriter,
  to: string,
): Promise<void> {
  const info = source.info(from);
  const rows = info.shape[0] ?? 1;
  if (info.byteLength <= COPY_BLOCK_BYTES || info.shape.length < 2 || rows <= 1) {
    await writer.write(to, await source.readBytes(from));
    return;
  }
  const rowBytes = info.byteLength / rows;
  const block = Math.max(1, Math.floor(COPY_BLOCK_BYTES / rowBytes));
  for (let r = 0; r < rows; r += block) {
    await writer.write(to, await source.readRowBytes(from, r, Math.min(rows, r + block)));
  }
}

/** The head source's config with num_hidden_layers = steps.length and per-layer lists following the steps. */
async function exportedConfig(
  headConfig: Record<string, unknown>,
  steps: readonly PathStep[],
  pool: readonly string[],
): Promise<Record<string, unknown>> {
  const config: Record<string, unknown> = { ...headConfig, num_hidden_layers: steps.length };
  const keys = PER_LAYER_CONFIG_KEYS.filter((k) => Array.isArray(headConfig[k]));
  if (keys.length === 0) return config;
  const configs = await Promise.all(
    pool.map(
      async (d) => JSON.parse(await readFile(path.join(d, 'config.json'), 'utf8')) as Record<string, unknown>,
    ),
  );
  for (const key of keys) {
    config[key] = steps.map((s, i) => {
      const list = configs[s.poolIndex]![key];
      if (!Array.isArray(list) || s.layerIndex >= list.length) {
        throw new UnexportablePathError(
          i,
          key,
          `the head source's config.json lists ${key} per layer, ${pool[s.poolIndex]}'s has no entry for layer ${s.layerIndex}`,
        );
      }
      return list[s.layerIndex] as unknown;
    });
  }
  return config;
}

async function describeSource(
  poolIndex: number,
  dir: string,
  checkpoint: Checkpoint,
): Promise<ExportedSource> {
  const files = [...checkpoint.files()];
  if (checkpoint.sharded) files.push(path.join(dir, INDEX_FILE_NAME));
  const described = await Promise.all(
    files.sort().map(async (f) => ({
      name: path.relative(dir, f),
      bytes: (await stat(f)).size,
      sha256: await sha256File(f),
    })),
  );
  return { poolIndex, dir, files: described };
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** hm3-affine.safetensors: `steps.<i>.scale` and `steps.<i>.shift`, F32 [hidden], for each affine step. */
function encodeAffineFile(steps: readonly PathStep[]): Uint8Array {
  const specs: TensorSpec[] = [];
  const data: Float32Array[] = [];
  steps.forEach((s, i) => {
    if (!s.affine) return;
    for (const [part, values] of [
      ['scale', s.affine.scale],
      ['shift', s.affine.shift],
    ] as const) {
      specs.push({ name: `steps.${i}.${part}`, dtype: 'F32', shape: [values.length] });
      data.push(Float32Array.from(values));
    }
  });
  const header = encodeSafetensorsHeader(specs, { format: 'pt', hm3_export: PATH_FORMAT });
  const size = data.reduce((n, d) => n + d.byteLength, 0);
  const out = new Uint8Array(header.byteLength + size);
  out.set(header, 0);
  let offset = header.byteLength;
  for (const d of data) {
    // little-endian on every platform Node runs on; DataView keeps it explicit
    const view = new DataView(out.buffer, offset, d.byteLength);
    d.forEach((x, j) => view.setFloat32(j * 4, x, true));
    offset += d.byteLength;
  }
  return out;
}

async function readAffineFile(
  file: string,
  arch: LlamaArchitecture,
): Promise<Map<number, { scale: Float32Array; shift: Float32Array }>> {
  const st = await SafetensorsFile.open(file);
  try {
    const parts = new Map<number, { scale?: Float32Array; shift?: Float32Array }>();
    for (const info of st.tensors) {
      const m = /^steps\.(\d+)\.(scale|shift)$/.exec(info.name);
      if (!m)
        throw new InvalidExportedPathError(file, info.name, 'is not steps.<i>.scale or steps.<i>.shift');
      const step = Number(m[1]);
      if (step >= arch.numLayers)
        throw new InvalidExportedPathError(file, info.name, `names a step outside [0, ${arch.numLayers})`);
      if (info.dtype !== 'F32' || info.shape.length !== 1 || info.shape[0] !== arch.hiddenSize)
        throw new InvalidExportedPathError(
          file,
          info.name,
          `must be F32 [${arch.hiddenSize}], got ${info.dtype} [${info.shape.join(', ')}]`,
        );
      const entry = parts.get(step) ?? {};
      entry[m[2] as 'scale' | 'shift'] = await st.readFloats(info.name, 'F32');
      parts.set(step, entry);
    }
    const out = new Map<number, { scale: Float32Array; shift: Float32Array }>();
    for (const [step, { scale, shift }] of parts) {
      if (!scale || !shift)
        throw new InvalidExportedPathError(file, `steps.${step}`, 'needs both scale and shift');
      out.set(step, { scale, shift });
    }
    return out;
  } finally {
    await st.close();
  }
}

function parsePathFile(file: string, text: string): ExportedPathFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidExportedPathError(file, '(root)', `is not valid JSON: ${(error as Error).message}`);
  }
  const j = json as Partial<ExportedPathFile> | null;
  if (typeof j !== 'object' || j === null || j.format !== PATH_FORMAT)
    throw new InvalidExportedPathError(file, 'format', `must be "${PATH_FORMAT}"`);
  if (j.version !== PATH_FORMAT_VERSION)
    throw new InvalidExportedPathError(
      file,
      'version',
      `is ${String(j.version)}; this runtime reads ${PATH_FORMAT_VERSION}`,
    );
  if (typeof j.numLayers !== 'number' || !Number.isInteger(j.numLayers))
    throw new InvalidExportedPathError(file, 'numLayers', 'must be an integer');
  if (j.affineFile !== null && j.affineFile !== AFFINE_FILE_NAME)
    throw new InvalidExportedPathError(file, 'affineFile', `must be null or "${AFFINE_FILE_NAME}"`);
  return j as ExportedPathFile;
}

function affineReadme(p: ExportedPathFile, pool: readonly string[]): string {
  const affine = p.steps.filter((s) => s.affine).map((s) => s.layer);
  return [
    '# HM3 inference path (with affine maps)',
    '',
    `This folder is an HM3 inference path of ${p.numLayers} layers exported as a Llama-family checkpoint.`,
    `Before layer${affine.length === 1 ? '' : 's'} ${affine.join(', ')} the path applies an affine map to the hidden state`,
    `(h = scale * h + shift), stored in \`${AFFINE_FILE_NAME}\` as \`steps.<layer>.scale\` / \`steps.<layer>.shift\` (F32).`,
    '',
    "**Only HM3's runtime applies these maps.** transformers (or any other runtime) loads the folder but",
    'skips them and gives different results. To run it with HM3:',
    '',
    '```ts',
    "import { ModelRuntime, loadExportedPath } from '@hm3/model';",
    'const model = await new ModelRuntime().path(await loadExportedPath(dir));',
    '```',
    '',
    `Where each layer came from: \`${PATH_FILE_NAME}\` (sources with the sha256 of their weight files).`,
    '',
    '| layer | source | source layer | affine |',
    '| --- | --- | --- | --- |',
    ...p.steps.map(
      (s) =>
        `| ${s.layer} | ${path.basename(pool[s.poolIndex]!)} | ${s.layerIndex} | ${s.affine ? 'yes' : ''} |`,
    ),
    '',
  ].join('\n');
}

async function readOptional(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function isNonEmptyDir(dir: string): Promise<boolean> {
  try {
    if (!(await stat(dir)).isDirectory()) return true; // a file in the way counts as occupied
    return (await readdir(dir)).length > 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
