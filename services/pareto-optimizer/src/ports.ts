/**
 * The search loop's ports, distributed: merges and evaluations go out as Kafka events and come back
 * through the ReplyRouter; the path policy is the rl-policy service over gRPC. Every result is
 * journaled (merges, proposals and reward reports in the journal; scores in the store's `scores`)
 * before the loop sees it, so a resumed search replays without repeating any of them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Hm3Error } from '@hm3/errors';
import { eventRecordHeaders, type EventBus } from '@hm3/events';
import { common, events, TOPICS, type policy } from '@hm3/proto';
import {
  GroupCommit,
  type EvaluatePort,
  type EvaluationRequest,
  type EvaluationResult,
  type MergePort,
  type ModelRef,
  type Objective,
  type PathPolicyHandle,
  type PolicyCreateSpec,
  type PolicyPort,
  type ProposedPath,
  type SearchRecipe,
} from '@hm3/search';
import type { Logger, ServiceClient } from '@hm3/service-kit';
import type { ScoreRecord, ScoresRepository } from '@hm3/store';
import type { Journal } from './journal.js';
import type { OptimizerMetrics } from './metrics.js';
import { evalKey, mergeKey, type Reply, type ReplyRouter } from './replies.js';
import { objectiveToWire, recipeToWire } from './wire.js';

export const PRODUCER = 'pareto-optimizer';

/** Thrown by a port when the search was cancelled before the call could start. */
export class SearchCancelledError extends Hm3Error {
  constructor(searchId: string) {
    super(`search ${searchId} was cancelled`, { status: 'CANCELLED', details: { searchId } });
  }
}

