// Primitive kernels over Float32Array / Float64Array. Each is range-based, `(args, start, end)`, so the
// worker pool can split it; merge methods are composed from these (see @hm3/merge).
export { allocLike, type FloatArray } from './float-array.js';
export { axpy, type AxpyArgs } from './axpy.js';
export { weightedSum, taskVectorSum, type WeightedSumArgs, type TaskVectorSumArgs } from './weighted-sum.js';
export { signVote, type SignVoteArgs } from './sign-vote.js';
export {
  maskedDisjointMean,
  tiesMerge,
  type MaskedDisjointMeanArgs,
  type TiesMergeArgs,
} from './masked-disjoint-mean.js';
export {
  absSum,
  absSumBoth,
  absSumBothChunked,
  absSumChunks,
  addChunkSums,
  dot,
  applyMask,
} from './reductions.js';
export { philox4x32, fnv1a32, randomStream, type RandomStream } from './philox.js';
export {
  bernoulliMask,
  dareMaskSums,
  L1_CHUNK,
  type BernoulliMaskArgs,
  type DareMaskSumsArgs,
} from './bernoulli-mask.js';
export { decodeDeltas, encodeRange, type DecodeDeltasArgs, type EncodeRangeArgs } from './raw-codec.js';
export {
  RADIX_BINS,
  radixLevels,
  absDigitHistogram,
  sumHistograms,
  pickBin,
  valueFromDigits,
  radixSelectWith,
  kthLargestAbs,
  topKMask,
  countEqualAbs,
  topKMaskOf,
  keepTopKAbs,
  keepTopKRange,
  keepTopKBits,
  type KeepTopKRangeArgs,
  type AbsDigitHistogramArgs,
  type KthLargest,
  type TopKMaskArgs,
} from './radix-select.js';
export {
  registerKernels,
  KERNEL_NAMES,
  kthLargestAbsParallel,
  topKMaskParallel,
  keepTopKAbsParallel,
  chunkAlignedRanges,
  tiesMergeRawParallel,
  tiesThresholdBands,
  type TiesBand,
  type TiesMergeRawOptions,
} from './parallel.js';
export {
  tiesRawHistograms,
  tiesMergeRaw,
  tiesMergeBandedJs,
  tiesFixupRaw,
  type TiesBandRule,
  type TiesMergeBandedArgs,
  type TiesMergeBandedResult,
  type TiesFixupRawArgs,
  type TiesKeep,
  type TiesMergeRawArgs,
  type TiesRawHistogramsArgs,
  type TiesRawHistogramsResult,
} from './ties-raw.js';
export { tiesMergeBanded, tiesBandedBackend } from './ties-banded-wasm.js';
export { KernelMemory, type KernelMemoryRef } from './kernel-memory.js';
export {
  taskArithmeticBf16Wasm,
  taskArithmeticWasmStats,
  type TaskArithmeticBf16Range,
  type TaskArithmeticBf16WasmArgs,
} from './task-arithmetic-wasm.js';
