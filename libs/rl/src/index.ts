// Architecture-level MDP, networks, PPO, policy export. The public API of @hm3/rl.
export * as autodiff from './autodiff.js';
export { Tensor, noGrad } from './autodiff.js';
export { Adam, clipGradNorm } from './optim.js';
export type { AdamOptions } from './optim.js';
export { Rng } from './random.js';
export { GruCell, Linear, ParamStore } from './layers.js';
export { LayerPool, layerWeightFeatures } from './layer-pool.js';
export type { PathStep, PoolModel } from './layer-pool.js';
export { checkPreference, checkReward, checkScores, episodeReward } from './reward.js';
export type { RewardSettings, Scalarisation } from './reward.js';
export { AMORTISED_POLICY_DEFAULTS, DEFAULT_POLICY_SETTINGS, resolvePolicySettings } from './settings.js';
export type { PolicySettings, PolicySettingsInput } from './settings.js';
export { PathPolicy } from './path-policy.js';
export type { Episode, ProposalMode, UpdateStats } from './path-policy.js';
export { matchFraction, samePath, TargetPathEnvironment, trainPolicy } from './trainer.js';
export type { PathEnvironment, TrainOptions, TrainProgress } from './trainer.js';
export { loadPolicy, savePolicy } from './policy-io.js';
export { exportPolicyOnnx, OnnxPathPolicy, ONNX_POLICY_FILES } from './policy-onnx.js';
export type { HeadsInput, OnnxPolicyExport } from './policy-onnx.js';
export { runAmortisedExperiment, runTargetExperiment, syntheticPool } from './synthetic.js';
export type {
  AmortisedExperimentOptions,
  AmortisedExperimentResult,
  CurvePoint,
  TargetExperimentOptions,
  TargetExperimentResult,
} from './synthetic.js';
