/**
 * The optimizer's one consumer of answers: hm3.merge.completed / merge.failed / eval.completed /
 * eval.failed (group `hm3-pareto-optimizer`). An evaluation's answer settles whoever waits for that
 * candidate and split (scores are content-addressed); a merge's answer and a failure settle only the
 * request they answer (causation id). Answers nobody waits for (a repeat, a request of a previous
 * process) are dropped: the waiting side re-sends on resume and the services answer idempotently.
 * An undecodable answer throws, so the bus retries it and then dead-letters it with the reason.
 */
import type { EventBus, Subscription } from '@hm3/events';
import { common, events, TOPICS } from '@hm3/proto';

export const OPTIMIZER_CONSUMER_GROUP = 'hm3-pareto-optimizer';

export const REPLY_TOPICS = [
  TOPICS.MERGE_COMPLETED,
  TOPICS.MERGE_FAILED,
  TOPICS.EVAL_COMPLETED,
  TOPICS.EVAL_FAILED,
] as const;

export type Reply =
  | {
      readonly kind: 'merge.completed';
      readonly envelope: events.Envelope;
      readonly value: events.MergeCompleted;
    }
  | {
      readonly kind: 'eval.completed';
      readonly envelope: events.Envelope;
      readonly value: events.EvalCompleted;
    }
  | { readonly kind: 'failed'; readonly envelope: events.Envelope; readonly failure: events.Failure };

interface Waiter {
  readonly requestIds: Set<string>;
  settle(reply: Reply): void;
  fail(error: Error): void;
}

export function mergeKey(candidateId: string): string {
  return `merge|${candidateId}`;
}

export function evalKey(candidateId: string, split: 'search' | 'heldout'): string {
  return `eval|${candidateId}|${split}`;
}

export class ReplyRouter {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private subscription: Subscription | undefined;

  constructor(
    private readonly bus: EventBus,
    private readonly groupId = OPTIMIZER_CONSUMER_GROUP,
  ) {}

  async start(): Promise<void> {
    this.subscription = await this.bus.subscribe(
      { groupId: this.groupId, topics: [...REPLY_TOPICS], fromBeginning: true },
      (event) => {
        this.route(event.topic, events.Envelope.decode(event.value));
        return Promise.resolve();
      },
    );
  }

  /** Stops consuming; whoever still waits gets an error (the search resumes in the next process). */
  async stop(): Promise<void> {
    await this.subscription?.stop();
    this.subscription = undefined;
    const waiting = [...this.waiters.values()].flatMap((set) => [...set]);
    this.waiters.clear();
    for (const w of waiting) w.fail(new Error('the optimizer is stopping'));
  }

  lag(): Promise<Record<string, number>> {
    return this.subscription?.lag() ?? Promise.resolve({});
  }

  /** Waits for the answer to a request; `requestIds` grows as the caller re-sends. */
  wait(
    key: string,
    requestIds: Set<string>,
    signal?: AbortSignal,
  ): { reply: Promise<Reply>; cancel(): void } {
    let cancel = (): void => undefined;
    const reply = new Promise<Reply>((resolve, reject) => {
      const waiter: Waiter = { requestIds, settle: resolve, fail: reject };
      let set = this.waiters.get(key);
      if (!set) this.waiters.set(key, (set = new Set()));
      set.add(waiter);
      cancel = () => {
        set.delete(waiter);
        if (set.size === 0) this.waiters.delete(key);
      };
      signal?.addEventListener('abort', () => {
        cancel();
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      });
    });
    return { reply, cancel };
  }

  /** Routes one answer (exported for tests of the routing itself). */
  route(topic: string, envelope: events.Envelope): void {
    const payload = envelope.payload;
    if (payload === undefined) throw new Error(`${topic}: envelope ${envelope.eventId} has no payload`);
    let key: string | undefined;
    let reply: Reply;
    switch (payload.$case) {
      case 'mergeCompleted':
        // Only the answer to one of this process's requests: an older answer names an artifact
        // of another time (and maybe another artifact root).
        reply = { kind: 'merge.completed', envelope, value: payload.value };
        break;
      case 'evalCompleted': {
        const split = payload.value.scores[0]?.split === common.Split.HELDOUT ? 'heldout' : 'search';
        key = evalKey(envelope.candidateId, split);
        reply = { kind: 'eval.completed', envelope, value: payload.value };
        break;
      }
      case 'mergeFailed':
      case 'evalFailed':
        reply = {
          kind: 'failed',
          envelope,
          failure: payload.value.failure ?? {
            code: 'INTERNAL',
            message: 'no failure given',
            retryable: false,
          },
        };
        break;
      default:
        throw new Error(`${topic}: unexpected payload ${payload.$case} in envelope ${envelope.eventId}`);
    }
    if (key !== undefined) {
      const set = this.waiters.get(key);
      if (!set) return;
      this.waiters.delete(key);
      for (const w of set) w.settle(reply);
      return;
    }
    // A failure settles only the waiter of the request it answers.
    for (const [k, set] of this.waiters) {
      for (const w of set) {
        if (w.requestIds.has(envelope.causationId)) {
          set.delete(w);
          if (set.size === 0) this.waiters.delete(k);
          w.settle(reply);
          return;
        }
      }
    }
  }
}
