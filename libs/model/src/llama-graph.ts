/**
 * The Llama-family decoder as ONNX graphs, one function per block (embedding, RMSNorm, RoPE,
 * grouped-query attention with a KV cache, SwiGLU MLP, final norm + head), composed into:
 * - an embedding graph, a decoder-layer graph and a head graph whose weights are graph INPUTS, so one
 *   session per layer shape runs any layer of any checkpoint (the inference-path runtime);
 * - a monolithic whole-model graph of one checkpoint with its weights as initializers (the reference).
 * Linear weights are fed transposed, [in, out], with q/k/v and gate/up concatenated along the output
 * dimension (one MatMul each), converted once when loaded.
 */
import type { LlamaArchitecture } from './config.js';
import { GraphBuilder, int, ints } from './onnx-graph.js';

/** Roles of a decoder layer's tensors as fed to the graph (q/k/v and gate/up fused into one MatMul each). */
export type LayerRole =
  | 'inputNorm'
  | 'qkv'
  | 'qkvBias'
  | 'o'
  | 'oBias'
  | 'postNorm'
  | 'gateUp'
  | 'gateUpBias'
  | 'down'
  | 'downBias';

export interface LayerTensorSpec {
  readonly role: LayerRole;
  /**
   * Names inside `model.layers.<i>.` of the HF checkpoint; several are concatenated along the output
   * dimension (q, k, v -> qkv; gate, up -> gateUp).
   */
  readonly hfNames: readonly string[];
  /** Whether the runtime feeds them transposed ([in, out] for a Linear's [out, in] weight). */
  readonly transpose: boolean;
  /** Shape as fed to the graph. */
  readonly dims: readonly number[];
}

/** The tensors a decoder layer of `arch` needs, in graph-input order. */
export function layerTensorSpecs(arch: LlamaArchitecture): LayerTensorSpec[] {
  const { hiddenSize: h, intermediateSize: m, numHeads, numKvHeads, headDim: d } = arch;
  const qkv = (numHeads + 2 * numKvHeads) * d;
  const attn = (names: string[], suffix: string) => names.map((n) => `self_attn.${n}_proj.${suffix}`);
  const mlpNames = (names: string[], suffix: string) => names.map((n) => `mlp.${n}_proj.${suffix}`);
  const specs: LayerTensorSpec[] = [
    { role: 'inputNorm', hfNames: ['input_layernorm.weight'], transpose: false, dims: [h] },
    { role: 'qkv', hfNames: attn(['q', 'k', 'v'], 'weight'), transpose: true, dims: [h, qkv] },
    { role: 'o', hfNames: attn(['o'], 'weight'), transpose: true, dims: [numHeads * d, h] },
    { role: 'postNorm', hfNames: ['post_attention_layernorm.weight'], transpose: false, dims: [h] },
    { role: 'gateUp', hfNames: mlpNames(['gate', 'up'], 'weight'), transpose: true, dims: [h, 2 * m] },
    { role: 'down', hfNames: mlpNames(['down'], 'weight'), transpose: true, dims: [m, h] },
  ];
  if (arch.qkvBias)
    specs.push({ role: 'qkvBias', hfNames: attn(['q', 'k', 'v'], 'bias'), transpose: false, dims: [qkv] });
  if (arch.oBias) specs.push({ role: 'oBias', hfNames: attn(['o'], 'bias'), transpose: false, dims: [h] });
  if (arch.mlpBias) {
    specs.push(
      { role: 'gateUpBias', hfNames: mlpNames(['gate', 'up'], 'bias'), transpose: false, dims: [2 * m] },
      { role: 'downBias', hfNames: mlpNames(['down'], 'bias'), transpose: false, dims: [h] },
    );
  }
  return specs;
}

/** Output sizes of the parts of a fused tensor, in `hfNames` order. */
export function fusedPartSizes(arch: LlamaArchitecture, role: LayerRole): number[] {
  const { numHeads, numKvHeads, headDim: d, intermediateSize: m, hiddenSize: h } = arch;
  if (role === 'qkv' || role === 'qkvBias') return [numHeads * d, numKvHeads * d, numKvHeads * d];
  if (role === 'gateUp' || role === 'gateUpBias') return [m, m];
  return [h]; // o, down, the norms and the unfused biases: one part of hidden width
}

/** Graph value names of one layer's weights, by role. */
export type LayerWeightValues = Partial<Record<LayerRole, string>>;

/** Values every decoder block of one forward pass shares. */
export interface BlockContext {
  /** [B, 1, S, D] cos and sin of the RoPE angles of the new tokens' positions (see ropeTables). */
  readonly ropeCos: string;
  readonly ropeSin: string;
  /** [B, 1, S, T] additive attention bias (0 or a large negative), T = past + S. */
  readonly attentionBias: string;
}

