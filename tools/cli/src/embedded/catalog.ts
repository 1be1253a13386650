/**
 * The model catalog of the embedded search: reads a folder's config.json (architecture, layers,
 * width), hashes its weight files (content ids), and computes the path policy's per-layer weight
 * features from the runtime's weight store (read once, shared with evaluation).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { FailedPreconditionError, NotFoundError } from '@hm3/errors';
import type { ModelRuntime } from '@hm3/model';
import { layerWeightFeatures } from '@hm3/rl';
import type { ModelCatalogPort, ModelInfo, ModelRef } from '@hm3/search';
import { resolveModelUri, type Locations } from './locations.js';

async function sha256Of(files: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(path.basename(file));
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

export class LocalModelCatalog implements ModelCatalogPort {
  private readonly cache = new Map<string, Promise<ModelInfo>>();

  constructor(
    private readonly where: Locations,
    /** Gives the runtime whose weight store serves layer features (optional: no features without it). */
    private readonly runtime?: () => ModelRuntime,
  ) {}

  describe(ref: ModelRef, field: string): Promise<ModelInfo> {
    const dir = resolveModelUri(ref.uri, this.where, field);
    let entry = this.cache.get(dir);
    if (!entry) {
      entry = this.read(ref, dir, field);
      entry.catch(() => this.cache.delete(dir));
      this.cache.set(dir, entry);
    }
    return entry;
  }

  private async read(ref: ModelRef, dir: string, field: string): Promise<ModelInfo> {
    const label = ref.uri || ref.modelId;
    const exists = await stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!exists)
      throw new NotFoundError(`${field}: no model folder at ${label} (${dir})`, { field, uri: label });
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    } catch (cause) {
      throw new NotFoundError(
        `${field}: ${label} has no readable config.json`,
        { field, uri: label, file: path.join(dir, 'config.json') },
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
        `${field}: ${label}'s config.json gives no layer count or hidden size`,
        { field },
      );
    const weights = (await readdir(dir))
      .filter((f) => f.endsWith('.safetensors'))
      .sort()
      .map((f) => path.join(dir, f));
    if (weights.length === 0)
      throw new NotFoundError(`${field}: ${label} has no .safetensors weights`, { field, uri: label });
    const info: ModelInfo = {
      ref,
      uri: dir,
      sha256: await sha256Of(weights),
      architecture,
      numLayers,
      hiddenSize,
    };
    const runtime = this.runtime?.();
    if (
      !runtime ||
      (architecture !== 'LlamaForCausalLM' &&
        architecture !== 'MistralForCausalLM' &&
        architecture !== 'Qwen2ForCausalLM')
    )
      return info;
    const layerFeatures: number[][] = [];
    for (let l = 0; l < numLayers; l++) {
      const tensors = await runtime.weights.layer(dir, l);
      layerFeatures.push(layerWeightFeatures(Object.values(tensors).map((t) => t.data as Float32Array)));
    }
    return { ...info, layerFeatures };
  }
}
