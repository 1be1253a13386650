/**
 * The path policy: state encoding (GRU over model / layer embeddings and layer-weight features,
 * plus the step position and, amortised, the preference), a Gaussian actor over the action-embedding
 * space, a critic, Wolpertinger selection among the M' nearest discrete actions by the critic's
 * one-step look-ahead, and the PPO update.
 */
import { InvalidArgumentError } from '@hm3/errors';
import {
  add,
  backward,
  clamp,
  concatCols,
  detach,
  concatRows,
  exp,
  gatherRows,
  gaussianEntropy,
  gaussianLogProb,
  mean,
  minimum,
  mul,
  sliceCols,
  matmul,
  maximum,
  neg,
  noGrad,
  scale,
  square,
  sub,
  sumCols,
  tanh,
  Tensor,
  tensor,
  zeros,
} from './autodiff.js';
import { addRow, matmulAccumulate, matmulDense, negExpRow, tanhFast } from './kernels.js';
import { GruCell, Linear, ParamStore } from './layers.js';
import type { LayerPool, PathStep } from './layer-pool.js';
import { Adam, clipGradNorm } from './optim.js';
import { Rng } from './random.js';
import { checkPreference, checkReward, checkScores } from './reward.js';
import { resolvePolicySettings } from './settings.js';
import type { PolicySettings, PolicySettingsInput } from './settings.js';

/** One proposed path with what PPO needs to learn from its reward. */
export interface Episode {
  readonly preference: readonly number[];
  readonly path: readonly PathStep[];
  /** Action index per step [T]. */
  readonly actions: Int32Array;
  /** Sampled proto-actions [T, D]. */
  readonly protos: Float64Array;
  /** log pi(proto_t | S_t) at proposal time [T]. */
  readonly logProbs: Float64Array;
  /** V(S_t) at proposal time [T]. */
  readonly values: Float64Array;
  /**
   * actorFollowCritic > 0, exploring: per step, the critic's best look-ahead action over every valid
   * action (the auxiliary actor loss's target): [T] for followTarget 'preference' (best for w), [T, K]
   * for 'objective' (row t: the best for each objective alone); absent otherwise.
   */
  readonly followActions?: Int32Array;
}

export type ProposalMode = 'explore' | 'greedy';

