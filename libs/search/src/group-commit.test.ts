import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.js';

describe('GroupCommit', () => {
  it('sends what arrives during a write as one next write; every add resolves after its own write', async () => {
    const writes: number[][] = [];
    let release: (() => void) | undefined;
    const group = new GroupCommit<number>(async (items) => {
      writes.push(items);
      await new Promise<void>((resolve) => (release = resolve));
    });
    const first = group.add(1);
    await Promise.resolve();
    expect(writes).toEqual([[1]]);
    let laterDone = false;
    const later = [group.add(2), group.add(3, 4)];
    void Promise.all(later).then(() => (laterDone = true));
    release!();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual([[1], [2, 3, 4]]);
    expect(laterDone).toBe(false);
    release!();
    await Promise.all(later);
    expect(writes).toHaveLength(2);
  });

  it('a failed write rejects its own adds only; the next group is written', async () => {
    let fail = true;
    const writes: string[][] = [];
    const group = new GroupCommit<string>(async (items) => {
      writes.push(items);
      if (fail) throw new Error('store down');
    });
    await expect(group.add('a')).rejects.toThrow('store down');
    fail = false;
    await expect(group.add('b')).resolves.toBeUndefined();
    expect(writes).toEqual([['a'], ['b']]);
  });
});
