import {
  DEFAULT_COMMIT_EVERY_MESSAGES,
  DEFAULT_COMMIT_INTERVAL_MS,
  type CommitCadence,
} from './event-bus.js';
import { InvalidArgumentError } from '@hm3/errors';

/** The next offset to consume in one partition: what a commit records (last completed + 1). */
export interface PartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

/**
 * Completed-but-uncommitted offsets of one consumer, and the cadence that decides when to commit
 * them. Both adapters use it, so "commit every N events or T ms" means the same thing on both.
 */
export class CommitTracker {
  readonly everyMessages: number;
  readonly intervalMs: number;
  private pending = new Map<string, PartitionOffset>();
  private completedSinceCommit = 0;
  private lastCommitAt = Date.now();

  constructor(cadence: CommitCadence = {}) {
    this.everyMessages = cadence.everyMessages ?? DEFAULT_COMMIT_EVERY_MESSAGES;
    this.intervalMs = cadence.intervalMs ?? DEFAULT_COMMIT_INTERVAL_MS;
    if (!Number.isInteger(this.everyMessages) || this.everyMessages < 1) {
      throw new InvalidArgumentError('commit.everyMessages must be an integer >= 1', {
        field: 'commit.everyMessages',
        value: this.everyMessages,
      });
    }
    if (!(this.intervalMs > 0)) {
      throw new InvalidArgumentError('commit.intervalMs must be > 0', {
        field: 'commit.intervalMs',
        value: this.intervalMs,
      });
    }
  }

  /** Records that the event at `offset` completed (handled or dead-lettered). */
  completed(topic: string, partition: number, offset: string): void {
    this.pending.set(`${topic}\u0000${partition}`, {
      topic,
      partition,
      offset: (BigInt(offset) + 1n).toString(),
    });
    this.completedSinceCommit += 1;
  }

  get size(): number {
    return this.pending.size;
  }

  /** Completed events since the last commit (what a crash now would redeliver). */
  get uncommitted(): number {
    return this.completedSinceCommit;
  }

  isDue(now = Date.now()): boolean {
    return (
      this.pending.size > 0 &&
      (this.completedSinceCommit >= this.everyMessages || now - this.lastCommitAt >= this.intervalMs)
    );
  }

  /** Hands out everything pending and starts a new cadence window; call `restore` if the commit fails. */
  take(): PartitionOffset[] {
    const offsets = [...this.pending.values()];
    this.pending.clear();
    this.completedSinceCommit = 0;
    this.lastCommitAt = Date.now();
    return offsets;
  }

  /** Puts back offsets whose commit failed, unless a later offset of the partition completed since. */
  restore(offsets: PartitionOffset[]): void {
    for (const entry of offsets) {
      const key = `${entry.topic}\u0000${entry.partition}`;
      if (!this.pending.has(key)) this.pending.set(key, entry);
    }
  }

  /** Forgets offsets of partitions this consumer no longer owns (another member commits them now). */
  retain(owned: (topic: string, partition: number) => boolean): void {
    for (const [key, entry] of this.pending)
      if (!owned(entry.topic, entry.partition)) this.pending.delete(key);
  }

  /** Forgets everything: a crash loses what was not committed. */
  clear(): void {
    this.pending.clear();
    this.completedSinceCommit = 0;
  }
}
