/**
 * Stand-ins that speak the event contract and answer at once, for tests and the orchestration
 * benchmark (an external evaluation cluster is exactly such a subscriber): an evaluator whose scores
 * are a hash of (candidate, objective), and a merger that answers every recipe with a given model.
 */
import { createHash, randomUUID } from 'node:crypto';
import { EVENT_ID_HEADER, type EventBus, type Subscription } from '@hm3/events';
import { events, TOPICS } from '@hm3/proto';

export interface StubRequest {
  readonly candidateId: string;
  readonly searchId: string;
  readonly split: number;
  readonly at: number;
}

export interface StubService {
  /** Requests received, in order (repeats included). */
  readonly requests: StubRequest[];
  stop(): Promise<void>;
}

/** A deterministic score in [0, 1) of a candidate on an objective. */
export function stubScore(candidateId: string, objective: string): number {
  return createHash('sha256').update(`${candidateId}\n${objective}`).digest().readUInt32BE(0) / 2 ** 32;
}

function answer(
  request: events.Envelope,
  payload: events.Envelope['payload'],
  type: string,
): events.Envelope {
  return {
    eventId: randomUUID(),
    schemaVersion: 1,
    type,
    occurredAt: new Date(),
    traceId: request.traceId,
    searchId: request.searchId,
    candidateId: request.candidateId,
    causationId: request.eventId,
    producer: 'stub',
    payload,
  };
}

async function publish(bus: EventBus, topic: string, envelope: events.Envelope): Promise<void> {
  await bus.publish(topic, [
    {
      key: envelope.candidateId,
      value: events.Envelope.encode(envelope).finish(),
      headers: { [EVENT_ID_HEADER]: envelope.eventId },
    },
  ]);
}

/**
 * Answers go out without holding up the next request (the bus sends those of a moment together), as
 * a cluster of many consumers would answer; stop() waits for them. A lost answer is re-requested by
 * the optimizer after its attempt timeout.
 */
class Answers {
  private readonly pending = new Set<Promise<void>>();

  send(publish: () => Promise<void>): void {
    const p = publish().catch(() => undefined);
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  async stopAfter(subscription: Subscription): Promise<void> {
    await subscription.stop();
    await Promise.all(this.pending);
  }
}

export async function startStubEvaluator(
  bus: EventBus,
  options: {
    groupId?: string;
    score?: (candidateId: string, objective: string) => number;
    /** Answers only the requests of the searches it accepts (default all). */
    accept?: (searchId: string) => boolean;
  } = {},
): Promise<StubService> {
  const requests: StubRequest[] = [];
  const answers = new Answers();
  const score = options.score ?? stubScore;
  const subscription: Subscription = await bus.subscribe(
    { groupId: options.groupId ?? 'hm3-evaluator-stub', topics: [TOPICS.EVAL_REQUESTED] },
    async (event) => {
      const request = events.Envelope.decode(event.value);
      if (request.payload?.$case !== 'evalRequested') return;
      if (options.accept && !options.accept(request.searchId)) return;
      const { objectives, split } = request.payload.value;
      requests.push({ candidateId: request.candidateId, searchId: request.searchId, split, at: Date.now() });
      const completed: events.EvalCompleted = {
        scores: objectives.map((o) => ({
          objective: o.name,
          metric: 'stub',
          split,
          value: score(request.candidateId, o.name),
          exampleCount: 1,
        })),
        elapsedSeconds: 0,
      };
      answers.send(() =>
        publish(
          bus,
          TOPICS.EVAL_COMPLETED,
          answer(request, { $case: 'evalCompleted', value: completed }, TOPICS.EVAL_COMPLETED),
        ),
      );
    },
  );
  return { requests, stop: () => answers.stopAfter(subscription) };
}

/** `uri`: the model every merge answers with, or a function making one per request (its candidate id). */
export async function startStubMerger(
  bus: EventBus,
  uri: string | ((candidateId: string) => Promise<string>),
  options: { groupId?: string; accept?: (searchId: string) => boolean } = {},
): Promise<StubService> {
  const requests: StubRequest[] = [];
  const answers = new Answers();
  const subscription = await bus.subscribe(
    { groupId: options.groupId ?? 'hm3-tensor-merge-stub', topics: [TOPICS.MERGE_REQUESTED] },
    async (event) => {
      const request = events.Envelope.decode(event.value);
      if (options.accept && !options.accept(request.searchId)) return;
      requests.push({
        candidateId: request.candidateId,
        searchId: request.searchId,
        split: 0,
        at: Date.now(),
      });
      const completed: events.MergeCompleted = {
        artifactId: request.candidateId,
        uri: typeof uri === 'string' ? uri : await uri(request.candidateId),
        reused: false,
        bytes: 0n,
        elapsedSeconds: 0,
      };
      answers.send(() =>
        publish(
          bus,
          TOPICS.MERGE_COMPLETED,
          answer(request, { $case: 'mergeCompleted', value: completed }, TOPICS.MERGE_COMPLETED),
        ),
      );
    },
  );
  return { requests, stop: () => answers.stopAfter(subscription) };
}
