import { describe, expect, it } from 'vitest';
import { Partitioners } from 'kafkajs';
import { partitionForKey } from './partitioner.js';

describe('partitionForKey', () => {
  it('matches kafkajs DefaultPartitioner (Java-compatible murmur2) for keys of every tail length', () => {
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: 7 }, (_, partitionId) => ({
      partitionId,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [0],
      isr: [0],
    }));
    const keys = [
      '',
      'a',
      'ab',
      'abc',
      'abcd',
      'candidate-0123456789abcdef',
      'é€😀',
      ...Array.from({ length: 200 }, (_, i) => `key-${i * 7919}`),
    ];
    for (const key of keys) {
      const expected = partitioner({ topic: 't', partitionMetadata, message: { key, value: 'x' } });
      expect(partitionForKey(key, 7), key).toBe(expected);
    }
  });

  it('spreads keys over all partitions', () => {
    const seen = new Set(Array.from({ length: 100 }, (_, i) => partitionForKey(`k${i}`, 3)));
    expect([...seen].sort()).toEqual([0, 1, 2]);
  });
});
