// Primitive kernels over Float32Array / Float64Array. Each is range-based, `(args, start, end)`, so the
// worker pool can split it; merge methods are composed from these (see @hm3/merge).
export { allocLike, type FloatArray } from './float-array.js';
export { axpy, type AxpyArgs } from './axpy.js';
export { weightedSum, type WeightedSumArgs } from './weighted-sum.js';
export { signVote, type SignVoteArgs } from './sign-vote.js';
export { maskedDisjointMean, type MaskedDisjointMeanArgs } from './masked-disjoint-mean.js';
export { absSum, dot, applyMask } from './reductions.js';
export { philox4x32, fnv1a32, randomStream, type RandomStream } from './philox.js';
export { bernoulliMask, type BernoulliMaskArgs } from './bernoulli-mask.js';
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
  type AbsDigitHistogramArgs,
  type KthLargest,
  type TopKMaskArgs,
} from './radix-select.js';
export { registerKernels, KERNEL_NAMES, kthLargestAbsParallel, topKMaskParallel } from './parallel.js';