/** The trace id of a candidate of a search: the same on every re-send, in every service's logs. */
export function candidateTraceId(searchId: string, candidateId: string): string {
  const h = createHash('sha256').update(`${searchId}\n${candidateId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface SearchPortContext {
  readonly searchId: string;
  readonly bus: EventBus;
  readonly router: ReplyRouter;
  readonly journal: Journal;
  readonly scores: ScoresRepository;
  /** Aborted by CancelSearch. */
  readonly cancelled: AbortSignal;
  /** Aborted when this process stops: nothing more is sent (the next process resumes the search). */
  readonly halted: AbortSignal;
  readonly logger: Pick<Logger, 'info' | 'warn'>;
  readonly metrics?: OptimizerMetrics;
  /** How long one attempt may wait for its answer before the request is sent again. */
  readonly attemptTimeoutMs: number;
  /** Attempts per merge / evaluation. */
  readonly maxAttempts: number;
}

function envelopeRecord(envelope: events.Envelope): {
  key: string;
  value: Uint8Array;
  headers: Record<string, string>;
} {
  return {
    key: envelope.candidateId,
    value: events.Envelope.encode(envelope).finish(),
    headers: eventRecordHeaders(envelope),
  };
}

/**
 * Sends a request and waits for its answer, sending it again (a new event id, the same candidate id)
 * when an attempt times out or fails retryably. Cancellation does not stop a request already sent.
 */
async function request(
  ctx: SearchPortContext,
  topic: string,
  key: string,
  build: (eventId: string) => events.Envelope,
  what: string,
): Promise<Reply> {
  const requestIds = new Set<string>();
  let last = '';
  for (let attempt = 1; attempt <= ctx.maxAttempts; attempt++) {
    // A cancelled search lets in-flight work finish or time out; it sends nothing new.
    if (attempt > 1 && ctx.cancelled.aborted) throw new SearchCancelledError(ctx.searchId);
    if (ctx.halted.aborted) throw new Error('the optimizer is stopping');
    const eventId = randomUUID();
    requestIds.add(eventId);
    const waiting = ctx.router.wait(key, requestIds);
    const envelope = build(eventId);
    await ctx.bus.publish(topic, [envelopeRecord(envelope)]);
    ctx.metrics?.inFlight.inc({ search_id: ctx.searchId });
    ctx.logger.info(
      {
        searchId: ctx.searchId,
        candidateId: envelope.candidateId,
        traceId: envelope.traceId,
        eventId,
        attempt,
      },
      `${what} requested`,
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), ctx.attemptTimeoutMs);
    });
    try {
      const outcome = await Promise.race([waiting.reply, timeout]);
      if (outcome === 'timeout') {
        waiting.cancel();
        last = `no answer within ${ctx.attemptTimeoutMs} ms`;
        ctx.logger.warn(
          { searchId: ctx.searchId, candidateId: envelope.candidateId, traceId: envelope.traceId, attempt },
          `${what}: ${last}; sending again`,
        );
        continue;
      }
      if (outcome.kind === 'failed') {
        last = `${outcome.failure.code}: ${outcome.failure.message}`;
        if (outcome.failure.retryable) continue;
        throw new Hm3Error(`${what} of ${envelope.candidateId} failed: ${last}`, {
          status: outcome.failure.code === 'INVALID_ARGUMENT' ? 'INVALID_ARGUMENT' : 'INTERNAL',
          details: { candidateId: envelope.candidateId, searchId: ctx.searchId },
        });
      }
      return outcome;
    } finally {
      clearTimeout(timer);
      ctx.metrics?.inFlight.dec({ search_id: ctx.searchId });
    }
  }
  throw new Hm3Error(`${what}: ${ctx.maxAttempts} attempts failed (${last})`, {
    status: 'UNAVAILABLE',
    details: { searchId: ctx.searchId, key },
  });
}

export class KafkaMergePort implements MergePort {
  /** This search's journaled merges as they were when the run began (read once: a replay hits them). */
  private snapshot: Promise<Map<string, unknown>> | undefined;
  /** Journal writes of concurrent merges, grouped into one round trip per wave. */
  private readonly journalWrites: GroupCommit<readonly [string, unknown]>;

  constructor(
    private readonly ctx: SearchPortContext,
    private readonly base: ModelRef,
    private readonly experts: readonly ModelRef[],
  ) {
    this.journalWrites = new GroupCommit((entries) => ctx.journal.putMany(entries));
  }

  async merge(recipe: SearchRecipe, recipeId: string): Promise<{ uri: string }> {
    const journalKey = `${this.ctx.searchId}:merge:${recipeId}`;
    this.snapshot ??= this.ctx.journal.list(`${this.ctx.searchId}:merge:`);
    const journaled = (await this.snapshot).get(journalKey) as { uri: string } | undefined;
    if (journaled) return journaled;
    // A recipe whose weights are all zero is the base itself.
    if (recipe.terms.every((t) => t.weight === 0)) return { uri: this.base.uri };
    if (this.ctx.cancelled.aborted) throw new SearchCancelledError(this.ctx.searchId);
    const traceId = candidateTraceId(this.ctx.searchId, recipeId);
    const wire = recipeToWire(recipe, this.base, this.experts);
    const reply = await request(
      this.ctx,
      TOPICS.MERGE_REQUESTED,
      mergeKey(recipeId),
      (eventId) => ({
        eventId,
        schemaVersion: 1,
        type: TOPICS.MERGE_REQUESTED,
        occurredAt: new Date(),
        traceId,
        searchId: this.ctx.searchId,
        candidateId: recipeId,
        causationId: '',
        producer: PRODUCER,
        payload: { $case: 'mergeRequested', value: { recipe: wire, artifactId: '', device: 0 } },
      }),
      'merge',
    );
    if (reply.kind !== 'merge.completed') throw new Error('unreachable: a merge answered by an evaluation');
    const result = { uri: reply.value.uri };
    await this.journalWrites.add([journalKey, result]);
    this.ctx.logger.info(
      {
        searchId: this.ctx.searchId,
        candidateId: recipeId,
        traceId,
        uri: result.uri,
        reused: reply.value.reused,
      },
      'merge completed',
    );
    return result;
  }
}

export class KafkaEvaluatePort implements EvaluatePort {
  constructor(
    private readonly ctx: SearchPortContext,
    private readonly objectives: readonly Objective[],
    /** Deadline of one evaluation, sent with the request. */
    private readonly evaluationTimeoutMs: number,
  ) {}

  /** Scores this search already holds for the candidate on the split, or undefined. */
  /** This search's scores as stored when the run began (read once: a replay after a restart hits them). */
  private snapshot: Promise<Map<string, ScoreRecord[]>> | undefined;

  private async journaled(
    candidateId: string,
    split: 'search' | 'heldout',
  ): Promise<EvaluationResult | undefined> {
    this.snapshot ??= this.ctx.scores.listBySearch(this.ctx.searchId).then((all) => {
      const by = new Map<string, ScoreRecord[]>();
      for (const s of all)
        by.set(`${s.candidateId}|${s.split}`, [...(by.get(`${s.candidateId}|${s.split}`) ?? []), s]);
      return by;
    });
    const stored = (await this.snapshot).get(`${candidateId}|${split}`) ?? [];
    const found = this.objectives.map((o) => stored.find((s) => s.objective === o.name));
    if (!found.every((s) => s !== undefined)) return undefined;
    return {
      scores: found.map((s) => s!.value),
      examples: found.map((s) => Number(s!.details?.['exampleCount'] ?? s!.details?.['examples'] ?? 0)),
    };
  }

  async evaluate(req: EvaluationRequest): Promise<EvaluationResult> {
    const known = await this.journaled(req.candidateId, req.split);
    if (known) return known;
    if (this.ctx.cancelled.aborted) throw new SearchCancelledError(this.ctx.searchId);
    const traceId = candidateTraceId(this.ctx.searchId, req.candidateId);
    const path: common.InferencePath = {
      pool: req.path.pool.map((uri) => ({ uri, modelId: '' })),
      steps: req.path.steps.map((s) => ({ poolIndex: s.poolIndex, layerIndex: s.layerIndex })),
      headSource: req.path.headSource,
    };
    const objectives = this.objectives.map(objectiveToWire);
    const started = performance.now();
    const reply = await request(
      this.ctx,
      TOPICS.EVAL_REQUESTED,
      evalKey(req.candidateId, req.split),
      (eventId) => ({
        eventId,
        schemaVersion: 1,
        type: TOPICS.EVAL_REQUESTED,
        occurredAt: new Date(),
        traceId,
        searchId: this.ctx.searchId,
        candidateId: req.candidateId,
        causationId: '',
        producer: PRODUCER,
        payload: {
          $case: 'evalRequested',
          value: {
            target: { $case: 'path', value: path },
            objectives,
            split: req.split === 'heldout' ? 2 : 1,
            deadline: new Date(Date.now() + this.evaluationTimeoutMs),
          },
        },
      }),
      `evaluation (${req.split})`,
    );
    if (reply.kind !== 'eval.completed') throw new Error('unreachable: an evaluation answered by a merge');
    const byName = new Map(reply.value.scores.map((s) => [s.objective, s]));
    const scores = this.objectives.map((o) => byName.get(o.name));
    if (!scores.every((s) => s !== undefined))
      throw new Hm3Error(`the evaluator's answer for ${req.candidateId} lacks objectives`, {
        status: 'INTERNAL',
        details: { candidateId: req.candidateId, got: [...byName.keys()] },
      });
    this.ctx.metrics?.evaluations.inc({ search_id: this.ctx.searchId, split: req.split });
    this.ctx.logger.info(
      {
        searchId: this.ctx.searchId,
        candidateId: req.candidateId,
        traceId,
        split: req.split,
        scores: scores.map((s) => s!.value),
        seconds: (performance.now() - started) / 1000,
      },
      'evaluation completed',
    );
    return { scores: scores.map((s) => s!.value), examples: scores.map((s) => s!.exampleCount) };
  }
}

