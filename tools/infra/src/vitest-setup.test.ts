// Uses the environment's servers (those of `npm run infra:up` when they run): setup() must take leases
// without restarting anything and its teardown must leave a server it did not start running.
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import setup from './vitest-setup.js';
import { infra } from './infra.js';
import { probeKafka } from './kafka.js';
import { probeMongo } from './ferretdb.js';

function myLeases(): string[] {
  try {
    return readdirSync(infra().kafka.paths.leasesDir).filter((n) => n.includes(`-${process.pid}-`));
  } catch {
    return [];
  }
}

describe('@hm3/infra/vitest-setup', () => {
  it('ensures both servers, publishes their addresses, and its teardown releases its leases', async () => {
    const before = await infra().status();
    const provided = new Map<string, string>();
    const teardown = await setup({ provide: (key, value) => provided.set(key, value) });
    try {
      expect(process.env['HM3_KAFKA_BROKERS']).toBe(infra().settings.kafkaBrokers);
      expect(process.env['HM3_MONGO_URL']).toBe(infra().settings.mongoUrl);
      expect(provided.get('hm3KafkaBrokers')).toBe(infra().settings.kafkaBrokers);
      expect(provided.get('hm3MongoUrl')).toBe(infra().settings.mongoUrl);
      expect(await probeKafka(infra().settings.kafkaBrokers)).toBe(true);
      expect(await probeMongo(infra().settings.mongoUrl)).toBe(true);
      expect(myLeases().sort()).toEqual([
        expect.stringMatching(/^ferretdb-/),
        expect.stringMatching(/^kafka-/),
      ]);
    } finally {
      await teardown();
    }
    expect(myLeases()).toEqual([]);
    const after = await infra().status();
    for (const [i, s] of before.entries()) {
      // A server that ran before (e.g. from infra:up) still runs, untouched.
      if (s.state !== 'stopped') expect(after[i]).toMatchObject({ state: s.state, pid: s.pid });
    }
  }, 600_000);
});
