/**
 * Prometheus metrics of the evaluator: evaluations (one objective of one candidate) and examples
 * scored, and seconds per evaluation. Evaluations per second = rate(hm3_evaluations_total[1m]).
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { ObjectiveScore } from './evaluator.js';

export interface EvaluationMetrics {
  observe(score: ObjectiveScore, seconds: number): void;
}

export function evaluationMetrics(registry: Registry): EvaluationMetrics {
  const evaluations = new Counter({
    name: 'hm3_evaluations_total',
    help: 'Objectives scored, by metric; reused="true" when answered from the scores store',
    labelNames: ['metric', 'reused'],
    registers: [registry],
  });
  const examples = new Counter({
    name: 'hm3_evaluation_examples_total',
    help: 'Examples scored (evaluations answered from the store excluded)',
    labelNames: ['metric'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'hm3_evaluation_seconds',
    help: 'Seconds per evaluation of one objective (evaluations answered from the store excluded)',
    labelNames: ['metric'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [registry],
  });
  return {
    observe(score, seconds) {
      evaluations.inc({ metric: score.metric, reused: String(score.reused) });
      if (score.reused) return;
      examples.inc({ metric: score.metric }, score.exampleCount);
      duration.observe({ metric: score.metric }, seconds);
    },
  };
}
