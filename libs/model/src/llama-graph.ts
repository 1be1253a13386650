/**
 * The Llama-family decoder as ONNX graphs, one function per block (embedding, RMSNorm, RoPE,
 * grouped-query attention with a KV cache, SwiGLU MLP, final norm + head), composed into:
 * - an embedding graph, a decoder-layer graph and a head graph whose weights are graph INPUTS, so one
 *   session per layer shape runs any layer of any checkpoint (the inference-path runtime);
 * - a monolithic whole-model graph of one checkpoint with its weights as initializers (the reference).
 * Linear weights are fed transposed, [in, out], converted once when loaded; q/k/v and gate/up stay separate
 * MatMuls (a fused MatMul's Split copies the activations, which costs more than the extra calls).
 */
import type { LlamaArchitecture } from './config.js';
import { GraphBuilder, int, ints } from './onnx-graph.js';

/** Roles of a decoder layer's tensors as fed to the graph. */
export type LayerRole =
  | 'inputNorm'
  | 'q'
  | 'k'
  | 'v'
  | 'qBias'
  | 'kBias'
  | 'vBias'
  | 'o'
  | 'oBias'
  | 'postNorm'
  | 'gate'
  | 'up'
  | 'gateBias'
  | 'upBias'
  | 'down'
  | 'downBias';

export interface LayerTensorSpec {
  readonly role: LayerRole;
  /** Name inside `model.layers.<i>.` of the HF checkpoint. */
  readonly hfName: string;
  /** Whether the runtime feeds it transposed ([in, out] for a Linear's [out, in] weight). */
  readonly transpose: boolean;
  /** Shape as fed to the graph. */
  readonly dims: readonly number[];
}

/** The tensors a decoder layer of `arch` needs, in graph-input order. */
export function layerTensorSpecs(arch: LlamaArchitecture): LayerTensorSpec[] {
  const { hiddenSize: h, intermediateSize: m, numHeads, numKvHeads, headDim: d } = arch;
  const linear = (role: LayerRole, hfName: string, dims: [number, number]): LayerTensorSpec => ({
    role,
    hfName: `${hfName}.weight`,
    transpose: true,
    dims,
  });
  const vector = (role: LayerRole, hfName: string, size: number): LayerTensorSpec => ({
    role,
    hfName,
    transpose: false,
    dims: [size],
  });
  const specs: LayerTensorSpec[] = [
    vector('inputNorm', 'input_layernorm.weight', h),
    linear('q', 'self_attn.q_proj', [h, numHeads * d]),
    linear('k', 'self_attn.k_proj', [h, numKvHeads * d]),
    linear('v', 'self_attn.v_proj', [h, numKvHeads * d]),
    linear('o', 'self_attn.o_proj', [numHeads * d, h]),
    vector('postNorm', 'post_attention_layernorm.weight', h),
    linear('gate', 'mlp.gate_proj', [h, m]),
    linear('up', 'mlp.up_proj', [h, m]),
    linear('down', 'mlp.down_proj', [m, h]),
  ];
  if (arch.qkvBias)
    specs.push(
      vector('qBias', 'self_attn.q_proj.bias', numHeads * d),
      vector('kBias', 'self_attn.k_proj.bias', numKvHeads * d),
      vector('vBias', 'self_attn.v_proj.bias', numKvHeads * d),
    );
  if (arch.oBias) specs.push(vector('oBias', 'self_attn.o_proj.bias', h));
  if (arch.mlpBias)
    specs.push(
      vector('gateBias', 'mlp.gate_proj.bias', m),
      vector('upBias', 'mlp.up_proj.bias', m),
      vector('downBias', 'mlp.down_proj.bias', h),
    );
  return specs;
}

/** Graph value names of one layer's weights, by role. */
export type LayerWeightValues = Partial<Record<LayerRole, string>>;

