import { describe, expect, it } from 'vitest';
import { createInMemoryStore } from './in-memory-store.js';
import { describeStoreContract, modelRecord } from './store.contract.js';

describeStoreContract('in-memory', async () => {
  const store = createInMemoryStore();
  return { store, dispose: () => store.close() };
});

describe('InMemoryStore', () => {
  it('stores nothing shared between instances', async () => {
    const a = createInMemoryStore();
    const b = createInMemoryStore();
    await a.start();
    await b.start();
    await a.models.insert(modelRecord('m1'));
    expect(await b.models.get('m1')).toBeUndefined();
  });
});
