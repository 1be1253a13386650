// @hm3/evaluator: EvaluatorService (gRPC), the evaluation-request consumer and the score recorder
// (Kafka) around @hm3/evaluation, and the producer of evaluation requests.
export {
  Evaluator,
  recordsArtifactId,
  type EvaluatorOptions,
  type EvaluationRequest,
  type EvaluationOutcome,
  type EvalTarget,
  type EvalSplit,
  type ObjectiveScore,
  type ObjectiveProgress,
  type EvaluateOptions,
  type PathStepSpec,
} from './evaluator.js';
export { evaluatorHandlers } from './evaluator-service.js';
export {
  startEvalConsumer,
  recordEventId,
  EVAL_CONSUMER_GROUP,
  EVAL_TOPICS,
  type EvalTopics,
  type EvalConsumerOptions,
} from './eval-consumer.js';
export {
  startScoreRecorder,
  recorderMarkerId,
  SCORE_RECORDER_GROUP,
  type ScoreRecorderOptions,
} from './score-recorder.js';
export {
  evalRequestedEnvelope,
  publishEvalRequest,
  envelopeRecord,
  SCHEMA_VERSION,
  type EvalRequestInput,
} from './envelopes.js';
export {
  startEvaluatorServer,
  type EvaluatorServerOptions,
  type RunningEvaluator,
} from './evaluator-server.js';
export {
  resolveModel,
  ARTIFACT_SCHEME,
  ZOO_SCHEME,
  ARTIFACT_MODEL_FOLDER,
  type ModelRefSpec,
} from './model-refs.js';
export {
  splitFromWire,
  splitToWire,
  objectiveFromWire,
  targetFromWire,
  scoreToWire,
  taskToWire,
} from './wire.js';
export { evaluationMetrics, type EvaluationMetrics } from './evaluation-metrics.js';