/** Values every decoder block of one forward pass shares. */
export interface BlockContext {
  /** [B, 1, S, D] cos and signed sin, cat(-sin₁, sin₂), of the new tokens' RoPE angles (see ropeTables). */
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

/**
 * RMSNorm over the last axis: w ⊙ (x · 1/sqrt(mean(x²) + eps)), rounded like PyTorch's fp32 CPU kernels
 * (see torchRowSum): mean = torch's sum / H, then x · (1 / sqrt(mean + eps)), then w ⊙ ·.
 */
export function rmsNorm(g: GraphBuilder, x: string, weight: string, eps: number, size: number): string {
  const square = g.op('Mul', [x, x], {}, 'square');
  const meanSquare = g.op(
    'Div',
    [torchRowSum(g, square, size), g.constF32([size], [], 'size')],
    {},
    'mean_square',
  );
  const rms = g.op('Sqrt', [g.op('Add', [meanSquare, g.constF32([eps], [], 'eps')])], {}, 'rms');
  // Reciprocal, not Div(1, ·): onnxruntime's DivMulFusion would turn x * (1 / rms) into x / rms
  const invRms = g.op('Reciprocal', [rms], {}, 'inv_rms');
  return g.op('Mul', [weight, g.op('Mul', [x, invRms])], {}, 'rms_norm');
}

/** Vector width and interleaved accumulators of PyTorch's fp32 CPU sum over a contiguous axis. */
const TORCH_SUM_LANES = 8;
const TORCH_SUM_ILP = 4;

/**
 * Sum over the last axis (size `size`, keepdims) in the order of PyTorch's CPU sum kernel
 * (ATen SumKernel.cpp, vectorized_inner_sum with 8-lane vectors and 4 interleaved accumulators): vector j
 * of the row goes to accumulator j mod 4 (added in sequence), the 4 accumulators are added in sequence,
 * then the 8 lanes in sequence. Matches torch bit for bit (checked against torch 2.9 on the zoo) when
 * size is a multiple of 32 and under 512 (no cascade levels); any other size falls back to ReduceSum.
 */
export function torchRowSum(g: GraphBuilder, x: string, size: number): string {
  const width = TORCH_SUM_LANES * TORCH_SUM_ILP;
  const rows = size / width;
  if (size % width !== 0 || rows >= 16)
    return g.op('ReduceSum', [x, g.constI64([-1])], { keepdims: int(1) }, 'row_sum');
  const chain = (parts: string[]): string =>
    parts.slice(1).reduce((acc, p) => g.op('Add', [acc, p], {}, 'row_sum_add'), parts[0]!);
  const split = (t: string, n: number, each: number): string[] =>
    n === 1
      ? [t]
      : g.opN(
          'Split',
          [t, g.constI64(new Array<number>(n).fill(each))],
          n,
          { axis: int(-1) },
          'row_sum_split',
        );
  // chunk j of `width` elements holds vectors ILP*j .. ILP*j + ILP-1, one per accumulator
  const accumulators = chain(split(x, rows, width)); // [.., ILP * LANES]
  const lanes = chain(split(accumulators, TORCH_SUM_ILP, TORCH_SUM_LANES)); // [.., LANES]
  return chain(split(lanes, TORCH_SUM_LANES, 1)); // [.., 1]
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
 * least as accurate as any float32 library's. signedSin = cat(-sin₁, sin₂) per row is what the graphs
 * take as rope_sin (see applyRope).
 */
export function ropeTables(
  positionIds: BigInt64Array,
  headDim: number,
  theta: number,
): { cos: Float32Array; sin: Float32Array; signedSin: Float32Array } {
  const invFreq = ropeFrequencies(headDim, theta);
  const cos = new Float32Array(positionIds.length * headDim);
  const sin = new Float32Array(positionIds.length * headDim);
  const first = new Map<bigint, number>(); // position -> first row holding it (rows repeat across a batch)
  for (let t = 0; t < positionIds.length; t++) {
    const position = positionIds[t]!;
    const seen = first.get(position);
    if (seen !== undefined) {
      cos.copyWithin(t * headDim, seen * headDim, (seen + 1) * headDim);
      sin.copyWithin(t * headDim, seen * headDim, (seen + 1) * headDim);
      continue;
    }
    first.set(position, t);
    const pos = Math.fround(Number(position));
    for (let i = 0; i < headDim; i++) {
      const angle = Math.fround(pos * invFreq[i]!);
      cos[t * headDim + i] = Math.cos(angle);
      sin[t * headDim + i] = Math.sin(angle);
    }
  }
  const signedSin = sin.slice();
  for (let t = 0; t < positionIds.length; t++)
    for (let i = 0; i < headDim / 2; i++) signedSin[t * headDim + i] = -sin[t * headDim + i]!;
  return { cos, sin, signedSin };
}

/**
 * x [B, N, S, D] rotated: x ⊙ cos + rotate_half(x) ⊙ sin, rotate_half(x) = cat(-x₂, x₁), computed as
 * x ⊙ cos + cat(x₂, x₁) ⊙ signedSin with signedSin = cat(-sin₁, sin₂): the same bits ((-a)·b = a·(-b)
 * exactly) without a Neg per layer.
 */
export function applyRope(
  g: GraphBuilder,
  x: string,
  cos: string,
  signedSin: string,
  headDim: number,
): string {
  const [x1, x2] = g.opN(
    'Split',
    [x, g.constI64([headDim / 2, headDim / 2])],
    2,
    { axis: int(-1) },
    'rope_split',
  ) as [string, string];
  const swapped = g.op('Concat', [x2, x1], { axis: int(-1) }, 'swap_halves');
  return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [swapped, signedSin])], {}, 'rope');
}

