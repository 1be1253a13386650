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
  matmul,
  maximum,
  neg,
  noGrad,
  scale,
  sigmoidScalar,
  square,
  sub,
  tanh,
  Tensor,
  tensor,
  zeros,
} from './autodiff.js';
import { GruCell, Linear, ParamStore } from './layers.js';
import type { LayerPool, PathStep } from './layer-pool.js';
import { Adam, clipGradNorm } from './optim.js';
import { Rng } from './random.js';
import { checkPreference, checkReward } from './reward.js';
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
    this.headIn = s.gruHidden + s.tMax + 1 + D + (s.amortised ? s.objectives : 0);
    this.actorHidden = new Linear(this.params, 'actor.hidden', this.headIn, s.headHidden);
    this.actorOut = new Linear(this.params, 'actor.mean', s.headHidden, D, 0.1);
    this.criticHidden = new Linear(this.params, 'critic.hidden', this.headIn, s.headHidden);
    this.criticOut = new Linear(this.params, 'critic.value', s.headHidden, 1, 0.1);
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
   * action (zeros at t = 0); w if amortised] -> [B, headIn].
   */
  private headInput(h: Tensor, t: number, prefs: Tensor, last: ArrayLike<number> | null): Tensor {
    const B = h.rows;
    const P = this.settings.tMax + 1;
    const D = this.pool.embeddingDim;
    const pos = new Float64Array(B * P);
    for (let b = 0; b < B; b++) pos[b * P + t] = 1;
    const lastEmb = new Float64Array(B * D);
    if (last !== null)
      for (let b = 0; b < B; b++)
        lastEmb.set(
          this.pool.embeddings.subarray((last[b] as number) * D, ((last[b] as number) + 1) * D),
          b * D,
        );
    const parts = [h, new Tensor(pos, B, P), new Tensor(lastEmb, B, D)];
    if (this.settings.amortised) parts.push(prefs);
    return concatCols(parts);
  }

  /** The Gaussian mean; reads the state detached, so the encoder learns from the critic only. */
  actorMean(u: Tensor): Tensor {
    return this.actorOut.forward(tanh(this.actorHidden.forward(detach(u))));
  }

  /**
   * The critic's path value: the expected episode reward R given the path so far. The state value
   * of the MDP (reward spread as R/T per step) is V(S_t) = c_t * pathValue(S_t), and the one-step
   * look-ahead r + gamma V(S') with E[r | S'] = pathValue(S') / T is c_t * pathValue(S'), so the
   * Wolpertinger argmax is the argmax of pathValue(S') at every step, the last included.
   */
  pathValue(u: Tensor): Tensor {
    return this.criticOut.forward(tanh(this.criticHidden.forward(u)));
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

  /**
   * GRU steps for many (episode, action) pairs at once, without the tape: gi rows come from the
   * per-action table, h Wh + bh is computed once per episode. Same arithmetic as GruCell.forward.
   */
  gruCandidates(giTable: Tensor, h: Tensor, rowsB: readonly number[], rowsA: readonly number[]): Tensor {
    const H = this.settings.gruHidden;
    const gh = add(matmul(h, this.gru.wh), this.gru.bh).data; // [B, 3H]
    const gi = giTable.data;
    const n = rowsB.length;
    const out = new Float64Array(n * H);
    const hd = h.data;
    for (let i = 0; i < n; i++) {
      const b = rowsB[i] as number;
      const a = rowsA[i] as number;
      const ib = b * 3 * H;
      const ia = a * 3 * H;
      for (let j = 0; j < H; j++) {
        const r = sigmoidScalar((gi[ia + j] as number) + (gh[ib + j] as number));
        const z = sigmoidScalar((gi[ia + H + j] as number) + (gh[ib + H + j] as number));
        const nn = Math.tanh((gi[ia + 2 * H + j] as number) + r * (gh[ib + 2 * H + j] as number));
        out[i * H + j] = nn + z * ((hd[b * H + j] as number) - nn);
      }
    }
    return new Tensor(out, n, H);
  }

  // ------------------------------------------------------------ Wolpertinger selection

  /** Indices of the M' valid actions nearest to `proto` (nearest first). */
  nearestActions(proto: Float64Array, offset: number, prev: number): number[] {
    const D = this.pool.embeddingDim;
    const E = this.pool.embeddings;
    const m = this.settings.mPrime;
    const best: number[] = [];
    const dist: number[] = [];
    for (let a = 0; a < this.pool.size; a++) {
      if (prev >= 0 && !this.pool.compatible(prev, a)) continue;
      let d2 = 0;
      for (let j = 0; j < D; j++) {
        const x = (proto[offset + j] as number) - (E[a * D + j] as number);
        d2 += x * x;
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
   * Proposes one path per preference. 'explore' samples the proto-action and applies epsilon;
   * 'greedy' uses the mean and the critic's choice.
   */
  propose(preferences: readonly (readonly number[])[], mode: ProposalMode = 'explore'): Episode[] {
    const s = this.settings;
    const prefs = preferences.map((w) => checkPreference(w, s.objectives));
    const B = prefs.length;
    if (B === 0) return [];
    const T = s.tMax;
    const D = this.pool.embeddingDim;
    const W = this.prefTensor(prefs);
    const actions = Array.from({ length: B }, () => new Int32Array(T));
    const protos = Array.from({ length: B }, () => new Float64Array(T * D));
    const logProbs = Array.from({ length: B }, () => new Float64Array(T));
    const values = Array.from({ length: B }, () => new Float64Array(T));
    noGrad(() => {
      // x(a) Wi + bi for every action, once per call: a look-ahead step is then element-wise.
      const giTable = add(
        matmul(this.stepInput(Array.from({ length: this.pool.size }, (_, a) => a)), this.gru.wi),
        this.gru.bi,
      );
      let h = zeros(B, s.gruHidden);
      const prev = new Int32Array(B).fill(-1);
      const std = this.logStd.data.map(Math.exp);
      let logStdSum = 0;
      for (const x of this.logStd.data) logStdSum += x;
      for (let t = 0; t < T; t++) {
        const u = this.headInput(h, t, W, t === 0 ? null : prev);
        const mu = this.actorMean(u);
        const v = this.pathValue(u);
        const ct = this.valueScale(t);
        const proto = new Float64Array(B * D);
        for (let b = 0; b < B; b++) {
          let lp = -logStdSum - HALF_LOG_2PI * D;
          for (let j = 0; j < D; j++) {
            const z = mode === 'greedy' ? 0 : this.rng.normal();
            proto[b * D + j] = (mu.data[b * D + j] as number) + (std[j] as number) * z;
            lp -= 0.5 * z * z;
          }
          (logProbs[b] as Float64Array)[t] = lp;
          (values[b] as Float64Array)[t] = ct * (v.data[b] as number);
          (protos[b] as Float64Array).set(proto.subarray(b * D, (b + 1) * D), t * D);
        }
        const cands = Array.from({ length: B }, (_, b) =>
          this.nearestActions(proto, b * D, prev[b] as number),
        );
        const chosen = new Int32Array(B);
        // One-step look-ahead: the path value of S' for every candidate, batched.
        const rowsB: number[] = [];
        const rowsA: number[] = [];
        cands.forEach((c, b) => c.forEach((a) => (rowsB.push(b), rowsA.push(a))));
        const hc = this.gruCandidates(giTable, h, rowsB, rowsA);
        const vc = this.pathValue(this.headInput(hc, t + 1, gatherRows(W, rowsB), rowsA));
        let k = 0;
        const pick: number[] = [];
        cands.forEach((c, b) => {
          let bestI = 0;
          for (let i = 1; i < c.length; i++)
            if ((vc.data[k + i] as number) > (vc.data[k + bestI] as number)) bestI = i;
          if (mode === 'explore' && this.rng.uniform() < s.epsilon) bestI = this.rng.int(c.length);
          chosen[b] = c[bestI] as number;
          pick.push(k + bestI);
          k += c.length;
        });
        if (t < T - 1) h = gatherRows(hc, pick);
        for (let b = 0; b < B; b++) {
          const a = chosen[b] as number;
          (actions[b] as Int32Array)[t] = a;
          prev[b] = a;
          if (s.logProbAt === 'action') {
            // The executed action's embedding stands for the action in the Gaussian log-density.
            const e = this.pool.embeddings.subarray(a * D, (a + 1) * D);
            (protos[b] as Float64Array).set(e, t * D);
            let lp = -logStdSum - HALF_LOG_2PI * D;
            for (let j = 0; j < D; j++)
              lp -= 0.5 * (((e[j] as number) - (mu.data[b * D + j] as number)) / (std[j] as number)) ** 2;
            (logProbs[b] as Float64Array)[t] = lp;
          }
        }
      }
    });
    return prefs.map((w, b) => ({
      preference: w,
      path: Array.from(actions[b] as Int32Array, (a) => this.pool.stepOf(a)),
      actions: actions[b] as Int32Array,
      protos: protos[b] as Float64Array,
      logProbs: logProbs[b] as Float64Array,
      values: values[b] as Float64Array,
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

  /** PPO over `episodes` with their episode rewards: epochs x minibatches, Adam, gradient clipping. */
  update(episodes: readonly Episode[], rewards: readonly number[]): UpdateStats {
    const s = this.settings;
    if (episodes.length === 0)
      throw new InvalidArgumentError('no episodes to learn from', { field: 'episodes' });
    if (rewards.length !== episodes.length)
      throw new InvalidArgumentError(`${rewards.length} rewards for ${episodes.length} episodes`, {
        field: 'rewards',
      });
    rewards.forEach((r, i) => checkReward(r, `rewards[${i}]`));
    const T = s.tMax;
    for (const e of episodes) {
      if (e.actions.length !== T)
        throw new InvalidArgumentError(`episode of length ${e.actions.length}, the policy has T_max ${T}`, {
          field: 'episodes',
        });
    }
    const gae = episodes.map((e, i) => this.advantages(e, rewards[i] as number));
    let m = 0;
    let n = 0;
    for (const g of gae) {
      for (const a of g.adv) m += a;
      n += g.adv.length;
    }
    m /= n;
    let v = 0;
    for (const g of gae) for (const a of g.adv) v += (a - m) ** 2;
    const sd = Math.sqrt(v / n) + 1e-8;
    const normAdv = gae.map((g) => g.adv.map((a) => (a - m) / sd));
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
        );
        this.optimizer.zeroGrad();
        this.actorOptimizer.zeroGrad();
        backward(out.loss);
        const gradNorm = clipGradNorm(this.params.list, s.maxGradNorm);
        this.optimizer.step();
        this.actorOptimizer.step();
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
        this.pathValue(this.headInput(h, t, W, t === 0 ? null : eps.map((e) => e.actions[t - 1] as number))),
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
    for (let t = 0; t < T; t++) {
      const u = this.headInput(h, t, W, lastOf(t));
      const protoT = new Float64Array(E * D);
      eps.forEach((e, b) => {
        protoT.set(e.protos.subarray(t * D, (t + 1) * D), b * D);
        oldLp[t * E + b] = e.logProbs[t] as number;
        A[t * E + b] = (adv[b] as Float64Array)[t] as number;
        R[t * E + b] = ((ret[b] as Float64Array)[t] as number) / this.valueScale(t);
      });
      logps.push(gaussianLogProb(new Tensor(protoT, E, D), this.actorMean(u), this.logStd));
      vals.push(this.pathValue(u));
      h = this.gru.forward(this.stepInput(eps.map((e) => e.actions[t] as number)), h);
    }
    vals.push(this.pathValue(this.headInput(h, T, W, lastOf(T))));
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
    const loss = add(add(policyLoss, scale(valueLoss, s.valueCoef)), scale(entropy, -s.entropyCoef));
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

  /** Greedy V(S_0) and mean for a preference; used by tests and export checks. */
  initialOutputs(preference: readonly number[]): { mean: Float64Array; value: number } {
    const w = checkPreference(preference, this.settings.objectives);
    return noGrad(() => {
      const u = this.headInput(zeros(1, this.settings.gruHidden), 0, this.prefTensor([w]), null);
      return { mean: this.actorMean(u).data, value: this.pathValue(u).item() };
    });
  }
}
