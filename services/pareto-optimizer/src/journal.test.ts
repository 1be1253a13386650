import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { InMemoryJournal, MongoJournal, type Journal } from './journal.js';

/** The journal's contract, run against both adapters. */
function journalContract(name: string, make: () => Journal): void {
  describe(`${name} journal`, () => {
    const journal = make();
    let started = false;
    const ready = async () => {
      if (!started) await journal.start();
      started = true;
      return journal;
    };
    afterAll(async () => {
      if (started) await journal.close();
    });

    it('returns what was put, as JSON, and undefined for an unknown key', async () => {
      const j = await ready();
      const key = `k-${randomUUID()}`;
      expect(await j.get(key)).toBeUndefined();
      await j.put(key, { uri: 'artifact://x', steps: [[0, 1]], n: 1.5 });
      expect(await j.get(key)).toEqual({ uri: 'artifact://x', steps: [[0, 1]], n: 1.5 });
    });

    it('keeps the first value of a key (a replay or a second writer changes nothing)', async () => {
      const j = await ready();
      const key = `k-${randomUUID()}`;
      await Promise.all([j.put(key, 1), j.put(key, 1)]);
      await j.put(key, 2);
      expect(await j.get(key)).toBe(1);
    });

    it('putMany writes new keys at once and keeps the first value of known ones; list reads a prefix', async () => {
      const j = await ready();
      const prefix = `s-${randomUUID()}:merge:`;
      await j.put(`${prefix}a`, { uri: 'first' });
      await j.putMany([
        [`${prefix}a`, { uri: 'second' }],
        [`${prefix}b.*`, { uri: 'b' }],
        [`other-${prefix}c`, { uri: 'c' }],
      ]);
      await j.putMany([]);
      expect(await j.get(`${prefix}b.*`)).toEqual({ uri: 'b' });
      const listed = await j.list(prefix);
      expect([...listed.keys()].sort()).toEqual([`${prefix}a`, `${prefix}b.*`]);
      expect(listed.get(`${prefix}a`)).toEqual({ uri: 'first' });
      expect((await j.list(`${prefix}b.`)).size).toBe(1);
      expect((await j.list(`${prefix}z`)).size).toBe(0);
    });
  });
}

journalContract('in-memory', () => new InMemoryJournal());
journalContract('MongoDB (FerretDB)', () => {
  const url = process.env['HM3_MONGO_URL'];
  if (url === undefined)
    throw new Error('HM3_MONGO_URL is not set: the vitest globalSetup of @hm3/infra sets it');
  return new MongoJournal({ url, database: 'hm3_optimizer_journal_test' });
});