/** x [.., in] @ wT [in, out] (+ b). */
export function linear(g: GraphBuilder, x: string, weightT: string, bias?: string): string {
  const y = g.op('MatMul', [x, weightT], {}, 'linear');
  return bias === undefined ? y : g.op('Add', [y, bias], {}, 'linear_bias');
}

/** A decoder block's KV cache inputs: the past key/value [P, B, KV, D] (position-major). */
export interface PastValues {
  readonly key: string;
  readonly value: string;
}

/**
 * Grouped-query self-attention, with a KV cache when `past` is given. x [B, S, H]; returns the output
 * [B, S, H] and, with a cache, the new tokens' key/value [S, B, KV, D] (position-major, so the runtime
 * appends a step's entries in place). Query heads h use KV head h / G (G = heads / KV heads), so the
 * G query heads of a KV head are folded into its rows.
 */
export function attention(
  g: GraphBuilder,
  x: string,
  w: LayerWeightValues,
  arch: LlamaArchitecture,
  ctx: BlockContext,
  past?: PastValues,
): { out: string; newKey?: string; newValue?: string } {
  const { numHeads: nh, numKvHeads: kv, headDim: d } = arch;
  const heads = (t: string, n: string): string =>
    g.op(
      'Transpose',
      [g.op('Reshape', [t, g.constI64([0, 0, -1, d])])],
      { perm: ints([0, 2, 1, 3]) },
      `${n}_heads`,
    ); // [B, n, S, D]
  const { ropeCos: cos, ropeSin: sin } = ctx;
  const q = applyRope(g, heads(linear(g, x, w.q!, w.qBias), 'q'), cos, sin, d); // [B, NH, S, D]
  const k = applyRope(g, heads(linear(g, x, w.k!, w.kBias), 'k'), cos, sin, d); // [B, KV, S, D]
  const v = heads(linear(g, x, w.v!, w.vBias), 'v');
  const toHeadMajor = (t: string, n: string) => g.op('Transpose', [t], { perm: ints([1, 2, 0, 3]) }, n);
  const toPositionMajor = (t: string, n: string) => g.op('Transpose', [t], { perm: ints([2, 0, 1, 3]) }, n);
  const withPast = (pastT: string, t: string, n: string) =>
    g.op('Concat', [toHeadMajor(pastT, `past_${n}`), t], { axis: int(2) }, `present_${n}`);
  const presentKey = past ? withPast(past.key, k, 'key') : k; // [B, KV, T, D]
  const presentValue = past ? withPast(past.value, v, 'value') : v;
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
  const out = linear(g, merged, w.o!, w.oBias);
  if (!past) return { out };
  return { out, newKey: toPositionMajor(k, 'new_key'), newValue: toPositionMajor(v, 'new_value') }; // [S, B, KV, D]
}

/** SwiGLU: down(silu(gate(x)) ⊙ up(x)). */
export function mlp(g: GraphBuilder, x: string, w: LayerWeightValues): string {
  const gate = linear(g, x, w.gate!, w.gateBias);
  const up = linear(g, x, w.up!, w.upBias);
  // silu(x) = x / (1 + exp(-x)), the form PyTorch's CPU kernel rounds (x * sigmoid(x) differs in the last bit)
  const silu = g.op(
    'Div',
    [gate, g.op('Add', [g.constF32([1], [], 'one'), g.op('Exp', [g.op('Neg', [gate])])])],
    {},
    'silu',
  );
  return linear(g, g.op('Mul', [silu, up], {}, 'swiglu'), w.down!, w.downBias);
}

/** One pre-norm decoder block: x + attn(norm(x)), then + mlp(norm(·)). */
export function decoderBlock(
  g: GraphBuilder,
  hidden: string,
  w: LayerWeightValues,
  arch: LlamaArchitecture,
  ctx: BlockContext,
  past?: PastValues,
): { hidden: string; newKey?: string; newValue?: string } {
  const attn = attention(
    g,
    rmsNorm(g, hidden, w.inputNorm!, arch.rmsNormEps, arch.hiddenSize),
    w,
    arch,
    ctx,
    past,
  );
  const afterAttn = g.op('Add', [hidden, attn.out], {}, 'residual_attn');
  const out = g.op(
    'Add',
    [afterAttn, mlp(g, rmsNorm(g, afterAttn, w.postNorm!, arch.rmsNormEps, arch.hiddenSize), w)],
    {},
    'residual_mlp',
  );
  return { ...attn, hidden: out };
}

