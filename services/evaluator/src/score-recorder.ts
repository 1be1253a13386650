/**
 * Records the scores of `hm3.eval.completed` events in the ScoresRepository, whoever evaluated: the
 * built-in evaluator (whose scores are already there) or an external evaluation cluster answering
 * on the contract. First writer wins: a (candidate, objective, split) already recorded is kept, so a
 * redelivered or repeated answer changes nothing. Scores of the `full` split are not recorded (the
 * store keeps search and held-out scores). With `searches`, the answers of a search this store does
 * not hold (another deployment's, or events left on the topic by an earlier run) are skipped: their
 * scores would otherwise be taken as already evaluated by this deployment's searches.
 */
import { consumeIdempotently, type EventBus, type IdempotentSubscription } from '@hm3/events';
import { common, events, TOPICS } from '@hm3/proto';
import type { ProcessedEventsRepository, ScoresRepository, SearchesRepository } from '@hm3/store';
import type { Logger } from '@hm3/service-kit';
import { recordEventId } from './eval-consumer.js';

/** The recorder's own group: it reads every answer, beside the optimizer and the policy. */
export const SCORE_RECORDER_GROUP = 'hm3-evaluator-scores';
const CONSUMER_NAME = 'evaluator-scores';

export interface ScoreRecorderOptions {
  readonly groupId?: string;
  /** Default hm3.eval.completed. */
  readonly topic?: string;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Record a search's answers only when this repository holds the search (answers without a search id are recorded). */
  readonly searches?: Pick<SearchesRepository, 'get'>;
}

/**
 * The processed marker of the recorder is namespaced (`<event id>#evaluator-scores`): other services
 * that consume the same completed event mark its bare id in the shared processed_events collection.
 */
export function recorderMarkerId(eventId: string): string {
  return `${eventId}#${CONSUMER_NAME}`;
}

export async function startScoreRecorder(
  bus: EventBus,
  markers: ProcessedEventsRepository,
  scores: ScoresRepository,
  options: ScoreRecorderOptions = {},
): Promise<IdempotentSubscription> {
  const { logger } = options;
  return consumeIdempotently(
    bus,
    markers,
    {
      groupId: options.groupId ?? SCORE_RECORDER_GROUP,
      topics: [options.topic ?? TOPICS.EVAL_COMPLETED],
      consumerName: CONSUMER_NAME,
      eventId: (event) => recorderMarkerId(recordEventId(event)),
    },
    async (event) => {
      const envelope = events.Envelope.decode(event.value);
      if (envelope.payload?.$case !== 'evalCompleted') {
        throw new Error(`payload: expected eval_completed, got ${envelope.payload?.$case ?? 'none'}`);
      }
      const candidateId = envelope.candidateId !== '' ? envelope.candidateId : event.key;
      if (
        options.searches !== undefined &&
        envelope.searchId !== '' &&
        (await options.searches.get(envelope.searchId)) === undefined
      ) {
        logger?.info(
          { eventId: envelope.eventId, traceId: envelope.traceId, candidateId, searchId: envelope.searchId },
          'scores of a search this store does not hold: not recorded',
        );
        return;
      }
      let recorded = 0;
      for (const score of envelope.payload.value.scores) {
        const split =
          score.split === common.Split.HELDOUT
            ? 'heldout'
            : score.split === common.Split.FULL
              ? undefined
              : 'search';
        if (split === undefined) continue;
        if (await scores.get(candidateId, score.objective, split)) continue;
        await scores.upsert({
          candidateId,
          objective: score.objective,
          split,
          searchId: envelope.searchId,
          value: score.value,
          details: {
            metric: score.metric,
            exampleCount: score.exampleCount,
            producer: envelope.producer,
            eventId: envelope.eventId,
            causationId: envelope.causationId,
          },
          createdAt: new Date(),
        });
        recorded++;
      }
      logger?.info(
        {
          eventId: envelope.eventId,
          traceId: envelope.traceId,
          candidateId,
          producer: envelope.producer,
          recorded,
        },
        'scores recorded',
      );
    },
  );
}
