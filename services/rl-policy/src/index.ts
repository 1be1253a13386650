// PolicyService. The public API of @hm3/rl-policy: the transport-free core (the gRPC adapter is to come).
export { PolicyServiceCore } from './policy-service.js';
export type {
  EpisodeReward,
  PolicyServiceDeps,
  PolicySpec,
  ProposedPath,
  TrainProgressEvent,
} from './policy-service.js';
export { policyHandlers, specFromWire } from './policy-grpc.js';