// ---- blocks ----

/** ids [B, S] -> hidden [B, S, H]: a row lookup in the embedding table [V, H]. */
export function embedding(g: GraphBuilder, inputIds: string, table: string): string {
  return g.op('Gather', [table, inputIds], { axis: int(0) }, 'embed');
}

/** RMSNorm over the last axis: w ⊙ x / sqrt(mean(x²) + eps). */
export function rmsNorm(g: GraphBuilder, x: string, weight: string, eps: number): string {
  const meanSquare = g.op(
    'ReduceMean',
    [g.op('Mul', [x, x], {}, 'square')],
    { axes: ints([-1]), keepdims: int(1) },
    'mean_square',
  );
  const invRms = g.op(
    'Reciprocal',
    [g.op('Sqrt', [g.op('Add', [meanSquare, g.constF32([eps], [], 'eps')])])],
    {},
    'inv_rms',
  );
  return g.op('Mul', [weight, g.op('Mul', [x, invRms])], {}, 'rms_norm');
}

/** cat(inv_freq, inv_freq), inv_freq_i = 1 / theta^(2i / D), rounded through float32 like HF. */
export function ropeFrequencies(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const out = new Float32Array(headDim);
  for (let i = 0; i < half; i++) {
    const exponent = Math.fround(Math.fround(2 * i) / headDim);
    const inv = Math.fround(1 / Math.fround(Math.pow(Math.fround(theta), exponent)));
    out[i] = inv;
    out[i + half] = inv;
  }
  return out;
}

/**
 * RoPE tables for positions [B, S]: cos, sin [B, 1, S, D], computed once per forward pass in
 * TypeScript and fed to every layer (instead of Sin/Cos ops in each layer graph). The angle is the
 * float32 product pos * inv_freq like HF's; cos and sin are rounded once from float64, which is at
 * least as accurate as any float32 library's.
 */
export function ropeTables(
  positionIds: BigInt64Array,
  headDim: number,
  theta: number,
): { cos: Float32Array; sin: Float32Array } {
  const invFreq = ropeFrequencies(headDim, theta);
  const cos = new Float32Array(positionIds.length * headDim);
  const sin = new Float32Array(positionIds.length * headDim);
  for (let t = 0; t < positionIds.length; t++) {
    const pos = Math.fround(Number(positionIds[t]!));
    for (let i = 0; i < headDim; i++) {
      const angle = Math.fround(pos * invFreq[i]!);
      cos[t * headDim + i] = Math.cos(angle);
      sin[t * headDim + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** x [B, N, S, D] rotated: x ⊙ cos + rotate_half(x) ⊙ sin, rotate_half(x) = cat(-x₂, x₁). */
export function applyRope(g: GraphBuilder, x: string, cos: string, sin: string, headDim: number): string {
  const [x1, x2] = g.opN(
    'Split',
    [x, g.constI64([headDim / 2, headDim / 2])],
    2,
    { axis: int(-1) },
    'rope_split',
  ) as [string, string];
  const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: int(-1) }, 'rotate_half');
  return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])], {}, 'rope');
}

/** x [.., in] @ wT [in, out] (+ b). */
export function linear(g: GraphBuilder, x: string, weightT: string, bias?: string): string {
  const y = g.op('MatMul', [x, weightT], {}, 'linear');
  return bias === undefined ? y : g.op('Add', [y, bias], {}, 'linear_bias');
}

/**
 * Grouped-query self-attention with a KV cache. x [B, S, H]; past key/value [B, KV, P, D];
 * returns the output [B, S, H] and the present key/value [B, KV, P+S, D]. Query heads h use KV head
 * h / G (G = heads / KV heads), so the G query heads of a KV head are folded into its rows.
 */
