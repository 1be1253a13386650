/**
 * Group commit: writes that arrive while one is in flight wait and go out together as the next one,
 * so N concurrent writers cost about one round trip each wave instead of N. `add` resolves once the
 * write that carried its item succeeded (and rejects with that write's error).
 */
export class GroupCommit<T> {
  private pending:
    { items: T[]; resolve: () => void; reject: (error: unknown) => void; done: Promise<void> } | undefined;
  private writing = false;

  constructor(private readonly write: (items: T[]) => Promise<unknown>) {}

  add(...items: T[]): Promise<void> {
    if (!this.pending) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.pending = { items: [], resolve, reject, done };
      if (!this.writing) queueMicrotask(() => void this.flush());
    }
    this.pending.items.push(...items);
    return this.pending.done;
  }

  private async flush(): Promise<void> {
    const group = this.pending;
    if (!group || this.writing) return;
    this.pending = undefined;
    this.writing = true;
    try {
      await this.write(group.items);
      group.resolve();
    } catch (error) {
      group.reject(error);
    } finally {
      this.writing = false;
      if (this.pending) void this.flush();
    }
  }
}
