import { describe, expect, it } from 'vitest';
import { CommitTracker } from './commit-tracker.js';

describe('CommitTracker', () => {
  it('is due after everyMessages completions, and commits the next offset per partition', () => {
    const tracker = new CommitTracker({ everyMessages: 3, intervalMs: 60_000 });
    tracker.completed('t', 0, '4');
    tracker.completed('t', 1, '9');
    expect(tracker.isDue()).toBe(false);
    tracker.completed('t', 0, '5');
    expect(tracker.isDue()).toBe(true);
    expect(tracker.take()).toEqual([
      { topic: 't', partition: 0, offset: '6' },
      { topic: 't', partition: 1, offset: '10' },
    ]);
    expect(tracker.isDue()).toBe(false);
    expect(tracker.uncommitted).toBe(0);
  });

  it('is due after intervalMs with anything pending, never when empty', () => {
    const tracker = new CommitTracker({ everyMessages: 1000, intervalMs: 50 });
    expect(tracker.isDue(Date.now() + 100)).toBe(false);
    tracker.completed('t', 0, '0');
    expect(tracker.isDue()).toBe(false);
    expect(tracker.isDue(Date.now() + 100)).toBe(true);
  });

  it('restores failed commits without overwriting newer progress, and forgets revoked partitions', () => {
    const tracker = new CommitTracker();
    tracker.completed('t', 0, '1');
    tracker.completed('t', 1, '1');
    const taken = tracker.take();
    tracker.completed('t', 0, '7');
    tracker.restore(taken);
    tracker.retain((_topic, partition) => partition === 0 || partition === 1);
    expect(tracker.take()).toEqual([
      { topic: 't', partition: 0, offset: '8' },
      { topic: 't', partition: 1, offset: '2' },
    ]);
    tracker.completed('t', 2, '0');
    tracker.retain((_topic, partition) => partition !== 2);
    expect(tracker.size).toBe(0);
  });

  it('handles offsets beyond 2^53 and rejects a bad cadence', () => {
    const tracker = new CommitTracker();
    tracker.completed('t', 0, '9007199254740993');
    expect(tracker.take()[0]!.offset).toBe('9007199254740994');
    expect(() => new CommitTracker({ everyMessages: 0 })).toThrow(/everyMessages/);
    expect(() => new CommitTracker({ intervalMs: -1 })).toThrow(/intervalMs/);
  });
});