export function attention(
  g: GraphBuilder,
  x: string,
  w: LayerWeightValues,
  arch: LlamaArchitecture,
  ctx: BlockContext,
  pastKey: string,
  pastValue: string,
): { out: string; presentKey: string; presentValue: string } {
  const { numHeads: nh, numKvHeads: kv, headDim: d } = arch;
  const heads = (t: string, n: string): string =>
    g.op(
      'Transpose',
      [g.op('Reshape', [t, g.constI64([0, 0, -1, d])])],
      { perm: ints([0, 2, 1, 3]) },
      `${n}_heads`,
    ); // [B, n, S, D]
  const { ropeCos: cos, ropeSin: sin } = ctx;
  const [qLin, kLin, vLin] = g.opN(
    'Split',
    [linear(g, x, w.qkv!, w.qkvBias), g.constI64(fusedPartSizes(arch, 'qkv'))],
    3,
    { axis: int(-1) },
    'qkv_split',
  ) as [string, string, string];
  const q = applyRope(g, heads(qLin, 'q'), cos, sin, d); // [B, NH, S, D]
  const k = applyRope(g, heads(kLin, 'k'), cos, sin, d); // [B, KV, S, D]
  const v = heads(vLin, 'v');
  const presentKey = g.op('Concat', [pastKey, k], { axis: int(2) }, 'present_key'); // [B, KV, T, D]
  const presentValue = g.op('Concat', [pastValue, v], { axis: int(2) }, 'present_value');
  const qGrouped = g.op('Reshape', [q, g.constI64([0, kv, -1, d])], {}, 'q_grouped'); // [B, KV, G*S, D]
  const keyT = g.op('Transpose', [presentKey], { perm: ints([0, 1, 3, 2]) }, 'key_t'); // [B, KV, D, T]
  const scores = g.op(
    'Mul',
    [g.op('MatMul', [qGrouped, keyT], {}, 'qk'), g.constF32([1 / Math.sqrt(d)], [], 'scale')],
    {},
    'scores',
  ); // [B, KV, G*S, T]
  const masked = g.op(
    'Add',
    [g.op('Reshape', [scores, g.constI64([0, nh, -1, 0])]), ctx.attentionBias],
    {},
    'masked_scores',
  ); // [B, NH, S, T]
  const probs = g.op(
    'Reshape',
    [g.op('Softmax', [masked], { axis: int(-1) }), g.constI64([0, kv, -1, 0])],
    {},
    'probs',
  ); // [B, KV, G*S, T]
  const context = g.op(
    'Reshape',
    [g.op('MatMul', [probs, presentValue]), g.constI64([0, nh, -1, 0])],
    {},
    'context',
  ); // [B, NH, S, D]
  const merged = g.op(
    'Reshape',
    [g.op('Transpose', [context], { perm: ints([0, 2, 1, 3]) }), g.constI64([0, 0, nh * d])],
    {},
    'context_merged',
  ); // [B, S, NH*D]
  return { out: linear(g, merged, w.o!, w.oBias), presentKey, presentValue };
}

/** SwiGLU: down(silu(gate(x)) ⊙ up(x)), gate and up as one MatMul. */
export function mlp(g: GraphBuilder, x: string, w: LayerWeightValues, arch: LlamaArchitecture): string {
  const m = arch.intermediateSize;
  const [gate, up] = g.opN(
    'Split',
    [linear(g, x, w.gateUp!, w.gateUpBias), g.constI64([m, m])],
    2,
    { axis: int(-1) },
    'gate_up_split',
  ) as [string, string];
  const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate])], {}, 'silu');
  return linear(g, g.op('Mul', [silu, up], {}, 'swiglu'), w.down!, w.downBias);
}

/** One pre-norm decoder block: x + attn(norm(x)), then + mlp(norm(·)). */
export function decoderBlock(
  g: GraphBuilder,
  hidden: string,
  w: LayerWeightValues,
  arch: LlamaArchitecture,
  ctx: BlockContext,
  pastKey: string,
  pastValue: string,
): { hidden: string; presentKey: string; presentValue: string } {
  const attn = attention(
    g,
    rmsNorm(g, hidden, w.inputNorm!, arch.rmsNormEps),
    w,
    arch,
    ctx,
    pastKey,
    pastValue,
  );
  const afterAttn = g.op('Add', [hidden, attn.out], {}, 'residual_attn');
  const out = g.op(
    'Add',
    [afterAttn, mlp(g, rmsNorm(g, afterAttn, w.postNorm!, arch.rmsNormEps), w, arch)],
    {},
    'residual_mlp',
  );
  return { hidden: out, presentKey: attn.presentKey, presentValue: attn.presentValue };
}

/** hidden [B, S, H] -> logits [B, S, V]. */
export function finalNormHead(
  g: GraphBuilder,
  hidden: string,
  normWeight: string,
  headT: string,
  eps: number,
): string {
  return g.op('MatMul', [rmsNorm(g, hidden, normWeight, eps), headT], {}, 'lm_head');
}

// ---- graphs ----

export const EMBED_TABLE = 'embed_tokens';
export const FINAL_NORM = 'norm';
export const HEAD_T = 'lm_head_t';
export const ROPE_COS = 'rope_cos';
export const ROPE_SIN = 'rope_sin';

const kvDims = (arch: LlamaArchitecture, past: string) => ['batch', arch.numKvHeads, past, arch.headDim];

function blockInputs(g: GraphBuilder, headDim: number): BlockContext {
  return {
    ropeCos: g.input(ROPE_COS, 'float32', ['batch', 1, 'sequence', headDim]),
    ropeSin: g.input(ROPE_SIN, 'float32', ['batch', 1, 'sequence', headDim]),
    attentionBias: g.input('attention_bias', 'float32', ['batch', 1, 'sequence', 'total']),
  };
}

