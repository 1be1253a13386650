/**
 * The layer pool of the architecture-level MDP: K experts plus the merged model, each with L_m layers.
 * An action is (pool index m, layer index l). Layer-weight features (norms) are computed once per layer
 * and standardised across the pool.
 */
import { InvalidArgumentError } from '@hm3/errors';

export interface PoolModel {
  /** Registry id or uri of the model; only for display and errors. */
  readonly id: string;
  readonly layers: number;
  /** Hidden size; consecutive path steps must match. Default 0 (all compatible). */
  readonly hiddenSize?: number;
  /** Per layer, a raw feature vector (e.g. from layerWeightFeatures); same length for every layer of the pool. */
  readonly layerFeatures?: readonly (readonly number[])[];
}

export interface PathStep {
  readonly poolIndex: number;
  readonly layerIndex: number;
}

/** Cheap statistics of one layer's weight tensors: log(1 + Frobenius norm), log(1 + mean |w|), log(1 + max |w|). */
export function layerWeightFeatures(tensors: readonly ArrayLike<number>[]): number[] {
  let sq = 0;
  let abs = 0;
  let max = 0;
  let n = 0;
  for (const t of tensors) {
    for (let i = 0; i < t.length; i++) {
      const v = t[i] as number;
      if (!Number.isFinite(v))
        throw new InvalidArgumentError('layer weight is not finite', { field: 'layerWeights', index: i });
      sq += v * v;
      abs += Math.abs(v);
      if (Math.abs(v) > max) max = Math.abs(v);
    }
    n += t.length;
  }
  if (n === 0)
    throw new InvalidArgumentError('a layer without weights has no features', { field: 'layerWeights' });
  return [Math.log1p(Math.sqrt(sq)), Math.log1p(abs / n), Math.log1p(max)];
}

export class LayerPool {
  readonly models: readonly PoolModel[];
  /** Number of actions A = sum_m L_m. */
  readonly size: number;
  readonly maxLayers: number;
  readonly featureDim: number;
  /** Standardised features [A, featureDim], row-major. */
  readonly features: Float64Array;
  /** Fixed action embeddings [A, embeddingDim]: one-hot model, one-hot layer, features / 2. */
  readonly embeddings: Float64Array;
  readonly embeddingDim: number;
  readonly actionModel: Int32Array;
  readonly actionLayer: Int32Array;
  readonly actionHidden: Float64Array;
  private readonly offsets: number[];

  constructor(models: readonly PoolModel[]) {
    if (models.length === 0) throw new InvalidArgumentError('the layer pool is empty', { field: 'pool' });
    const featureDim = models[0]?.layerFeatures?.[0]?.length ?? 0;
    this.offsets = [];
    let total = 0;
    let maxLayers = 0;
    models.forEach((m, i) => {
      if (!Number.isSafeInteger(m.layers) || m.layers <= 0) {
        throw new InvalidArgumentError(`pool model ${i} (${m.id}) has ${m.layers} layers; need at least 1`, {
          field: `pool[${i}].layers`,
        });
      }
      const feats = m.layerFeatures;
      if (
        (feats === undefined) !== (featureDim === 0) ||
        (feats !== undefined && feats.length !== m.layers)
      ) {
        throw new InvalidArgumentError(
          `pool model ${i} (${m.id}): need ${featureDim > 0 ? `${m.layers} feature rows` : 'no features'} like model 0`,
          { field: `pool[${i}].layerFeatures` },
        );
      }
      feats?.forEach((row, l) => {
        if (row.length !== featureDim || !row.every(Number.isFinite)) {
          throw new InvalidArgumentError(
            `pool model ${i} layer ${l}: features must be ${featureDim} finite numbers`,
            { field: `pool[${i}].layerFeatures[${l}]` },
          );
        }
      });
      this.offsets.push(total);
      total += m.layers;
      maxLayers = Math.max(maxLayers, m.layers);
    });
    this.models = models;
    this.size = total;
    this.maxLayers = maxLayers;
    this.featureDim = featureDim;
    this.actionModel = new Int32Array(total);
    this.actionLayer = new Int32Array(total);
    this.actionHidden = new Float64Array(total);
    const raw = new Float64Array(total * featureDim);
    models.forEach((m, i) => {
      for (let l = 0; l < m.layers; l++) {
        const a = (this.offsets[i] as number) + l;
        this.actionModel[a] = i;
        this.actionLayer[a] = l;
        this.actionHidden[a] = m.hiddenSize ?? 0;
        m.layerFeatures?.[l]?.forEach((v, f) => (raw[a * featureDim + f] = v));
      }
    });
    this.features = standardise(raw, total, featureDim);
    const P = models.length;
    const D = P + maxLayers + featureDim;
    this.embeddingDim = D;
    this.embeddings = new Float64Array(total * D);
    for (let a = 0; a < total; a++) {
      this.embeddings[a * D + (this.actionModel[a] as number)] = 1;
      this.embeddings[a * D + P + (this.actionLayer[a] as number)] = 1;
      for (let f = 0; f < featureDim; f++)
        this.embeddings[a * D + P + maxLayers + f] = 0.5 * (this.features[a * featureDim + f] as number);
    }
  }

  actionOf(step: PathStep): number {
    const m = this.models[step.poolIndex];
    if (
      m === undefined ||
      !Number.isInteger(step.layerIndex) ||
      step.layerIndex < 0 ||
      step.layerIndex >= m.layers
    ) {
      throw new InvalidArgumentError(`no layer (${step.poolIndex}, ${step.layerIndex}) in the pool`, {
        field: 'path',
        step,
      });
    }
    return (this.offsets[step.poolIndex] as number) + step.layerIndex;
  }

  stepOf(action: number): PathStep {
    return { poolIndex: this.actionModel[action] as number, layerIndex: this.actionLayer[action] as number };
  }

  /** Whether action b may follow action a (matching hidden sizes). */
  compatible(a: number, b: number): boolean {
    return this.actionHidden[a] === this.actionHidden[b];
  }
}

function standardise(raw: Float64Array, n: number, d: number): Float64Array {
  const out = new Float64Array(raw.length);
  for (let f = 0; f < d; f++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += raw[i * d + f] as number;
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += ((raw[i * d + f] as number) - mean) ** 2;
    const sd = Math.sqrt(v / n) || 1;
    for (let i = 0; i < n; i++) out[i * d + f] = ((raw[i * d + f] as number) - mean) / sd;
  }
  return out;
}
