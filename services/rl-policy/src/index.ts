// @hm3/rl-policy: PolicyService (gRPC) around @hm3/rl's path policy; the transport-free core and its server.
export { PolicyServiceCore } from './policy-service.js';
export type {
  EpisodeReward,
  ExportedPolicy,
  PolicyServiceDeps,
  PolicySpec,
  ProposedPath,
  TrainProgressEvent,
} from './policy-service.js';
export { policyHandlers } from './policy-grpc.js';
export { specFromWire } from './wire.js';
export { startRlPolicyServer } from './rl-policy-server.js';
export type { RlPolicyServerOptions, RunningRlPolicy } from './rl-policy-server.js';