/** input_ids [B, S], embed_tokens [V, H] -> hidden [B, S, H]. */
export function buildEmbeddingGraph(arch: LlamaArchitecture): Uint8Array {
  const g = new GraphBuilder('embedding');
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const table = g.input(EMBED_TABLE, 'float32', [arch.vocabSize, arch.hiddenSize]);
  g.output(embedding(g, ids, table), 'hidden', 'float32', ['batch', 'sequence', arch.hiddenSize]);
  return g.encode();
}

/**
 * One decoder layer, weights as inputs named by their role: hidden, rope_cos, rope_sin, attention_bias,
 * past_key, past_value, then layerTensorSpecs(arch) -> hidden_out, present_key, present_value.
 */
export function buildDecoderLayerGraph(arch: LlamaArchitecture): Uint8Array {
  const g = new GraphBuilder('decoder_layer');
  const hidden = g.input('hidden', 'float32', ['batch', 'sequence', arch.hiddenSize]);
  const ctx = blockInputs(g, arch.headDim);
  const pastKey = g.input('past_key', 'float32', kvDims(arch, 'past'));
  const pastValue = g.input('past_value', 'float32', kvDims(arch, 'past'));
  const w: LayerWeightValues = {};
  for (const spec of layerTensorSpecs(arch)) w[spec.role] = g.input(spec.role, 'float32', spec.dims);
  const out = decoderBlock(g, hidden, w, arch, ctx, pastKey, pastValue);
  g.output(out.hidden, 'hidden_out', 'float32', ['batch', 'sequence', arch.hiddenSize]);
  g.output(out.presentKey, 'present_key', 'float32', kvDims(arch, 'total'));
  g.output(out.presentValue, 'present_value', 'float32', kvDims(arch, 'total'));
  return g.encode();
}

/** hidden [B, S, H], norm [H], lm_head_t [H, V] -> logits [B, S, V]. */
export function buildHeadGraph(arch: LlamaArchitecture): Uint8Array {
  const g = new GraphBuilder('head');
  const hidden = g.input('hidden', 'float32', ['batch', 'sequence', arch.hiddenSize]);
  const norm = g.input(FINAL_NORM, 'float32', [arch.hiddenSize]);
  const head = g.input(HEAD_T, 'float32', [arch.hiddenSize, arch.vocabSize]);
  g.output(finalNormHead(g, hidden, norm, head, arch.rmsNormEps), 'logits', 'float32', [
    'batch',
    'sequence',
    arch.vocabSize,
  ]);
  return g.encode();
}

/** The converted weights of one whole checkpoint, for the monolithic graph. */
export interface ModelWeights {
  readonly embedTokens: Float32Array; // [V, H]
  readonly norm: Float32Array; // [H]
  readonly headT: Float32Array; // [H, V]
  readonly layers: readonly Readonly<Partial<Record<LayerRole, Float32Array>>>[];
}

/**
 * The whole model of one checkpoint, weights as initializers: input_ids, rope_cos, rope_sin,
 * attention_bias, past_key_<l>, past_value_<l> -> logits, present_key_<l>, present_value_<l>.
 */
export function buildMonolithicGraph(arch: LlamaArchitecture, weights: ModelWeights): Uint8Array {
  const g = new GraphBuilder('llama');
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const ctx = blockInputs(g, arch.headDim);
  let hidden = embedding(
    g,
    ids,
    g.initializer(EMBED_TABLE, weights.embedTokens, [arch.vocabSize, arch.hiddenSize]),
  );
  const specs = layerTensorSpecs(arch);
  for (let l = 0; l < arch.numLayers; l++) {
    const pastKey = g.input(`past_key_${l}`, 'float32', kvDims(arch, 'past'));
    const pastValue = g.input(`past_value_${l}`, 'float32', kvDims(arch, 'past'));
    const w: LayerWeightValues = {};
    for (const spec of specs)
      w[spec.role] = g.initializer(`layers.${l}.${spec.role}`, weights.layers[l]![spec.role]!, spec.dims);
    const out = decoderBlock(g, hidden, w, arch, ctx, pastKey, pastValue);
    hidden = out.hidden;
    g.output(out.presentKey, `present_key_${l}`, 'float32', kvDims(arch, 'total'));
    g.output(out.presentValue, `present_value_${l}`, 'float32', kvDims(arch, 'total'));
  }
  const logits = finalNormHead(
    g,
    hidden,
    g.initializer(FINAL_NORM, weights.norm, [arch.hiddenSize]),
    g.initializer(HEAD_T, weights.headT, [arch.hiddenSize, arch.vocabSize]),
    arch.rmsNormEps,
  );
  g.output(logits, 'logits', 'float32', ['batch', 'sequence', arch.vocabSize]);
  return g.encode();
}