export interface UpdateStats {
  readonly steps: number;
  readonly policyLoss: number;
  readonly valueLoss: number;
  readonly entropy: number;
  readonly approxKl: number;
  readonly clipFraction: number;
  readonly gradNorm: number;
}

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * Advantages standardised over the whole batch ('batch'), or per step t over the batch's episodes
 * ('step': with the reward spread as R/T, the advantage at step t scales with the T - t rewards
 * left, so late steps would otherwise get a small fraction of the actor's gradient).
 */
export function normaliseAdvantages(
  adv: readonly Float64Array[],
  T: number,
  mode: 'batch' | 'step',
): Float64Array[] {
  const groups =
    mode === 'batch' ? [Array.from({ length: T }, (_, t) => t)] : Array.from({ length: T }, (_, t) => [t]);
  const out = adv.map((a) => new Float64Array(a.length));
  for (const steps of groups) {
    let m = 0;
    let n = 0;
    for (const a of adv)
      for (const t of steps) {
        m += a[t] as number;
        n++;
      }
    m /= n;
    let v = 0;
    for (const a of adv) for (const t of steps) v += ((a[t] as number) - m) ** 2;
    const sd = Math.sqrt(v / n) + 1e-8;
    adv.forEach((a, i) => {
      for (const t of steps) (out[i] as Float64Array)[t] = ((a[t] as number) - m) / sd;
    });
  }
  return out;
}

/** A head's first layer split by input block (see PathPolicy.headTables). */
interface HeadTables {
  /** The rows of the weight that read h: [H, hidden]. */
  readonly hWeight: Float64Array;
  /** Per step t: the one-hot's weight row plus the bias, [T + 1, hidden]. */
  readonly pos: Float64Array;
  /** Per last action (A = none): its embedding times the weight, [A + 1, hidden]. */
  readonly emb: Float64Array;
  /** Per (step of the last action, last action): [T, A + 1, hidden]; empty when the feature is off. */
  readonly posAct: Float64Array;
  /**
   * For one step t (stepActT), per last action a: pos[t] + emb[a] + posAct[t - 1][a], [A + 1, hidden]
   * (a head row starts from one row of it); refilled when a head is asked for another step.
   */
  readonly stepAct: Float64Array;
  stepActT: number;
  /** Per objective k, the same table for the w_k-weighted copy: [K, T, A + 1, hidden]. */
  readonly prefPosAct: Float64Array;
  /** Per objective k and step t: the weight row of w (x) one-hot(t), [K, T + 1, hidden]. */
  readonly prefPos: Float64Array;
  /** The preferences of the call's episodes, [B, K]. */
  readonly W: Float64Array;
  /** Per episode: w times the weight (amortised), [B, hidden]. */
  readonly pref: Float64Array;
  readonly hidden: number;
}

export class PathPolicy {
  readonly settings: PolicySettings;
  readonly params: ParamStore;
  private readonly rng: Rng;
  private readonly modelEmb: Tensor;
  private readonly layerEmb: Tensor;
  private readonly features: Tensor;
  private readonly gru: GruCell;
  private readonly actorHidden: Linear;
  private readonly actorOut: Linear;
  private readonly criticHidden: Linear;
  private readonly criticOut: Linear;
  readonly logStd: Tensor;
  private readonly optimizer: Adam;
  private readonly actorOptimizer: Adam;
  private readonly headIn: number;
  private readonly replay: { episode: Episode; reward: number }[] = [];

  constructor(
    readonly pool: LayerPool,
    settings: PolicySettingsInput = {},
  ) {
    this.settings = resolvePolicySettings(settings);
    const s = this.settings;
    this.rng = new Rng(s.seed);
    this.params = new ParamStore(new Rng(s.seed ^ 0x5eed));
    const P = pool.models.length;
    const D = pool.embeddingDim;
    this.modelEmb = this.params.create('encoder.model_embedding', P, s.modelEmbedding, 1);
    this.layerEmb = this.params.create('encoder.layer_embedding', pool.maxLayers, s.layerEmbedding, 1);
    this.features = tensor(pool.features, pool.size, pool.featureDim);
    const stepIn = s.modelEmbedding + s.layerEmbedding + pool.featureDim;
    this.gru = new GruCell(this.params, 'encoder.gru', stepIn, s.gruHidden);
    this.headIn =
      s.gruHidden +
      s.tMax +
      1 +
      D +
      (s.positionActionFeatures ? s.tMax * D : 0) +
      (this.preferenceActionFeatures ? s.objectives * (s.tMax * D + s.tMax + 1) : 0) +
      (s.amortised ? s.objectives : 0);
    this.actorHidden = new Linear(this.params, 'actor.hidden', this.headIn, s.headHidden);
    this.actorOut = new Linear(this.params, 'actor.mean', s.headHidden, D * this.meanOutputs, 0.1);
    this.criticHidden = new Linear(this.params, 'critic.hidden', this.headIn, s.headHidden);
    this.criticOut = new Linear(this.params, 'critic.value', s.headHidden, this.valueOutputs, 0.1);
    this.logStd = this.params.create('actor.log_std', 1, D, 0);
    this.logStd.data.fill(s.initLogStd);
    const isActor = (name: string): boolean => name.startsWith('actor.');
    this.actorOptimizer = new Adam(
      [...this.params.byName].filter(([n]) => isActor(n)).map(([, t]) => t),
      { lr: s.actorLr },
    );
    this.optimizer = new Adam(
      [...this.params.byName].filter(([n]) => !isActor(n)).map(([, t]) => t),
      { lr: s.lr },
    );
  }

  get tMax(): number {
    return this.settings.tMax;
  }

  /** Episodes learnt from so far (drives the epsilon schedule; saved with the weights). */
  episodesSeen = 0;

  /**
   * Factor on both Adam learning rates for the next updates (trainPolicy's annealLearningRates sets it
   * from 1 down to 0 over the budget, as PPO's reference implementation anneals). Not saved.
   */
  learningRateScale = 1;

  /** Amortised with position-action features: the w-weighted copies of those features are in the heads' input. */
  get preferenceActionFeatures(): boolean {
    return this.settings.amortised && this.settings.positionActionFeatures;
  }

  /** Proto-action means the actor's last layer outputs: K with preferenceActor (amortised), else 1. */
  get meanOutputs(): number {
    return this.settings.amortised && this.settings.preferenceActor ? this.settings.objectives : 1;
  }

  /** Outputs of the critic's last layer: K with preferenceCritic (amortised), else 1. */
  get valueOutputs(): number {
    return this.settings.amortised && this.settings.preferenceCritic ? this.settings.objectives : 1;
  }

  /** epsilon decays linearly from epsilonStart to epsilon over the first epsilonDecayEpisodes episodes. */
  epsilonNow(): number {
    const s = this.settings;
    if (s.epsilonDecayEpisodes === 0) return s.epsilon;
    const f = Math.max(0, 1 - this.episodesSeen / s.epsilonDecayEpisodes);
    return s.epsilon + (s.epsilonStart - s.epsilon) * f;
  }

  // ------------------------------------------------------------ network pieces

  /** GRU input of taking actions: [model emb; layer emb; features] -> [B, in]. */
  private stepInput(actions: ArrayLike<number>): Tensor {
    const ms = Array.from(actions, (a) => this.pool.actionModel[a] as number);
    const ls = Array.from(actions, (a) => this.pool.actionLayer[a] as number);
    const parts = [gatherRows(this.modelEmb, ms), gatherRows(this.layerEmb, ls)];
    if (this.pool.featureDim > 0) parts.push(gatherRows(this.features, actions));
    return concatCols(parts);
  }

  /**
   * Actor / critic input for S_t, t in 0..T: [h; one-hot(t) over T+1 slots; embedding of the last
   * action (zeros at t = 0); one-hot(t - 1) x that embedding (T blocks of D, with
   * positionActionFeatures); amortised: w x that block, w x one-hot(t), then w] -> [B, headIn].
   */
  private headInput(
    h: Tensor,
    t: number | ArrayLike<number>,
    prefs: Tensor,
    last: ArrayLike<number> | null,
  ): Tensor {
    const B = h.rows;
    const P = this.settings.tMax + 1;
    const D = this.pool.embeddingDim;
    const A = this.pool.size;
    const pos = new Float64Array(B * P);
    for (let b = 0; b < B; b++) pos[b * P + (typeof t === 'number' ? t : (t[b] as number))] = 1;
    const lastEmb = new Float64Array(B * D);
    if (last !== null)
      for (let b = 0; b < B; b++) {
        const a = last[b] as number;
        // a = A (or -1) stands for "no action yet" (S_0): a zero embedding.
        if (a >= 0 && a < A) lastEmb.set(this.pool.embeddings.subarray(a * D, (a + 1) * D), b * D);
      }
    const parts = [h, new Tensor(pos, B, P), new Tensor(lastEmb, B, D)];
    if (this.settings.positionActionFeatures) {
      // Block (t - 1) holds the last action's embedding: "this action at that step".
      const T = this.settings.tMax;
      const pa = new Float64Array(B * T * D);
      for (let b = 0; b < B; b++) {
        const tb = typeof t === 'number' ? t : (t[b] as number);
        if (tb >= 1) pa.set(lastEmb.subarray(b * D, (b + 1) * D), b * T * D + (tb - 1) * D);
      }
      parts.push(new Tensor(pa, B, T * D));
      if (this.preferenceActionFeatures) {
        // w (x) the block above: the value of "this action at that step" may depend on the preference.
        const K = this.settings.objectives;
        const wpa = new Float64Array(B * K * T * D);
        for (let b = 0; b < B; b++)
          for (let k = 0; k < K; k++) {
            const wk = prefs.data[b * K + k] as number;
            for (let j = 0; j < T * D; j++) wpa[(b * K + k) * T * D + j] = wk * (pa[b * T * D + j] as number);
          }
        parts.push(new Tensor(wpa, B, K * T * D));
        // w (x) one-hot(t): where the actor should go next may depend on the preference, step by step.
        const wp = new Float64Array(B * K * P);
        for (let b = 0; b < B; b++)
          for (let k = 0; k < K; k++) {
            const tb = typeof t === 'number' ? t : (t[b] as number);
            wp[(b * K + k) * P + tb] = prefs.data[b * K + k] as number;
          }
        parts.push(new Tensor(wp, B, K * P));
      }
    }
    if (this.settings.amortised) parts.push(prefs);
    return concatCols(parts);
  }

  /** The Gaussian mean; reads the state detached, so the encoder learns from the critic only. */
  actorMean(u: Tensor, prefs: Tensor): Tensor {
    return this.meanOf(this.actorOutputs(u), prefs);
  }

  /** The actor's last layer: [B, D] (one mean) or [B, K * D] (preferenceActor: one mean per objective). */
  private actorOutputs(u: Tensor): Tensor {
    return this.actorOut.forward(tanh(this.actorHidden.forward(detach(u))));
  }

  /** The Gaussian mean from actorOutputs: itself, or w . m(S) with preferenceActor. */
  private meanOf(out: Tensor, prefs: Tensor): Tensor {
    const K = this.meanOutputs;
    if (K === 1) return out;
    // preferenceActor: one mean per objective, weighted by w -> [B, D].
    const D = this.pool.embeddingDim;
    let mu = mul(sliceCols(out, 0, D), sliceCols(prefs, 0, 1));
    for (let k = 1; k < K; k++)
      mu = add(mu, mul(sliceCols(out, k * D, (k + 1) * D), sliceCols(prefs, k, k + 1)));
    return mu;
  }

  /**
   * The critic's path value: the expected episode reward R given the path so far. The state value
   * of the MDP (reward spread as R/T per step) is V(S_t) = c_t * pathValue(S_t), and the one-step
   * look-ahead r + gamma V(S') with E[r | S'] = pathValue(S') / T is c_t * pathValue(S'), so the
   * Wolpertinger argmax is the argmax of pathValue(S') at every step, the last included.
   */
  pathValue(u: Tensor, prefs: Tensor): Tensor {
    return this.valueOf(this.criticValues(u), prefs);
  }

  /** The critic's last layer: [B, 1], or [B, K] with preferenceCritic (u(S), one value per objective). */
  private criticValues(u: Tensor): Tensor {
    return this.criticOut.forward(tanh(this.criticHidden.forward(u)));
  }

  /** The path value from criticValues: itself, or w . u(S) with preferenceCritic -> [B, 1]. */
  private valueOf(v: Tensor, prefs: Tensor): Tensor {
    return this.valueOutputs === 1 ? v : sumCols(mul(v, prefs));
  }

  /** actorMean's arithmetic without the tape: the last layer over the hidden activations [B, Ma]. */
  private meanFromHidden(
    ah: Float64Array,
    B: number,
    Ma: number,
    weight: Float64Array,
    bias: Float64Array,
    W: Float64Array,
  ): Float64Array {
    const D = this.pool.embeddingDim;
    const K = this.meanOutputs;
    const out = new Float64Array(B * K * D);
    for (let b = 0; b < B; b++) addRow(out, b * K * D, bias, 0, K * D);
    matmulDense(out, ah, B, Ma, weight, K * D);
    if (K === 1) return out;
    const Kw = this.settings.objectives;
    const mu = new Float64Array(B * D);
    for (let b = 0; b < B; b++)
      for (let k = 0; k < K; k++) {
        const w = W[b * Kw + k] as number;
        for (let j = 0; j < D; j++)
          mu[b * D + j] = (mu[b * D + j] as number) + w * (out[(b * K + k) * D + j] as number);
      }
    return mu;
  }

  /** c_t = (1/T) sum_{j=t}^{T-1} gamma^(j-t); c_T = 0. */
  valueScale(t: number): number {
    let c = 0;
    for (let j = this.settings.tMax - 1; j >= t; j--) c = 1 + this.settings.gamma * c;
    return c / this.settings.tMax;
  }

  private prefTensor(prefs: readonly (readonly number[])[]): Tensor {
    const K = this.settings.objectives;
    const d = new Float64Array(prefs.length * K);
    prefs.forEach((w, b) => w.forEach((x, k) => (d[b * K + k] = x)));
    return new Tensor(d, prefs.length, K);
  }

  // ------------------------------------------------------------ Wolpertinger selection

  /**
   * The non-zero entries of each action's embedding (one-hot model, one-hot layer, features): the
   * squared distance to a proto-action p is |p|^2 + sum over them of (p_j - e_j)^2 - p_j^2.
   */
  private sparseEmbeddings(): { start: Int32Array; index: Int32Array; value: Float64Array } {
    if (this.sparseEmb !== undefined) return this.sparseEmb;
    const D = this.pool.embeddingDim;
    const E = this.pool.embeddings;
    const A = this.pool.size;
    const start = new Int32Array(A + 1);
    const index: number[] = [];
    const value: number[] = [];
    for (let a = 0; a < A; a++) {
      for (let j = 0; j < D; j++) {
        const v = E[a * D + j] as number;
        if (v !== 0) {
          index.push(j);
          value.push(v);
        }
      }
      start[a + 1] = index.length;
    }
    this.sparseEmb = { start, index: Int32Array.from(index), value: Float64Array.from(value) };
    return this.sparseEmb;
  }

  private sparseEmb: { start: Int32Array; index: Int32Array; value: Float64Array } | undefined;

  /** Indices of the M' valid actions nearest to `proto` (nearest first). */
  nearestActions(proto: Float64Array, offset: number, prev: number): number[] {
    const D = this.pool.embeddingDim;
    const { start, index, value } = this.sparseEmbeddings();
    const m = this.settings.mPrime;
    const best: number[] = [];
    const dist: number[] = [];
    let norm2 = 0;
    for (let j = 0; j < D; j++) norm2 += (proto[offset + j] as number) ** 2;
    for (let a = 0; a < this.pool.size; a++) {
      if (prev >= 0 && !this.pool.compatible(prev, a)) continue;
      let d2 = norm2;
      for (let q = start[a] as number; q < (start[a + 1] as number); q++) {
        const p = proto[offset + (index[q] as number)] as number;
        const x = p - (value[q] as number);
        d2 += x * x - p * p;
      }
      if (best.length === m && d2 >= (dist[m - 1] as number)) continue;
      let i = best.length === m ? m - 1 : best.length;
      while (i > 0 && (dist[i - 1] as number) > d2) {
        best[i] = best[i - 1] as number;
        dist[i] = dist[i - 1] as number;
        i--;
      }
      best[i] = a;
      dist[i] = d2;
    }
    return best;
  }

  /**
   * The actor's and the critic's first layers split by input block (u = [h; one-hot(t); emb(last); w]):
   * the one-hot, embedding and preference parts become per-action / per-step / per-episode tables,
   * so that a head on S_t costs one [B, H] x [H, hidden] product. Built once per propose call.
   */
  private inferenceTables(
    W: Float64Array,
    B: number,
  ): {
    actor: HeadTables;
    critic: HeadTables;
    giTable: Float64Array;
  } {
    const giTable = add(
      matmul(this.stepInput(Array.from({ length: this.pool.size }, (_, a) => a)), this.gru.wi),
      this.gru.bi,
    ).data;
    return {
      actor: this.headTables(this.actorHidden, W, B),
      critic: this.headTables(this.criticHidden, W, B),
      giTable,
    };
  }

  private headTables(layer: Linear, W: Float64Array, B: number): HeadTables {
    const s = this.settings;
    const H = s.gruHidden;
    const P = s.tMax + 1;
    const D = this.pool.embeddingDim;
    const A = this.pool.size;
    const K = s.objectives;
    const M = layer.outFeatures;
    const w = layer.weight.data;
    const hWeight = w.subarray(0, H * M);
    // pos[t] = row H + t of the weight, plus the bias.
    const pos = new Float64Array(P * M);
    for (let t = 0; t < P; t++) {
      addRow(pos, t * M, w, H + t, M);
      addRow(pos, t * M, layer.bias.data, 0, M);
    }
    // emb[a] = E[a] x W_emb; the last row (a = A, no action yet) is zero.
    const emb = new Float64Array((A + 1) * M);
    matmulAccumulate(emb, this.pool.embeddings, A, D, w.subarray((H + P) * M, (H + P + D) * M), M);
    // posAct[t - 1][a] = E[a] x the weight rows of block t - 1, [T, A + 1, hidden] (a = A: zero).
    const T = s.tMax;
    let off = H + P + D;
    const posAct = new Float64Array(s.positionActionFeatures ? T * (A + 1) * M : 0);
    if (s.positionActionFeatures) {
      for (let t = 0; t < T; t++) {
        const block = w.subarray((off + t * D) * M, (off + (t + 1) * D) * M);
        matmulAccumulate(posAct.subarray(t * (A + 1) * M), this.pool.embeddings, A, D, block, M);
      }
      off += T * D;
    }
    // prefPosAct[k][t - 1][a]: the same per objective k, weighted by w_k per row, [K, T, A + 1, hidden].
    const prefPosAct = new Float64Array(this.preferenceActionFeatures ? K * T * (A + 1) * M : 0);
    if (this.preferenceActionFeatures) {
      for (let k = 0; k < K; k++)
        for (let t = 0; t < T; t++) {
          const r0 = off + (k * T + t) * D;
          matmulAccumulate(
            prefPosAct.subarray((k * T + t) * (A + 1) * M),
            this.pool.embeddings,
            A,
            D,
            w.subarray(r0 * M, (r0 + D) * M),
            M,
          );
        }
      off += K * T * D;
    }
    // prefPos[k][t]: the weight row of w_k at step t, [K, T + 1, hidden].
    const prefPos = new Float64Array(this.preferenceActionFeatures ? K * P * M : 0);
    if (this.preferenceActionFeatures) {
      prefPos.set(w.subarray(off * M, (off + K * P) * M));
      off += K * P;
    }
    const pref = new Float64Array(B * M);
    if (s.amortised) matmulAccumulate(pref, W, B, K, w.subarray(off * M, (off + K) * M), M);
    const stepAct = new Float64Array((A + 1) * M);
    return { hWeight, pos, emb, posAct, stepAct, stepActT: -1, prefPosAct, prefPos, W, pref, hidden: M };
  }

  /**
   * The first layer's pre-activation of a head for n states: h [n, H] with, per row, its episode b,
   * its step t and its last action, then tanh. -> [n, hidden].
   */
  private headHidden(
    tab: HeadTables,
    h: Float64Array,
    n: number,
    t: number,
    rowsB: ArrayLike<number>,
    last: ArrayLike<number>,
    buffer?: Float64Array,
  ): Float64Array {
    const M = tab.hidden;
    const A1 = this.pool.size + 1;
    const out = buffer ?? new Float64Array(n * M);
    if (tab.stepActT !== t) {
      // The per-step and per-action parts summed once per step.
      tab.stepAct.fill(0);
      for (let a = 0; a < A1; a++) {
        addRow(tab.stepAct, a * M, tab.pos, t, M);
        addRow(tab.stepAct, a * M, tab.emb, a, M);
        if (t >= 1 && this.settings.positionActionFeatures)
          addRow(tab.stepAct, a * M, tab.posAct, (t - 1) * A1 + a, M);
      }
      tab.stepActT = t;
    }
    for (let i = 0; i < n; i++) {
      const r0 = (last[i] as number) * M;
      out.set(tab.stepAct.subarray(r0, r0 + M), i * M);
    }
    matmulDense(out, h, n, this.settings.gruHidden, tab.hWeight, M);
    for (let i = 0; i < n; i++) {
      const o = i * M;
      if (this.preferenceActionFeatures) {
        const K = this.settings.objectives;
        const T = this.settings.tMax;
        for (let k = 0; k < K; k++) {
          const wk = tab.W[(rowsB[i] as number) * K + k] as number;
          const p0 = (k * (T + 1) + t) * M;
          for (let j = 0; j < M; j++)
            out[o + j] = (out[o + j] as number) + wk * (tab.prefPos[p0 + j] as number);
          if (t === 0) continue;
          const r0 = ((k * T + t - 1) * A1 + (last[i] as number)) * M;
          for (let j = 0; j < M; j++)
            out[o + j] = (out[o + j] as number) + wk * (tab.prefPosAct[r0 + j] as number);
        }
      }
      if (this.settings.amortised) addRow(out, o, tab.pref, rowsB[i] as number, M);
      for (let j = 0; j < M; j++) out[o + j] = tanhFast(out[o + j] as number);
    }
    return out;
  }

  /**
   * The critic's last layer over `n` rows of hidden activations -> [n, valueOutputs]: the path value,
   * or with preferenceCritic the per-objective values u(S).
   */
  private criticLastLayer(hid: Float64Array, n: number): Float64Array {
    const M = this.criticOut.inFeatures;
    const O = this.valueOutputs;
    const wv = this.criticOut.weight.data;
    const bv = this.criticOut.bias.data;
    const u = new Float64Array(n * O);
    for (let i = 0; i < n; i++)
      for (let o = 0; o < O; o++) {
        let acc = bv[o] as number;
        for (let j = 0; j < M; j++) acc += (hid[i * M + j] as number) * (wv[j * O + o] as number);
        u[i * O + o] = acc;
      }
    return u;
  }

  /**
   * Path values of n states from criticLastLayer's outputs; with preferenceCritic, row i's outputs are
   * weighted by the preference of its episode rowsB[i] (W is [B, K]).
   */
  private criticOutput(u: Float64Array, n: number, W: Float64Array, rowsB: ArrayLike<number>): Float64Array {
    const O = this.valueOutputs;
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let total = 0;
      for (let o = 0; o < O; o++) {
        const acc = u[i * O + o] as number;
        total += O === 1 ? acc : acc * (W[(rowsB[i] as number) * O + o] as number);
      }
      v[i] = total;
    }
    return v;
  }

  /**
   * Proposes one path per preference. 'explore' samples the proto-action and applies epsilon;
   * 'greedy' uses the mean and the critic's choice. Inference only: plain kernels over the weights,
   * no autodiff tape (the same arithmetic as the tape's actorMean / pathValue / GruCell).
   */
  propose(preferences: readonly (readonly number[])[], mode: ProposalMode = 'explore'): Episode[] {
    const s = this.settings;
    const prefs = preferences.map((w) => checkPreference(w, s.objectives));
    const B = prefs.length;
    if (B === 0) return [];
    const T = s.tMax;
    const D = this.pool.embeddingDim;
    const A = this.pool.size;
    const H = s.gruHidden;
    const W = this.prefTensor(prefs).data;
    const actions = Array.from({ length: B }, () => new Int32Array(T));
    const protos = Array.from({ length: B }, () => new Float64Array(T * D));
    const logProbs = Array.from({ length: B }, () => new Float64Array(T));
    const values = Array.from({ length: B }, () => new Float64Array(T));
    const follow = mode === 'explore' && s.actorFollowCritic > 0;
    const perObjective = follow && s.followTarget === 'objective';
    const K = s.objectives;
    const followActions = follow
      ? Array.from({ length: B }, () => new Int32Array(perObjective ? T * K : T))
      : null;
    const tables = noGrad(() => this.inferenceTables(W, B));
    const eps = this.epsilonNow();
    const gi = tables.giTable;
    const whData = this.gru.wh.data;
    const bh = this.gru.bh.data;
    const aOutW = this.actorOut.weight.data;
    const aOutB = this.actorOut.bias.data;
    const Ma = this.actorOut.inFeatures;
    const identity = Array.from({ length: B }, (_, b) => b);
    // Episodes in the same state (same preference, same actions so far) share their look-ahead rows:
    // state[b] is the episode's state id, rep[id] an episode in that state.
    const state = new Int32Array(B);
    let rep: number[] = [];
    {
      const seen = new Map<string, number>();
      prefs.forEach((w, b) => {
        const key = w.join(',');
        let id = seen.get(key);
        if (id === undefined) {
          id = rep.length;
          seen.set(key, id);
          rep.push(b);
        }
        state[b] = id;
      });
    }
    let h = new Float64Array(B * H);
    const prev = new Int32Array(B).fill(A);
    // Look-ahead row of (state, action) during a step, -1 when none yet; reset after each step.
    const A1 = A + 1;
    const rowOf = new Int32Array(B * A1).fill(-1);
    const touched: number[] = [];
    // e^-(input part) of the reset and update gates per action, [A, 2H], and per episode each step.
    const giNeg = new Float64Array(A * 2 * H);
    const giExact = new Uint8Array(A);
    for (let a = 0; a < A; a++) giExact[a] = negExpRow(giNeg, a * 2 * H, gi, a * 3 * H, 2 * H) ? 0 : 1;
    const ghNeg = new Float64Array(B * 2 * H);
    const ghExact = new Uint8Array(B);
    // The look-ahead's rows (at most B x M' a step), reused from step to step.
    const maxRows =
      B *
      (mode === 'explore' && (s.poolLookAheadShare > 0 || follow || s.epsilonScope === 'pool')
        ? Math.max(A, s.mPrime)
        : s.mPrime);
    const hcBuffer = new Float64Array(maxRows * H);
    const criticBuffer = new Float64Array(maxRows * this.criticHidden.outFeatures);
    // pv(S_t) of every episode: computed for S_0, then carried from the chosen candidate's look-ahead.
    let pv = this.criticOutput(
      this.criticLastLayer(this.headHidden(tables.critic, h, B, 0, identity, prev), B),
      B,
      W,
      identity,
    );
    const std = this.logStd.data.map(Math.exp);
    let logStdSum = 0;
    for (const x of this.logStd.data) logStdSum += x;
    for (let t = 0; t < T; t++) {
      const ah = this.headHidden(tables.actor, h, B, t, identity, prev);
      const mu = this.meanFromHidden(ah, B, Ma, aOutW, aOutB, W);
      const ct = this.valueScale(t);
      const proto = new Float64Array(B * D);
      for (let b = 0; b < B; b++) {
        let lp = -logStdSum - HALF_LOG_2PI * D;
        for (let j = 0; j < D; j++) {
          const z = mode === 'greedy' ? 0 : this.rng.normal();
          proto[b * D + j] = (mu[b * D + j] as number) + (std[j] as number) * z;
          lp -= 0.5 * z * z;
        }
        (logProbs[b] as Float64Array)[t] = lp;
        (values[b] as Float64Array)[t] = ct * (pv[b] as number);
        (protos[b] as Float64Array).set(proto.subarray(b * D, (b + 1) * D), t * D);
      }
      // poolLookAheadShare (exploring only): some steps look ahead over every valid action instead of
      // the M' nearest, and take the critic's best, so the actor's mean is pulled (logProbAt
      // 'action') towards what the critic prefers beyond its neighbourhood. Off: no draw at all.
      const wholePool = new Uint8Array(B);
      if (mode === 'explore' && s.poolLookAheadShare > 0)
        for (let b = 0; b < B; b++) wholePool[b] = this.rng.uniform() < s.poolLookAheadShare ? 1 : 0;
      // actorFollowCritic: the look-ahead also covers every valid action (the auxiliary target), but
      // the step still picks among the M' nearest (near[b]); without it cands[b] is near[b].
      // epsilonScope 'pool': the epsilon draw comes first, and a random step picks among every valid
      // action (its look-ahead row is needed for the next state's value), not only the M' nearest.
      const randomPool = new Uint8Array(B);
      if (mode === 'explore' && s.epsilonScope === 'pool')
        for (let b = 0; b < B; b++) if (wholePool[b] === 0) randomPool[b] = this.rng.uniform() < eps ? 1 : 0;
      const near = Array.from({ length: B }, (_, b) => {
        const p = t === 0 ? -1 : (prev[b] as number);
        if (wholePool[b] === 0 && randomPool[b] === 0) return this.nearestActions(proto, b * D, p);
        const all: number[] = [];
        for (let a = 0; a < A; a++) if (p < 0 || this.pool.compatible(p, a)) all.push(a);
        return all;
      });
      const cands = near.map((c, b) => {
        if (!follow) return c;
        const p = t === 0 ? -1 : (prev[b] as number);
        const all = [...c];
        for (let a = 0; a < A; a++) if (!c.includes(a) && (p < 0 || this.pool.compatible(p, a))) all.push(a);
        return all;
      });
      // One-step look-ahead: the GRU step and the path value of S' for every distinct (state, action)
      // among the candidates, batched; row[b][i] is the look-ahead row of candidate i of episode b.
      // States are numbered 0..S-1 (S <= B), so (state, action) indexes a flat table.
      const rowsB: number[] = [];
      const rowsA: number[] = [];
      const row = cands.map((c, b) =>
        c.map((a) => {
          const key = (state[b] as number) * A1 + a;
          let r = rowOf[key] as number;
          if (r < 0) {
            r = rowsB.length;
            rowOf[key] = r;
            touched.push(key);
            rowsB.push(rep[state[b] as number] as number);
            rowsA.push(a);
          }
          return r;
        }),
      );
      for (const key of touched) rowOf[key] = -1;
      touched.length = 0;
      const n = rowsB.length;
      const gh = new Float64Array(B * 3 * H);
      for (let b = 0; b < B; b++) addRow(gh, b * 3 * H, bh, 0, 3 * H);
      matmulDense(gh, h, B, H, whData, 3 * H);
      // The reset and update gates sigmoid(gi + gh) = 1 / (1 + e^-gi e^-gh): e^-gi is a per-action
      // table (once per call), e^-gh one row per episode, so the n x H products need no exp.
      for (let b = 0; b < B; b++) ghExact[b] = negExpRow(ghNeg, b * 2 * H, gh, b * 3 * H, 2 * H) ? 0 : 1;
      const hc = hcBuffer;
      for (let i = 0; i < n; i++) {
        const b = rowsB[i] as number;
        const act = rowsA[i] as number;
        const ia = act * 3 * H;
        const ib = b * 3 * H;
        const o = i * H;
        if (giExact[act] === 0 && ghExact[b] === 0) {
          const ea = act * 2 * H;
          const eb = b * 2 * H;
          for (let j = 0; j < H; j++) {
            const r = 1 / (1 + (giNeg[ea + j] as number) * (ghNeg[eb + j] as number));
            const z = 1 / (1 + (giNeg[ea + H + j] as number) * (ghNeg[eb + H + j] as number));
            const nn = tanhFast((gi[ia + 2 * H + j] as number) + r * (gh[ib + 2 * H + j] as number));
            hc[o + j] = nn + z * ((h[b * H + j] as number) - nn);
          }
        } else {
          for (let j = 0; j < H; j++) {
            // 1 / (1 + e^-x) is exact enough for both signs (e^-x overflows to Infinity -> 0).
            const r = 1 / (1 + Math.exp(-((gi[ia + j] as number) + (gh[ib + j] as number))));
            const z = 1 / (1 + Math.exp(-((gi[ia + H + j] as number) + (gh[ib + H + j] as number))));
            const nn = Math.tanh((gi[ia + 2 * H + j] as number) + r * (gh[ib + 2 * H + j] as number));
            hc[o + j] = nn + z * ((h[b * H + j] as number) - nn);
          }
        }
      }
      // the critic's outputs of every row ([n, K]: u_k(S'), followTarget 'objective' reads them too)
      const u = this.criticLastLayer(
        this.headHidden(tables.critic, hc, n, t + 1, rowsB, rowsA, criticBuffer),
        n,
      );
      const vc = this.criticOutput(u, n, W, rowsB);
      const uc = perObjective ? u : null;
      const nextH = new Float64Array(B * H);
      const nextPv = new Float64Array(B);
      const nextState = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        const c = cands[b] as number[];
        const rb = row[b] as number[];
        // cands[b] starts with near[b]: the step's pick is among its first nNear.
        const nNear = (near[b] as number[]).length;
        let bestI = 0;
        for (let i = 1; i < nNear; i++)
          if ((vc[rb[i] as number] as number) > (vc[rb[bestI] as number] as number)) bestI = i;
        if (followActions !== null && uc !== null) {
          for (let k = 0; k < K; k++) {
            let f = 0;
            for (let i = 1; i < c.length; i++)
              if ((uc[(rb[i] as number) * K + k] as number) > (uc[(rb[f] as number) * K + k] as number))
                f = i;
            (followActions[b] as Int32Array)[t * K + k] = c[f] as number;
          }
        } else if (followActions !== null) {
          let f = bestI;
          for (let i = nNear; i < c.length; i++)
            if ((vc[rb[i] as number] as number) > (vc[rb[f] as number] as number)) f = i;
          (followActions[b] as Int32Array)[t] = c[f] as number;
        }
        if (randomPool[b] === 1) bestI = this.rng.int(nNear);
        else if (
          mode === 'explore' &&
          s.epsilonScope === 'candidates' &&
          wholePool[b] === 0 &&
          this.rng.uniform() < eps
        )
          bestI = this.rng.int(nNear);
        const a = c[bestI] as number;
        const r = rb[bestI] as number;
        nextH.set(hc.subarray(r * H, (r + 1) * H), b * H);
        nextPv[b] = vc[r] as number;
        nextState[b] = r;
        (actions[b] as Int32Array)[t] = a;
        prev[b] = a;
        if (s.logProbAt === 'action') {
          // The executed action's embedding stands for the action in the Gaussian log-density.
          const e0 = a * D;
          const pr = protos[b] as Float64Array;
          let lp = -logStdSum - HALF_LOG_2PI * D;
          for (let j = 0; j < D; j++) {
            const e = this.pool.embeddings[e0 + j] as number;
            pr[t * D + j] = e;
            lp -= 0.5 * ((e - (mu[b * D + j] as number)) / (std[j] as number)) ** 2;
          }
          (logProbs[b] as Float64Array)[t] = lp;
        }
      }
      h = nextH;
      pv = nextPv;
      // The new states (look-ahead rows that some episode took), renumbered 0..S-1, and the
      // representative of each: an episode now in it (h and w are the state's).
      const idOf = new Int32Array(n).fill(-1);
      rep = [];
      for (let b = 0; b < B; b++) {
        const r = nextState[b] as number;
        if (idOf[r] === -1) {
          idOf[r] = rep.length;
          rep.push(b);
        }
        state[b] = idOf[r] as number;
      }
    }
    return prefs.map((w, b) => ({
      preference: w,
      path: Array.from(actions[b] as Int32Array, (a) => this.pool.stepOf(a)),
      actions: actions[b] as Int32Array,
      protos: protos[b] as Float64Array,
      logProbs: logProbs[b] as Float64Array,
      values: values[b] as Float64Array,
      ...(followActions !== null ? { followActions: followActions[b] as Int32Array } : {}),
    }));
  }

  // ------------------------------------------------------------ PPO

  /** GAE(gamma, lambda) with the episode reward spread evenly over its T steps; terminal value 0. */
  advantages(episode: Episode, reward: number): { adv: Float64Array; ret: Float64Array } {
    const T = episode.values.length;
    const r = reward / T;
    const adv = new Float64Array(T);
    const ret = new Float64Array(T);
    let next = 0;
    let nextV = 0;
    for (let t = T - 1; t >= 0; t--) {
      const v = episode.values[t] as number;
      const delta = r + this.settings.gamma * nextV - v;
      next = delta + this.settings.gamma * this.settings.lambda * next;
      adv[t] = next;
      ret[t] = next + v;
      nextV = v;
    }
    return { adv, ret };
  }

  /**
   * PPO over `episodes` with their episode rewards: epochs x minibatches, Adam, gradient clipping.
   * `scores` (per episode, one per objective) feed objectiveValueCoef's loss; without them it is off.
   */
  update(
    episodes: readonly Episode[],
    rewards: readonly number[],
    scores?: readonly (readonly number[])[],
  ): UpdateStats {
    const s = this.settings;
    if (episodes.length === 0)
      throw new InvalidArgumentError('no episodes to learn from', { field: 'episodes' });
    if (rewards.length !== episodes.length)
      throw new InvalidArgumentError(`${rewards.length} rewards for ${episodes.length} episodes`, {
        field: 'rewards',
      });
    rewards.forEach((r, i) => checkReward(r, `rewards[${i}]`));
    if (scores !== undefined) {
      if (scores.length !== episodes.length)
        throw new InvalidArgumentError(`${scores.length} score lists for ${episodes.length} episodes`, {
          field: 'scores',
        });
      scores.forEach((sc, i) => checkScores(sc, s.objectives, `scores[${i}]`));
    }
    const T = s.tMax;
    for (const e of episodes) {
      if (e.actions.length !== T)
        throw new InvalidArgumentError(`episode of length ${e.actions.length}, the policy has T_max ${T}`, {
          field: 'episodes',
        });
    }
    const gae = episodes.map((e, i) => this.advantages(e, rewards[i] as number));
    const normAdv = normaliseAdvantages(
      gae.map((g) => g.adv),
      T,
      s.advantageNorm,
    );
    const perBatch = Math.max(1, Math.ceil(s.minibatch / T));
    const order = episodes.map((_, i) => i);
    let stats = { policyLoss: 0, valueLoss: 0, entropy: 0, approxKl: 0, clipFraction: 0, gradNorm: 0 };
    for (let epoch = 0; epoch < s.epochs; epoch++) {
      this.rng.shuffle(order);
      for (let start = 0; start < order.length; start += perBatch) {
        const idx = order.slice(start, start + perBatch);
        const out = this.loss(
          idx.map((i) => episodes[i] as Episode),
          idx.map((i) => normAdv[i] as Float64Array),
          idx.map((i) => (gae[i] as { ret: Float64Array }).ret),
          idx.map((i) => rewards[i] as number),
          scores === undefined ? null : idx.map((i) => scores[i] as readonly number[]),
        );
        this.optimizer.lr = s.lr * this.learningRateScale;
        this.actorOptimizer.lr = s.actorLr * this.learningRateScale;
        this.optimizer.zeroGrad();
        this.actorOptimizer.zeroGrad();
        backward(out.loss);
        const gradNorm = clipGradNorm(this.params.list, s.maxGradNorm);
        this.optimizer.step();
        this.actorOptimizer.step();
        const ls = this.logStd.data;
        for (let j = 0; j < ls.length; j++) if ((ls[j] as number) < s.minLogStd) ls[j] = s.minLogStd;
        stats = { ...out.stats, gradNorm };
      }
    }
    if (s.replayEpisodes > 0) {
      episodes.forEach((e, i) => this.replay.push({ episode: e, reward: rewards[i] as number }));
      if (this.replay.length > s.replayEpisodes) this.replay.splice(0, this.replay.length - s.replayEpisodes);
      for (let k = 0; k < s.replayMinibatches; k++) {
        const pick = Array.from(
          { length: Math.min(perBatch, this.replay.length) },
          () => this.replay[this.rng.int(this.replay.length)] as { episode: Episode; reward: number },
        );
        const loss = this.replayValueLoss(
          pick.map((p) => p.episode),
          pick.map((p) => p.reward),
        );
        this.optimizer.zeroGrad();
        backward(loss);
        clipGradNorm(this.optimizer.params, s.maxGradNorm);
        this.optimizer.step();
      }
    }
    this.episodesSeen += episodes.length;
    return { steps: episodes.length * T, ...stats };
  }

  /** Path-value regression on replayed episodes with the Monte-Carlo target R at every state S_0..S_T. */
  private replayValueLoss(eps: readonly Episode[], rewards: readonly number[]): Tensor {
    const T = this.settings.tMax;
    const E = eps.length;
    const W = this.prefTensor(eps.map((e) => e.preference));
    let h = zeros(E, this.settings.gruHidden);
    const vals: Tensor[] = [];
    for (let t = 0; t <= T; t++) {
      vals.push(
        this.pathValue(
          this.headInput(h, t, W, t === 0 ? null : eps.map((e) => e.actions[t - 1] as number)),
          W,
        ),
      );
      if (t < T) h = this.gru.forward(this.stepInput(eps.map((e) => e.actions[t] as number)), h);
    }
    const target = new Float64Array(E * (T + 1));
    for (let t = 0; t <= T; t++) for (let b = 0; b < E; b++) target[t * E + b] = rewards[b] as number;
    return mean(square(sub(concatRows(vals), new Tensor(target, E * (T + 1), 1))));
  }

  private loss(
    eps: readonly Episode[],
    adv: readonly Float64Array[],
    ret: readonly Float64Array[],
    episodeRewards: readonly number[],
    episodeScores: readonly (readonly number[])[] | null,
  ): { loss: Tensor; stats: Omit<UpdateStats, 'steps' | 'gradNorm'> } {
    const s = this.settings;
    const E = eps.length;
    const T = s.tMax;
    const D = this.pool.embeddingDim;
    const W = this.prefTensor(eps.map((e) => e.preference));
    let h = zeros(E, s.gruHidden);
    const logps: Tensor[] = [];
    const vals: Tensor[] = [];
    const oldLp = new Float64Array(E * T);
    const A = new Float64Array(E * T);
    // Path-value targets for S_0..S_T: ret_t / c_t, and R itself at S_T.
    const R = new Float64Array(E * (T + 1));
    const lastOf = (t: number): number[] | null =>
      t === 0 ? null : eps.map((e) => e.actions[t - 1] as number);
    // The auxiliary follow-the-critic loss, where every episode carries its targets.
    const followW =
      s.actorFollowCritic > 0 && eps.every((e) => e.followActions !== undefined) ? s.actorFollowCritic : 0;
    const follows: Tensor[] = [];
    // u(S_0..S_T) per objective, for objectiveValueCoef's loss
    const objVals: Tensor[] = [];
    for (let t = 0; t < T; t++) {
      const u = this.headInput(h, t, W, lastOf(t));
      const protoT = new Float64Array(E * D);
      eps.forEach((e, b) => {
        protoT.set(e.protos.subarray(t * D, (t + 1) * D), b * D);
        oldLp[t * E + b] = e.logProbs[t] as number;
        A[t * E + b] = (adv[b] as Float64Array)[t] as number;
        R[t * E + b] = ((ret[b] as Float64Array)[t] as number) / this.valueScale(t);
      });
      const out = this.actorOutputs(u);
      const mu = this.meanOf(out, W);
      logps.push(gaussianLogProb(new Tensor(protoT, E, D), mu, this.logStd));
      if (followW > 0 && s.followTarget === 'objective') {
        // each objective's mean m_k(S_t) towards the action best for objective k: [E, K * D]
        const K = s.objectives;
        const target = new Float64Array(E * K * D);
        eps.forEach((e, b) => {
          for (let k = 0; k < K; k++) {
            const a = (e.followActions as Int32Array)[t * K + k] as number;
            target.set(this.pool.embeddings.subarray(a * D, (a + 1) * D), (b * K + k) * D);
          }
        });
        follows.push(sub(out, new Tensor(target, E, K * D)));
      } else if (followW > 0) {
        const target = new Float64Array(E * D);
        eps.forEach((e, b) => {
          const a = (e.followActions as Int32Array)[t] as number;
          target.set(this.pool.embeddings.subarray(a * D, (a + 1) * D), b * D);
        });
        follows.push(sub(mu, new Tensor(target, E, D)));
      }
      const v = this.criticValues(u);
      vals.push(this.valueOf(v, W));
      objVals.push(v);
      h = this.gru.forward(this.stepInput(eps.map((e) => e.actions[t] as number)), h);
    }
    const vT = this.criticValues(this.headInput(h, T, W, lastOf(T)));
    vals.push(this.valueOf(vT, W));
    objVals.push(vT);
    eps.forEach((_, b) => (R[T * E + b] = episodeRewards[b] as number));
    const logp = concatRows(logps);
    const At = new Tensor(A, E * T, 1);
    // The log-ratio is clamped before exp so that one far-off sample cannot overflow the loss.
    const ratio = exp(clamp(sub(logp, new Tensor(oldLp, E * T, 1)), -20, 20));
    const clipped = minimum(mul(ratio, At), mul(clamp(ratio, 1 - s.clip, 1 + s.clip), At));
    // Dual clip: max(clipped, dualClip * A) where A < 0 (dualClip * A <= clipped wherever A >= 0).
    const floor = new Float64Array(E * T);
    for (let i = 0; i < E * T; i++)
      floor[i] = (A[i] as number) < 0 ? s.dualClip * (A[i] as number) : -Infinity;
    const surr = maximum(clipped, new Tensor(floor, E * T, 1));
    const policyLoss = neg(mean(surr));
    const valueLoss = mean(square(sub(concatRows(vals), new Tensor(R, E * (T + 1), 1))));
    const entropy = gaussianEntropy(this.logStd);
    let loss = add(add(policyLoss, scale(valueLoss, s.valueCoef)), scale(entropy, -s.entropyCoef));
    // mean over the E*T*D entries times D: the squared distance summed over the embedding, per step.
    if (followW > 0) loss = add(loss, scale(mean(square(concatRows(follows))), followW * D));
    if (s.objectiveValueCoef > 0 && episodeScores !== null) {
      // u_k(S_t) -> score_k - beta x length at every state (a Monte-Carlo target, as R is at S_T)
      const K = s.objectives;
      const target = new Float64Array((T + 1) * E * K);
      for (let t = 0; t <= T; t++)
        eps.forEach((e, b) => {
          const penalty = s.reward.beta * e.path.length;
          for (let k = 0; k < K; k++)
            target[(t * E + b) * K + k] = ((episodeScores[b] as readonly number[])[k] as number) - penalty;
        });
      const objectiveLoss = mean(square(sub(concatRows(objVals), new Tensor(target, (T + 1) * E, K))));
      loss = add(loss, scale(objectiveLoss, s.objectiveValueCoef));
    }
    let kl = 0;
    let clippedCount = 0;
    for (let i = 0; i < E * T; i++) {
      const d = (logp.data[i] as number) - (oldLp[i] as number);
      kl += -d;
      if (Math.abs(Math.exp(d) - 1) > s.clip) clippedCount++;
    }
    return {
      loss,
      stats: {
        policyLoss: policyLoss.item(),
        valueLoss: valueLoss.item(),
        entropy: entropy.item(),
        approxKl: kl / (E * T),
        clipFraction: clippedCount / (E * T),
      },
    };
  }

  // ------------------------------------------------------------ inference pieces (the ONNX export mirrors them)

  /** One GRU step of the state encoder: h [B, H] (row-major) and the actions taken -> h' [B, H]. */
  encodeStep(hidden: Float64Array, actions: ArrayLike<number>): Float64Array {
    const H = this.settings.gruHidden;
    const B = actions.length;
    return noGrad(() => this.gru.forward(this.stepInput(actions), new Tensor(hidden, B, H)).data);
  }

  /**
   * Actor and critic on S_t given its parts: h [B, H], the step t per row, the last action per row
   * (pool.size for none, at t = 0) and, amortised, the preference per row ([B, K]). With
   * preferenceActor / preferenceCritic also the per-objective means m(S) [B, K * D] and values u(S)
   * [B, K] that mean and pathValue weight by w.
   */
  heads(
    hidden: Float64Array,
    positions: ArrayLike<number>,
    lastActions: ArrayLike<number>,
    preferences?: Float64Array,
  ): {
    mean: Float64Array;
    pathValue: Float64Array;
    objectiveMeans?: Float64Array;
    objectiveValues?: Float64Array;
  } {
    const H = this.settings.gruHidden;
    const K = this.settings.objectives;
    const B = positions.length;
    for (let b = 0; b < B; b++) {
      const t = positions[b] as number;
      if (!Number.isInteger(t) || t < 0 || t > this.settings.tMax)
        throw new InvalidArgumentError(`step ${t} outside 0..${this.settings.tMax}`, { field: 'positions' });
    }
    const W = new Tensor(preferences ?? new Float64Array(B * K), B, K);
    return noGrad(() => {
      const u = this.headInput(new Tensor(hidden, B, H), positions, W, lastActions);
      const out = this.actorOutputs(u);
      const v = this.criticValues(u);
      return {
        mean: this.meanOf(out, W).data,
        pathValue: this.valueOf(v, W).data,
        ...(this.meanOutputs > 1 ? { objectiveMeans: out.data } : {}),
        ...(this.valueOutputs > 1 ? { objectiveValues: v.data } : {}),
      };
    });
  }

  /** Greedy V(S_0) and mean for a preference; used by tests and export checks. */
  initialOutputs(preference: readonly number[]): { mean: Float64Array; value: number } {
    const w = checkPreference(preference, this.settings.objectives);
    return noGrad(() => {
      const W = this.prefTensor([w]);
      const u = this.headInput(zeros(1, this.settings.gruHidden), 0, W, null);
      return { mean: this.actorMean(u, W).data, value: this.pathValue(u, W).item() };
    });
  }
}
