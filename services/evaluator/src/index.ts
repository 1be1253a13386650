// EvaluatorService. The public API of @hm3/evaluator; empty until its issue lands.
export {};
