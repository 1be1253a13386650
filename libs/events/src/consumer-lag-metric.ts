import { Gauge, register as defaultRegistry, type Registry } from 'prom-client';

export const CONSUMER_LAG_METRIC = 'hm3_consumer_lag';

/** The `hm3_consumer_lag{topic,group}` gauge of `registry`, created once per registry. */
export function consumerLagGauge(registry: Registry = defaultRegistry): Gauge<'topic' | 'group'> {
  const existing = registry.getSingleMetric(CONSUMER_LAG_METRIC);
  if (existing) return existing as Gauge<'topic' | 'group'>;
  return new Gauge({
    name: CONSUMER_LAG_METRIC,
    help: 'Messages not yet committed by a consumer group, per topic (summed over partitions)',
    labelNames: ['topic', 'group'],
    registers: [registry],
  });
}
