// A ready-made vitest globalSetup for packages whose tests need the real servers:
//
//   // vitest.config.ts (and "@hm3/infra": "*" in the package's devDependencies)
//   export default defineConfig({ test: { globalSetup: ['@hm3/infra/vitest-setup'] } });
//
// It ensures Kafka and FerretDB (starting them when `npm run infra:up` has not), publishes their
// addresses as env HM3_KAFKA_BROKERS / HM3_MONGO_URL (inherited by the test workers) and as
// `inject('hm3KafkaBrokers')` / `inject('hm3MongoUrl')`, and releases its leases on teardown
// (stopping the servers only if it started them and no other test process still holds a lease).
import { ensureFerretDb, ensureKafka, kafkaBrokers, mongoUrl } from './infra.js';
import type { InfraLease } from './server.js';
import type {} from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    hm3KafkaBrokers: string;
    hm3MongoUrl: string;
  }
}

/** The part of vitest's TestProject this setup uses. */
export interface ProvidingProject {
  provide(key: 'hm3KafkaBrokers' | 'hm3MongoUrl', value: string): void;
}

export default async function setup(project?: ProvidingProject): Promise<() => Promise<void>> {
  const leases: InfraLease[] = [];
  const release = async () => {
    await Promise.allSettled(leases.map((l) => l.release()));
  };
  try {
    leases.push(...(await Promise.all([ensureKafka(), ensureFerretDb()])));
  } catch (error) {
    await release();
    throw error;
  }
  const brokers = kafkaBrokers().join(',');
  process.env['HM3_KAFKA_BROKERS'] = brokers;
  process.env['HM3_MONGO_URL'] = mongoUrl();
  project?.provide('hm3KafkaBrokers', brokers);
  project?.provide('hm3MongoUrl', mongoUrl());
  return release;
}