/** hidden [B, S, H] -> logits [B, S, V]. */
export function finalNormHead(
  g: GraphBuilder,
  hidden: string,
  normWeight: string,
  headT: string,
  eps: number,
  size: number,
): string {
  return g.op('MatMul', [rmsNorm(g, hidden, normWeight, eps, size), headT], {}, 'lm_head');
}

// ---- graphs ----

export const EMBED_TABLE = 'embed_tokens';
export const FINAL_NORM = 'norm';
export const HEAD_T = 'lm_head_t';
export const ROPE_COS = 'rope_cos';
export const ROPE_SIN = 'rope_sin';

/** KV cache entries are position-major: [positions, B, KV, D]. */
const kvDims = (arch: LlamaArchitecture, positions: string) => [
  positions,
  'batch',
  arch.numKvHeads,
  arch.headDim,
];

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
 * past_key, past_value ([P, B, KV, D]), then layerTensorSpecs(arch) -> hidden_out, new_key, new_value
 * ([S, B, KV, D]: the new tokens' entries, which the runtime appends to its cache). With
 * `{ cache: false }` (scoring: no past, nothing kept) there are no past inputs and no new_* outputs.
 */
export function buildDecoderLayerGraph(
  arch: LlamaArchitecture,
  options: { cache?: boolean } = {},
): Uint8Array {
  const g = new GraphBuilder('decoder_layer');
  const hidden = g.input('hidden', 'float32', ['batch', 'sequence', arch.hiddenSize]);
  const ctx = blockInputs(g, arch.headDim);
  const past =
    options.cache === false
      ? undefined
      : {
          key: g.input('past_key', 'float32', kvDims(arch, 'past')),
          value: g.input('past_value', 'float32', kvDims(arch, 'past')),
        };
  const w: LayerWeightValues = {};
  for (const spec of layerTensorSpecs(arch)) w[spec.role] = g.input(spec.role, 'float32', spec.dims);
  const out = decoderBlock(g, hidden, w, arch, ctx, past);
  g.output(out.hidden, 'hidden_out', 'float32', ['batch', 'sequence', arch.hiddenSize]);
  if (out.newKey !== undefined && out.newValue !== undefined) {
    g.output(out.newKey, 'new_key', 'float32', kvDims(arch, 'sequence'));
    g.output(out.newValue, 'new_value', 'float32', kvDims(arch, 'sequence'));
  }
  return g.encode();
}

/** hidden [B, S, H], norm [H], lm_head_t [H, V] -> logits [B, S, V]. */
export function buildHeadGraph(arch: LlamaArchitecture): Uint8Array {
  const g = new GraphBuilder('head');
  const hidden = g.input('hidden', 'float32', ['batch', 'sequence', arch.hiddenSize]);
  const norm = g.input(FINAL_NORM, 'float32', [arch.hiddenSize]);
  const head = g.input(HEAD_T, 'float32', [arch.hiddenSize, arch.vocabSize]);
  g.output(finalNormHead(g, hidden, norm, head, arch.rmsNormEps, arch.hiddenSize), 'logits', 'float32', [
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
 * attention_bias, past_key_<l>, past_value_<l> -> logits, new_key_<l>, new_value_<l> (layouts as in
 * buildDecoderLayerGraph).
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
    const past = {
      key: g.input(`past_key_${l}`, 'float32', kvDims(arch, 'past')),
      value: g.input(`past_value_${l}`, 'float32', kvDims(arch, 'past')),
    };
    const w: LayerWeightValues = {};
    for (const spec of specs)
      w[spec.role] = g.initializer(`layers.${l}.${spec.role}`, weights.layers[l]![spec.role]!, spec.dims);
    const out = decoderBlock(g, hidden, w, arch, ctx, past);
    hidden = out.hidden;
    g.output(out.newKey!, `new_key_${l}`, 'float32', kvDims(arch, 'sequence'));
    g.output(out.newValue!, `new_value_${l}`, 'float32', kvDims(arch, 'sequence'));
  }
  const logits = finalNormHead(
    g,
    hidden,
    g.initializer(FINAL_NORM, weights.norm, [arch.hiddenSize]),
    g.initializer(HEAD_T, weights.headT, [arch.hiddenSize, arch.vocabSize]),
    arch.rmsNormEps,
    arch.hiddenSize,
  );
  g.output(logits, 'logits', 'float32', ['batch', 'sequence', arch.vocabSize]);
  return g.encode();
}
