/**
 * ONNX export of a path policy (built with @hm3/model's GraphBuilder) and its runtime on
 * onnxruntime-node. Three graphs, float32, the weights as initializers:
 * - encoder.onnx: one GRU step of the state encoder, hidden [B, H] + action int64 [B] -> next_hidden [B, H];
 * - actor.onnx: S_t -> mean [B, D] of the Gaussian proto-action (with preferenceActor, w . the
 *   per-objective means), and log_std [1, D];
 * - critic.onnx: S_t -> path_value [B, 1] (the expected episode reward; see PathPolicy.pathValue;
 *   with preferenceCritic, w . the per-objective values).
 * S_t is given as hidden [B, H], position int64 [B] (t in 0..T_max), last_action int64 [B] (the pool
 * size A for none, at t = 0) and, for an amortised policy, preference float32 [B, K].
 * policy.json carries what the Wolpertinger selection needs besides the networks: the pool and the settings.
 */
import { InvalidArgumentError } from '@hm3/errors';
import { GraphBuilder } from '@hm3/model';
import { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { LayerPool } from './layer-pool.js';
import type { PathStep, PoolModel } from './layer-pool.js';
import type { PathPolicy } from './path-policy.js';
import { checkPreference } from './reward.js';
import type { PolicySettings } from './settings.js';

export const ONNX_POLICY_FILES = ['encoder.onnx', 'actor.onnx', 'critic.onnx', 'policy.json'] as const;

export interface OnnxPolicyExport {
  readonly encoder: Uint8Array;
  readonly actor: Uint8Array;
  readonly critic: Uint8Array;
  /** JSON: {format, pool, settings}. */
  readonly policyJson: string;
}

const FORMAT = 'hm3.rl.path-policy.onnx/1';
const axis = (value: number): { int: number } => ({ int: value });

function weight(policy: PathPolicy, name: string): { data: Float32Array; dims: number[] } {
  const t = policy.params.byName.get(name);
  if (t === undefined) throw new InvalidArgumentError(`policy has no parameter ${name}`, { field: name });
  return { data: Float32Array.from(t.data), dims: [t.rows, t.cols] };
}

function init(g: GraphBuilder, policy: PathPolicy, name: string): string {
  const w = weight(policy, name);
  return g.initializer(name, w.data, w.dims);
}

/** x [B, in] W [in, out] + b [1, out]. */
function linear(g: GraphBuilder, policy: PathPolicy, x: string, name: string): string {
  return g.op(
    'Add',
    [g.op('MatMul', [x, init(g, policy, `${name}.weight`)], {}, name), init(g, policy, `${name}.bias`)],
    {},
    name,
  );
}

function encoderGraph(policy: PathPolicy): GraphBuilder {
  const s = policy.settings;
  const pool = policy.pool;
  const H = s.gruHidden;
  const g = new GraphBuilder('hm3-path-policy-encoder');
  const hidden = g.input('hidden', 'float32', ['batch', H]);
  const action = g.input('action', 'int64', ['batch']);
  // The GRU input of every action, [A, in]: model embedding, layer embedding, standardised features.
  const me = policy.params.byName.get('encoder.model_embedding');
  const le = policy.params.byName.get('encoder.layer_embedding');
  if (me === undefined || le === undefined)
    throw new InvalidArgumentError('policy has no encoder embeddings', { field: 'encoder' });
  const F = pool.featureDim;
  const inDim = me.cols + le.cols + F;
  const table = new Float32Array(pool.size * inDim);
  for (let a = 0; a < pool.size; a++) {
    const m = pool.actionModel[a] as number;
    const l = pool.actionLayer[a] as number;
    table.set(me.data.subarray(m * me.cols, (m + 1) * me.cols), a * inDim);
    table.set(le.data.subarray(l * le.cols, (l + 1) * le.cols), a * inDim + me.cols);
    table.set(pool.features.subarray(a * F, (a + 1) * F), a * inDim + me.cols + le.cols);
  }
  const x = g.op('Gather', [g.initializer('encoder.step_input', table, [pool.size, inDim]), action], {
    axis: axis(0),
  });
  const gi = g.op('Add', [
    g.op('MatMul', [x, init(g, policy, 'encoder.gru.weight_ih')]),
    init(g, policy, 'encoder.gru.bias_ih'),
  ]); // [B, 3H]
  const gh = g.op('Add', [
    g.op('MatMul', [hidden, init(g, policy, 'encoder.gru.weight_hh')]),
    init(g, policy, 'encoder.gru.bias_hh'),
  ]); // [B, 3H]
  const parts = g.constI64([H, H, H]);
  const [ir, iz, inn] = g.opN('Split', [gi, parts], 3, { axis: axis(1) }, 'gi') as [string, string, string];
  const [hr, hz, hn] = g.opN('Split', [gh, parts], 3, { axis: axis(1) }, 'gh') as [string, string, string];
  const r = g.op('Sigmoid', [g.op('Add', [ir, hr])], {}, 'reset');
  const z = g.op('Sigmoid', [g.op('Add', [iz, hz])], {}, 'update');
  const n = g.op('Tanh', [g.op('Add', [inn, g.op('Mul', [r, hn])])], {}, 'candidate');
  const next = g.op('Add', [n, g.op('Mul', [z, g.op('Sub', [hidden, n])])], {}, 'next_hidden');
  g.output(next, 'next_hidden', 'float32', ['batch', H]);
  return g;
}

/** The head input u = [h; one-hot(t); embedding of the last action (zeros for none); w if amortised]. */
function headInput(g: GraphBuilder, policy: PathPolicy): string {
  const s = policy.settings;
  const pool = policy.pool;
  const P = s.tMax + 1;
  const D = pool.embeddingDim;
  const hidden = g.input('hidden', 'float32', ['batch', s.gruHidden]);
  const position = g.input('position', 'int64', ['batch']);
  const lastAction = g.input('last_action', 'int64', ['batch']);
  const eye = new Float32Array(P * P);
  for (let i = 0; i < P; i++) eye[i * P + i] = 1;
  const emb = new Float32Array((pool.size + 1) * D); // the last row: "no action yet"
  emb.set(Float32Array.from(pool.embeddings), 0);
  const preference = s.amortised ? g.input('preference', 'float32', ['batch', s.objectives]) : null;
  const lastEmb = g.op('Gather', [g.initializer('action_embedding', emb, [pool.size + 1, D]), lastAction], {
    axis: axis(0),
  }); // [B, D]
  const posOneHot = g.op('Gather', [g.initializer('position_one_hot', eye, [P, P]), position], {
    axis: axis(0),
  }); // [B, T + 1]
  const parts = [hidden, posOneHot, lastEmb];
  if (s.positionActionFeatures) {
    // one-hot(t - 1) [B, T] (zeros at t = 0) x the last action's embedding [B, D] -> [B, T * D].
    const T = s.tMax;
    const prevEye = new Float32Array(P * T);
    for (let t = 1; t < P; t++) prevEye[t * T + t - 1] = 1;
    const prev = g.op('Gather', [g.initializer('previous_step_one_hot', prevEye, [P, T]), position], {
      axis: axis(0),
    });
    const outer = g.op(
      'Mul',
      [g.op('Unsqueeze', [prev, g.constI64([2])]), g.op('Unsqueeze', [lastEmb, g.constI64([1])])],
      {},
      'position_action',
    ); // [B, T, D]
    const posAct = g.op('Reshape', [outer, g.constI64([0, T * D])]); // [B, T * D]
    parts.push(posAct);
    if (preference !== null) {
      // w (x) that block: [B, K, 1] x [B, 1, T * D] -> [B, K * T * D].
      const K = s.objectives;
      const wOuter = g.op(
        'Mul',
        [g.op('Unsqueeze', [preference, g.constI64([2])]), g.op('Unsqueeze', [posAct, g.constI64([1])])],
        {},
        'preference_position_action',
      );
      parts.push(g.op('Reshape', [wOuter, g.constI64([0, K * T * D])]));
      // w (x) one-hot(t): [B, K, 1] x [B, 1, T + 1] -> [B, K * (T + 1)].
      const wPos = g.op(
        'Mul',
        [g.op('Unsqueeze', [preference, g.constI64([2])]), g.op('Unsqueeze', [posOneHot, g.constI64([1])])],
        {},
        'preference_position',
      );
      parts.push(g.op('Reshape', [wPos, g.constI64([0, K * P])]));
    }
  }
  if (preference !== null) parts.push(preference);
  return g.op('Concat', parts, { axis: axis(1) }, 'state');
}

function actorGraph(policy: PathPolicy): GraphBuilder {
  const g = new GraphBuilder('hm3-path-policy-actor');
  const u = headInput(g, policy);
  let mean = linear(g, policy, g.op('Tanh', [linear(g, policy, u, 'actor.hidden')]), 'actor.mean');
  const D = policy.pool.embeddingDim;
  const K = policy.meanOutputs;
  if (K > 1) {
    // preferenceActor: w . m(S), the per-objective means weighted by the preference:
    // [B, 1, K] x [B, K, D] -> [B, 1, D] -> [B, D].
    const perObjective = g.op('Reshape', [mean, g.constI64([0, K, D])]);
    const w = g.op('Unsqueeze', ['preference', g.constI64([1])]);
    mean = g.op('Reshape', [g.op('MatMul', [w, perObjective]), g.constI64([0, D])], {}, 'weighted_mean');
  }
  g.output(mean, 'mean', 'float32', ['batch', D]);
  g.output(init(g, policy, 'actor.log_std'), 'log_std', 'float32', [1, D]);
  return g;
}

function criticGraph(policy: PathPolicy): GraphBuilder {
  const g = new GraphBuilder('hm3-path-policy-critic');
  const u = headInput(g, policy);
  let v = linear(g, policy, g.op('Tanh', [linear(g, policy, u, 'critic.hidden')]), 'critic.value');
  const K = policy.valueOutputs;
  if (K > 1) {
    // preferenceCritic: w . u(S), the per-objective values weighted by the preference -> [B, 1].
    const ones = g.initializer('objective_sum', new Float32Array(K).fill(1), [K, 1]);
    v = g.op('MatMul', [g.op('Mul', [v, 'preference']), ones], {}, 'weighted_value');
  }
  g.output(v, 'path_value', 'float32', ['batch', 1]);
  return g;
}

/** The encoder, actor and critic as ONNX models, and policy.json (pool and settings). */
export function exportPolicyOnnx(policy: PathPolicy): OnnxPolicyExport {
  return {
    encoder: encoderGraph(policy).encode(),
    actor: actorGraph(policy).encode(),
    critic: criticGraph(policy).encode(),
    policyJson: JSON.stringify({ format: FORMAT, pool: policy.pool.models, settings: policy.settings }),
  };
}

export interface HeadsInput {
  /** [B, H] row-major. */
  readonly hidden: Float32Array;
  /** t per row, 0..T_max. */
  readonly positions: ArrayLike<number>;
  /** Last action per row; pool size A for none. */
  readonly lastActions: ArrayLike<number>;
  /** [B, K] row-major; amortised policies only. */
  readonly preferences?: Float32Array;
}

/** The exported policy served on onnxruntime-node: the three networks and the greedy Wolpertinger path. */
export class OnnxPathPolicy {
  private constructor(
    readonly pool: LayerPool,
    readonly settings: PolicySettings,
    private readonly encoder: InferenceSession,
    private readonly actor: InferenceSession,
    private readonly critic: InferenceSession,
  ) {}

  static async create(files: OnnxPolicyExport): Promise<OnnxPathPolicy> {
    let meta: { format?: unknown; pool: PoolModel[]; settings: PolicySettings };
    try {
      meta = JSON.parse(files.policyJson) as typeof meta;
    } catch (error) {
      throw new InvalidArgumentError('policy.json is not JSON', { file: 'policy.json' }, error);
    }
    if (meta.format !== FORMAT)
      throw new InvalidArgumentError(`policy.json: format ${String(meta.format)}, expected ${FORMAT}`, {
        file: 'policy.json',
      });
    const sessions = await Promise.allSettled([
      InferenceSession.create(files.encoder),
      InferenceSession.create(files.actor),
      InferenceSession.create(files.critic),
    ]);
    const failed = sessions.find((s) => s.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(sessions.map((s) => (s.status === 'fulfilled' ? s.value.release() : undefined)));
      throw new InvalidArgumentError(
        `an exported policy graph does not load: ${String(failed.reason)}`,
        { file: 'onnx' },
        failed.reason,
      );
    }
    const [enc, act, cri] = sessions.map((s) => (s as PromiseFulfilledResult<InferenceSession>).value) as [
      InferenceSession,
      InferenceSession,
      InferenceSession,
    ];
    return new OnnxPathPolicy(new LayerPool(meta.pool), meta.settings, enc, act, cri);
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.actor.release(), this.critic.release()]);
  }

  /** One GRU step: h [B, H] and actions [B] -> h' [B, H]. */
  async encode(hidden: Float32Array, actions: ArrayLike<number>): Promise<Float32Array> {
    const B = actions.length;
    const out = await this.encoder.run({
      hidden: new OrtTensor('float32', hidden, [B, this.settings.gruHidden]),
      action: new OrtTensor('int64', BigInt64Array.from(Array.from(actions, BigInt)), [B]),
    });
    return out['next_hidden']!.data as Float32Array;
  }

  private feeds(x: HeadsInput): Record<string, OrtTensor> {
    const B = x.positions.length;
    const feeds: Record<string, OrtTensor> = {
      hidden: new OrtTensor('float32', x.hidden, [B, this.settings.gruHidden]),
      position: new OrtTensor('int64', BigInt64Array.from(Array.from(x.positions, BigInt)), [B]),
      last_action: new OrtTensor('int64', BigInt64Array.from(Array.from(x.lastActions, BigInt)), [B]),
    };
    if (this.settings.amortised)
      feeds['preference'] = new OrtTensor(
        'float32',
        x.preferences ?? new Float32Array(B * this.settings.objectives),
        [B, this.settings.objectives],
      );
    return feeds;
  }

  async actorForward(x: HeadsInput): Promise<{ mean: Float32Array; logStd: Float32Array }> {
    const out = await this.actor.run(this.feeds(x));
    return { mean: out['mean']!.data as Float32Array, logStd: out['log_std']!.data as Float32Array };
  }

  async criticForward(x: HeadsInput): Promise<Float32Array> {
    return (await this.critic.run(this.feeds(x)))['path_value']!.data as Float32Array;
  }

  /** The greedy path for a preference: the actor's mean, its M' nearest actions, the critic's look-ahead. */
  async greedyPath(preference: readonly number[]): Promise<PathStep[]> {
    const s = this.settings;
    const w = Float32Array.from(checkPreference(preference, s.objectives));
    const D = this.pool.embeddingDim;
    const A = this.pool.size;
    let hidden = new Float32Array(s.gruHidden);
    let last = A;
    const path: PathStep[] = [];
    for (let t = 0; t < s.tMax; t++) {
      const { mean } = await this.actorForward({
        hidden,
        positions: [t],
        lastActions: [last],
        preferences: w,
      });
      const cands = nearest(this.pool, mean, s.mPrime, last === A ? -1 : last, D);
      const n = cands.length;
      const hs = new Float32Array(n * s.gruHidden);
      for (let i = 0; i < n; i++) hs.set(hidden, i * s.gruHidden);
      const next = await this.encode(hs, cands);
      const prefs = new Float32Array(n * s.objectives);
      for (let i = 0; i < n; i++) prefs.set(w, i * s.objectives);
      const v = await this.criticForward({
        hidden: next,
        positions: cands.map(() => t + 1),
        lastActions: cands,
        preferences: prefs,
      });
      let best = 0;
      for (let i = 1; i < n; i++) if ((v[i] as number) > (v[best] as number)) best = i;
      last = cands[best] as number;
      hidden = next.slice(best * s.gruHidden, (best + 1) * s.gruHidden);
      path.push(this.pool.stepOf(last));
    }
    return path;
  }
}

/** The M' valid actions nearest to `proto` (nearest first), as PathPolicy.nearestActions. */
function nearest(pool: LayerPool, proto: ArrayLike<number>, m: number, prev: number, D: number): number[] {
  const E = pool.embeddings;
  const scored: { a: number; d2: number }[] = [];
  for (let a = 0; a < pool.size; a++) {
    if (prev >= 0 && !pool.compatible(prev, a)) continue;
    let d2 = 0;
    for (let j = 0; j < D; j++) d2 += ((proto[j] as number) - (E[a * D + j] as number)) ** 2;
    scored.push({ a, d2 });
  }
  scored.sort((x, y) => x.d2 - y.d2 || x.a - y.a);
  return scored.slice(0, m).map((x) => x.a);
}
