// @hm3/proto: the wire types and gRPC service definitions generated from proto/ (buf generate + ts-proto),
// one namespace per proto file. Everything under ./gen is generated (`npm run generate -w @hm3/proto`);
// this index is the only hand-written file. Services map these types to domain types at their edge.
//
// ts-proto options (buf.gen.yaml): 64-bit integers are bigint, google.protobuf.Timestamp is Date,
// oneofs are `{ $case, value }` unions, enum members drop their prefix (DType.F32 is D_TYPE_F32).
export * as common from './gen/hm3/v1/common.js';
export * as merge from './gen/hm3/v1/merge.js';
export * as policy from './gen/hm3/v1/policy.js';
export * as evaluator from './gen/hm3/v1/evaluator.js';
export * as optimizer from './gen/hm3/v1/optimizer.js';
export * as events from './gen/hm3/v1/events.js';
export * as onnx from './gen/onnx/onnx.js';
export { TOPICS, TOPIC_NAMES, TOPIC_NAME_BY_TOPIC, TOPIC_BY_PAYLOAD } from './gen/topics.js';
export type { TopicName, PayloadCase } from './gen/topics.js';
