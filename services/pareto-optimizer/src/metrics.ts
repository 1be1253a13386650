/**
 * The optimizer's Prometheus metrics, on the service's registry: candidates in flight, evaluations
 * (a counter: evaluations/s is its rate), front size and hypervolume per search. Consumer lag per
 * topic is the events lib's `hm3_consumer_lag{topic,group}`, refreshed by the bus.
 */
import { consumerLagGauge } from '@hm3/events';
import { Counter, Gauge, type Registry } from 'prom-client';

export interface OptimizerMetrics {
  readonly inFlight: Gauge<'search_id'>;
  readonly evaluations: Counter<'search_id' | 'split'>;
  readonly frontSize: Gauge<'search_id'>;
  readonly hypervolume: Gauge<'search_id'>;
  /** `hm3_consumer_lag{topic,group}`: the optimizer's answers and the merge / evaluation requests. */
  readonly lag: Gauge<'topic' | 'group'>;
}

export function createOptimizerMetrics(registry: Registry): OptimizerMetrics {
  return {
    inFlight: new Gauge({
      name: 'hm3_optimizer_candidates_in_flight',
      help: 'Merge and evaluation requests sent and not yet answered, per search.',
      labelNames: ['search_id'],
      registers: [registry],
    }),
    evaluations: new Counter({
      name: 'hm3_optimizer_evaluations_total',
      help: 'Evaluations answered through Kafka, per search and split (rate() gives evaluations/s).',
      labelNames: ['search_id', 'split'],
      registers: [registry],
    }),
    frontSize: new Gauge({
      name: 'hm3_optimizer_front_size',
      help: 'Members of the current Pareto front, per search.',
      labelNames: ['search_id'],
      registers: [registry],
    }),
    hypervolume: new Gauge({
      name: 'hm3_optimizer_front_hypervolume',
      help: 'Hypervolume of the current front on the search split (reference 0), per search.',
      labelNames: ['search_id'],
      registers: [registry],
    }),
    lag: consumerLagGauge(registry),
  };
}