type PolicyClient = ServiceClient<typeof policy.PolicyServiceService>;

interface JournaledProposal {
  readonly episodeId: string;
  readonly preference: number[];
  readonly steps: { poolIndex: number; layerIndex: number }[];
}

/** PolicyService over gRPC, journaled per call: replayed proposals and reward reports are not sent again. */
export class GrpcPolicyPort implements PolicyPort {
  private creates = 0;

  constructor(
    private readonly client: PolicyClient,
    private readonly journal: Journal,
    private readonly searchId: string,
    /** The search's objective names, in score order (the reported scores' Score.objective). */
    private readonly objectiveNames: readonly string[],
  ) {}

  async create(spec: PolicyCreateSpec): Promise<PathPolicyHandle> {
    const policyId = `${this.searchId}-p${this.creates++}`;
    const s = spec.settings;
    const { policyId: id } = await this.client.createPolicy({
      policyId,
      spec: {
        pool: spec.pool.map((m) => ({ modelId: m.id.replace(/[^A-Za-z0-9._-]/g, '_'), uri: '' })),
        numLayers: spec.pool[0]?.layers ?? 0,
        tMax: spec.tMax,
        numObjectives: spec.objectives,
        settings: {
          lengthPenalty: s.lengthPenalty,
          nearestActions: s.nearestActions,
          exploration: s.exploration,
          discount: s.discount,
          gaeLambda: s.gaeLambda,
          clipRange: s.clipRange,
          valueCoef: s.valueCoef,
          entropyCoef: s.entropyCoef,
          learningRate: s.learningRate,
          hiddenSize: s.hiddenSize,
          embeddingSize: s.embeddingSize,
          epochs: s.epochs,
          amortized: spec.amortized,
          rewardScalarization: s.rewardScalarization === 'tchebycheff' ? 1 : 2,
        },
        seed: BigInt(spec.seed),
      },
    });
    const client = this.client;
    const journal = this.journal;
    const prefix = `${this.searchId}:policy:${id}`;
    // With a weighted-sum reward the service, given the scores, scalarises them to the same reward as
    // the search (sum_k w_k f_k - length penalty x T) and learns each objective's value from them; a
    // Tchebycheff reward needs z*, which the service is not given: the search's reward is sent alone.
    const sendScores = s.rewardScalarization !== 'tchebycheff';
    const names = this.objectiveNames;
    const episodes = new Map<number, string>();
    let proposals = 0;
    let reports = 0;
    let next = 0;
    return {
      async propose(preferences) {
        const key = `${prefix}:propose:${proposals++}`;
        let proposed = (await journal.get(key)) as JournaledProposal[] | undefined;
        if (!proposed) {
          proposed = [];
          // One call per run of equal preferences (the loop asks each preference's episodes in a row).
          const runs: { w: readonly number[]; count: number }[] = [];
          for (const w of preferences) {
            const last = runs.at(-1);
            if (last && last.w.length === w.length && last.w.every((x, i) => x === w[i])) last.count++;
            else runs.push({ w, count: 1 });
          }
          for (const { w, count } of runs) {
            const { paths } = await client.proposePaths({
              policyId: id,
              preference: { weights: [...w] },
              count,
              greedy: false,
            });
            for (const p of paths)
              proposed.push({
                episodeId: p.episodeId,
                preference: [...w],
                steps: (p.path?.steps ?? []).map((st) => ({
                  poolIndex: st.poolIndex,
                  layerIndex: st.layerIndex,
                })),
              });
          }
          await journal.put(key, proposed);
        }
        return proposed.map((p): ProposedPath => {
          const episode = next++;
          episodes.set(episode, p.episodeId);
          return { episode, preference: p.preference, steps: p.steps };
        });
      },
      async learn(ids, rewards, scores) {
        const key = `${prefix}:learn:${reports++}`;
        if ((await journal.get(key)) !== undefined) return;
        const { accepted } = await client.reportRewards({
          policyId: id,
          rewards: ids.map((e, i) => ({
            episodeId: episodes.get(e) ?? '',
            scores: sendScores
              ? (scores[i] ?? []).map((value, k) => ({
                  objective: names[k]!,
                  metric: '',
                  split: common.Split.SEARCH,
                  value,
                  exampleCount: 0,
                }))
              : [],
            reward: rewards[i]!,
          })),
        });
        // Episodes of a previous rl-policy process are unknown to a restarted one: nothing to train on.
        if (accepted > 0)
          for await (const progress of client.train({ policyId: id, iterations: 1 })) void progress;
        await journal.put(key, { accepted });
      },
      close() {
        return Promise.resolve();
      },
    };
  }
}
