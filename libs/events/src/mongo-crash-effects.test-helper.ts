/** The crash test's effect store on the real MongoDB-compatible server (shared by child and parent). */
import type { MongoClient } from 'mongodb';
import type { createMongoStore } from '@hm3/store';
import type { CrashEffects } from './crash-consumer.test-helper.js';

export const CRASH_DB = process.env.HM3_EVENTS_TEST_DB ?? 'hm3_events_test';
export const COUNTERS = 'crash_test_counters';
export const CRASH_OBJECTIVE = 'contract-crash-test';

export function mongoEffects(client: MongoClient, store: ReturnType<typeof createMongoStore>): CrashEffects {
  const counters = client.db(CRASH_DB).collection<{ _id: string; n: number; applied: string[] }>(COUNTERS);
  return {
    async upsert(runId, eventId, value) {
      await store.scores.upsert({
        candidateId: eventId,
        objective: CRASH_OBJECTIVE,
        split: 'search',
        searchId: runId,
        value,
        createdAt: new Date(),
      });
    },
    async countFirst(runId, eventId) {
      const result = await counters.updateOne(
        { _id: runId, applied: { $ne: eventId } },
        { $inc: { n: 1 }, $push: { applied: eventId } },
      );
      return result.modifiedCount === 1;
    },
  };
}
