/**
 * ParetoOptimizer: runs searches of @hm3/search over the distributed ports (Kafka merges and
 * evaluations, the rl-policy service), keeps every piece of state in the store (searches,
 * candidates, scores, fronts) and the journal, and resumes its RUNNING searches when it starts.
 * Transport-free apart from those ports: optimizer-grpc.ts is the thin gRPC edge.
 */
import { randomUUID } from 'node:crypto';
import { FailedPreconditionError, Hm3Error, InvalidArgumentError, NotFoundError } from '@hm3/errors';
import type { EventBus } from '@hm3/events';
import { common, events, optimizer, TOPICS } from '@hm3/proto';
import {
  canonicalJson,
  frontIndices,
  recommend,
  resolveModels,
  runSearch,
  specToDocument,
  validateSearchSpec,
  type ModelCatalogPort,
  type RecommendScalarization,
  type SearchEvent,
  type SearchResult,
  type SearchSpec,
} from '@hm3/search';
import type { Logger, ServiceClient } from '@hm3/service-kit';
import type { ArtifactStore, CandidateRecord, ScoreRecord, SearchState, Store } from '@hm3/store';
import type { policy } from '@hm3/proto';
import type { Journal } from './journal.js';
import type { OptimizerMetrics } from './metrics.js';
import {
  candidateTraceId,
  GrpcPolicyPort,
  KafkaEvaluatePort,
  KafkaMergePort,
  PRODUCER,
  type SearchPortContext,
} from './ports.js';
import { ARTIFACT_SCHEME } from './catalog.js';
import { OPTIMIZER_CONSUMER_GROUP, REPLY_TOPICS, ReplyRouter } from './replies.js';
import { scoresToWire, specFromWire, stateFromWire, statusToWire } from './wire.js';
import { eventRecordHeaders } from '@hm3/events';

export interface ParetoOptimizerOptions {
  readonly store: Store;
  readonly bus: EventBus;
  readonly journal: Journal;
  readonly catalog: ModelCatalogPort;
  readonly policy: ServiceClient<typeof policy.PolicyServiceService>;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly metrics?: OptimizerMetrics;
  /** How long a merge or evaluation request waits for its answer before it is sent again; default 120 s. */
  readonly attemptTimeoutMs?: number;
  /** Attempts per request; default 5. */
  readonly maxAttempts?: number;
  /** Deadline of one evaluation (sent with the request); default 600 s. */
  readonly evaluationTimeoutMs?: number;
  /**
   * Merges and evaluations a search keeps in flight (a round's proposals are sent at once, up to
   * this many; several evaluator replicas share them); default 32. The budget stays exact.
   */
  readonly concurrency?: number;
  /** Consumer group of the answers (tests use their own). */
  readonly groupId?: string;
  /**
   * Retention: when a search completes, the merged checkpoints of its candidates that are neither on
   * its front nor of its last `keepRounds` rounds (nor used by another open search) are deleted.
   */
  readonly retention?: { readonly artifacts: ArtifactStore; readonly keepRounds: number };
}

type WatchEvent = optimizer.WatchSearchResponse;

interface Run {
  readonly controller: AbortController;
  readonly listeners: Set<(event: WatchEvent) => void>;
  evaluations: number;
  /** Candidates scored so far (cache hits included). */
  readonly scored: Set<string>;
  /** Their search-split scores, for hm3.front.updated. */
  readonly searchScores: Map<string, readonly number[]>;
  /** The front last published on hm3.front.updated (ids in archive order). */
  lastFront: string;
  done: Promise<void>;
}

const TERMINAL: ReadonlySet<SearchState> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

/**
 * FerretDB stores no nested arrays: the loop records a path's steps as [pool, layer] pairs, which
 * become {pool, layer} objects here (reported to the search lib's owners: the loop should do this).
 */
export function storableCandidate(c: CandidateRecord): CandidateRecord {
  const steps = c.path?.['steps'];
  if (!Array.isArray(steps) || !steps.every((s) => Array.isArray(s))) return c;
  return {
    ...c,
    path: {
      ...c.path,
      steps: (steps as unknown[][]).map(([pool, layer]) => ({ pool, layer })),
    },
  };
}

/** The recipe ids of the merged models a candidate uses (its artifact id and its path's `merge:` pool keys). */
export function mergedRecipes(c: CandidateRecord): string[] {
  const out = new Set<string>();
  if (c.artifactId) out.add(c.artifactId);
  const pool = c.path?.['pool'];
  if (Array.isArray(pool))
    for (const key of pool) if (typeof key === 'string' && key.startsWith('merge:')) out.add(key.slice(6));
  return [...out];
}

function scopedStore(store: Store, searchId: string): Store {
  const scores = store.scores;
  const candidates = store.candidates;
  return {
    models: store.models,
    searches: store.searches,
    candidates: {
      insert: (c) => candidates.insert(storableCandidate(c)),
      insertIfAbsent: (c) => candidates.insertIfAbsent(storableCandidate(c)),
      insertManyIfAbsent: (cs) => candidates.insertManyIfAbsent(cs.map(storableCandidate)),
      get: (id) => candidates.get(id),
      update: (id, patch) => candidates.update(id, patch),
      updateMany: (ids, patch) => candidates.updateMany(ids, patch),
      listBySearch: (id) => candidates.listBySearch(id),
    },
    // This search's own scores come back through the evaluate port (journaled, counted as its
    // evaluations); the loop sees only other searches' scores as a cache.
    scores: {
      insert: (s) => scores.insert(s),
      upsert: (s) => scores.upsert(s),
      upsertMany: (s) => scores.upsertMany(s),
      get: (c, o, sp) => scores.get(c, o, sp),
      listByCandidate: async (c) => (await scores.listByCandidate(c)).filter((s) => s.searchId !== searchId),
      listByCandidates: async (ids) =>
        (await scores.listByCandidates(ids)).filter((s) => s.searchId !== searchId),
      listBySearch: (s) => scores.listBySearch(s),
    },
    fronts: store.fronts,
    policies: store.policies,
    processedEvents: store.processedEvents,
    start: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

export class ParetoOptimizer {
  private readonly runs = new Map<string, Run>();
  private readonly router: ReplyRouter;
  private stopping = false;
  private readonly halt = new AbortController();

  constructor(private readonly options: ParetoOptimizerOptions) {
    this.router = new ReplyRouter(options.bus, options.groupId);
  }

  /** Starts consuming answers, then resumes every search left RUNNING or PENDING. */
  async start(): Promise<void> {
    await this.router.start();
    const open = [
      ...(await this.options.store.searches.list({ state: 'RUNNING' })),
      ...(await this.options.store.searches.list({ state: 'PENDING' })),
    ];
    for (const record of open) {
      const cancel = (await this.options.journal.get(`${record.id}:cancel`)) as
        { reason: string } | undefined;
      if (cancel) {
        await this.finish(record.id, 'CANCELLED', cancel.reason);
        continue;
      }
      try {
        this.launch(record.id, validateSearchSpec(record.spec, `searches.${record.id}.spec`));
        this.options.logger.info({ searchId: record.id }, 'search resumed');
      } catch (error) {
        await this.finish(record.id, 'FAILED', error instanceof Error ? error.message : String(error));
      }
    }
  }

  /**
   * Stops sending and consuming; running searches end here and stay RUNNING in the store, to resume
   * in the next process (as after a crash).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.halt.abort();
    await this.router.stop();
    await Promise.allSettled([...this.runs.values()].map((r) => r.done));
  }

  /**
   * Consumer lag per topic of the groups a search depends on (the optimizer's answers, the
   * evaluators' and mergers' requests), also set on the `hm3_consumer_lag` gauge.
   */
  async lag(): Promise<Record<string, Record<string, number>>> {
    const groups: [string, string[]][] = [
      [this.options.groupId ?? OPTIMIZER_CONSUMER_GROUP, [...REPLY_TOPICS]],
      ['hm3-evaluator', [TOPICS.EVAL_REQUESTED]],
      ['hm3-tensor-merge', [TOPICS.MERGE_REQUESTED]],
    ];
    const out: Record<string, Record<string, number>> = {};
    for (const [group, topics] of groups) {
      out[group] = await this.options.bus.lag(group, topics);
      for (const [topic, lag] of Object.entries(out[group]))
        this.options.metrics?.lag.set({ topic, group }, lag);
    }
    return out;
  }

  async startSearch(wireSpec: optimizer.SearchSpec | undefined, requestedId: string): Promise<string> {
    const spec = specFromWire(wireSpec);
    await resolveModels(spec, this.options.catalog);
    const searchId = requestedId !== '' ? requestedId : `s-${randomUUID()}`;
    if (!/^[A-Za-z0-9._-]{1,80}$/.test(searchId))
      throw new InvalidArgumentError(`search_id ${JSON.stringify(searchId)} is not allowed`, {
        field: 'search_id',
      });
    const document = specToDocument(spec);
    const existing = await this.options.store.searches.get(searchId);
    if (existing) {
      if (canonicalJson(existing.spec) === canonicalJson(document)) return searchId;
      throw new Hm3Error(`search ${searchId} already exists with another spec`, {
        status: 'ALREADY_EXISTS',
        details: { field: 'search_id', searchId },
      });
    }
    const at = new Date();
    await this.options.store.searches.insert({
      id: searchId,
      spec: document,
      state: 'PENDING',
      round: 0,
      createdAt: at,
      updatedAt: at,
    });
    this.launch(searchId, spec);
    this.options.logger.info({ searchId, budget: spec.budget.maxEvaluations }, 'search started');
    return searchId;
  }

  private launch(searchId: string, spec: SearchSpec): void {
    const controller = new AbortController();
    const run: Run = {
      controller,
      listeners: new Set(),
      evaluations: 0,
      scored: new Set(),
      searchScores: new Map(),
      lastFront: '',
      done: Promise.resolve(),
    };
    this.runs.set(searchId, run);
    const o = this.options;
    const ctx: SearchPortContext = {
      searchId,
      bus: o.bus,
      router: this.router,
      journal: o.journal,
      scores: o.store.scores,
      cancelled: controller.signal,
      halted: this.halt.signal,
      logger: o.logger,
      ...(o.metrics ? { metrics: o.metrics } : {}),
      attemptTimeoutMs: o.attemptTimeoutMs ?? 120_000,
      maxAttempts: o.maxAttempts ?? 5,
    };
    const evaluationTimeoutMs = o.evaluationTimeoutMs ?? 600_000;
    let publishing = Promise.resolve();
    const names = spec.objectives.map((x) => x.name);
    run.done = runSearch(
      spec,
      {
        catalog: o.catalog,
        merge: new KafkaMergePort(ctx, spec.base, spec.experts),
        evaluate: new KafkaEvaluatePort(ctx, spec.objectives, evaluationTimeoutMs),
        policy: new GrpcPolicyPort(o.policy, o.journal, searchId, names),
        store: scopedStore(o.store, searchId),
        signal: controller.signal,
        concurrency: o.concurrency ?? 32,
        onEvent: (event) => {
          const published = this.onEvent(searchId, run, event, names);
          if (published) publishing = publishing.then(() => published).catch(() => undefined);
        },
      },
      { searchId },
    )
      .then(async (result: SearchResult) => {
        await publishing;
        if (result.state !== 'CANCELLED') await this.publishFinalFront(searchId, result, names);
        if (result.state !== 'CANCELLED')
          await this.retain(searchId).catch((error: unknown) =>
            o.logger.warn({ searchId, err: error }, 'retention failed; artifacts kept'),
          );
        await this.finish(
          searchId,
          result.state === 'CANCELLED' ? 'CANCELLED' : 'COMPLETED',
          result.state === 'CANCELLED' ? await this.cancelReason(searchId) : undefined,
        );
        o.logger.info(
          { searchId, evaluations: result.evaluations, front: result.front.length, stop: result.stopReason },
          'search finished',
        );
      })
      .catch(async (error: unknown) => {
        await publishing;
        if (this.stopping) {
          // The loop may have recorded FAILED on its way out; the search resumes in the next process.
          await o.store.searches
            .update(searchId, { state: 'RUNNING', error: undefined, updatedAt: new Date() })
            .catch(() => undefined);
          return;
        }
        if (controller.signal.aborted)
          await this.finish(searchId, 'CANCELLED', await this.cancelReason(searchId));
        else {
          const message = error instanceof Error ? error.message : String(error);
          o.logger.error({ searchId, err: error }, 'search failed');
          await this.finish(searchId, 'FAILED', message);
        }
      })
      .finally(() => {
        this.runs.delete(searchId);
      });
  }

  /** Deletes the merged checkpoints the retention policy lets go; returns the artifact ids deleted. */
  async retain(searchId: string): Promise<string[]> {
    const retention = this.options.retention;
    if (!retention) return [];
    const store = this.options.store;
    const candidates = await store.candidates.listBySearch(searchId);
    const front = new Set((await store.fronts.latest(searchId))?.candidateIds ?? []);
    const lastRound = Math.max(0, ...candidates.map((c) => c.round));
    const keep = new Set<string>();
    for (const c of candidates)
      if (front.has(c.id) || c.round > lastRound - retention.keepRounds)
        for (const r of mergedRecipes(c)) keep.add(r);
    for (const other of await store.searches.list())
      if (other.id !== searchId && !TERMINAL.has(other.state))
        for (const c of await store.candidates.listBySearch(other.id))
          for (const r of mergedRecipes(c)) keep.add(r);
    const deleted: string[] = [];
    const recipes = new Set(candidates.flatMap(mergedRecipes));
    for (const recipeId of recipes) {
      if (keep.has(recipeId)) continue;
      const merged = (await this.options.journal.get(`${searchId}:merge:${recipeId}`)) as
        { uri: string } | undefined;
      if (!merged?.uri.startsWith(ARTIFACT_SCHEME)) continue;
      const artifactId = merged.uri.slice(ARTIFACT_SCHEME.length);
      if (await retention.artifacts.delete(artifactId)) {
        deleted.push(artifactId);
        this.options.logger.info({ searchId, recipeId, artifactId }, 'artifact deleted by retention');
      }
    }
    return deleted;
  }

  private async cancelReason(searchId: string): Promise<string> {
    const c = (await this.options.journal.get(`${searchId}:cancel`)) as { reason: string } | undefined;
    return c?.reason ?? 'cancelled';
  }

  private async finish(searchId: string, state: SearchState, message?: string): Promise<void> {
    await this.options.store.searches
      .update(searchId, {
        state,
        ...(message === undefined ? {} : { error: message }),
        updatedAt: new Date(),
      })
      .catch((error: unknown) => this.options.logger.warn({ searchId, err: error }, 'state not recorded'));
    const run = this.runs.get(searchId);
    if (run) {
      const status = await this.status(searchId).catch(() => undefined);
      if (status) for (const l of run.listeners) l({ event: { $case: 'status', value: status } });
    }
  }

  /** Maps a loop event to watchers and metrics; returns the publish of a round.completed event, if any. */
  private onEvent(
    searchId: string,
    run: Run,
    event: SearchEvent,
    names: readonly string[],
  ): Promise<void> | undefined {
    const emit = (e: WatchEvent): void => {
      for (const l of run.listeners) l(e);
    };
    if (event.type === 'candidate.scored') {
      run.evaluations = event.evaluations;
      run.scored.add(event.candidate.id);
      run.searchScores.set(event.candidate.id, event.candidate.search);
      emit({
        event: {
          $case: 'candidate',
          value: common.Candidate.fromPartial({
            candidateId: event.candidate.id,
            round: event.candidate.round,
            ...(event.candidate.preference
              ? { preference: { weights: [...event.candidate.preference] } }
              : {}),
            scores: event.candidate.search.map((value, k) => ({
              objective: names[k] ?? '',
              split: common.Split.SEARCH,
              value,
            })),
          }),
        },
      });
      return undefined;
    }
    if (event.type === 'round.completed') {
      const s = event.summary;
      this.options.metrics?.frontSize.set({ search_id: searchId }, s.frontSize);
      this.options.metrics?.hypervolume.set({ search_id: searchId }, s.hypervolume);
      emit({
        event: {
          $case: 'round',
          value: {
            round: s.round,
            candidatesScored: s.candidatesScored,
            frontSize: s.frontSize,
            hypervolume: s.hypervolume,
          },
        },
      });
      void this.status(searchId).then(
        (status) => emit({ event: { $case: 'status', value: status } }),
        () => undefined,
      );
      // A cancelled search produces no event once its in-flight work has drained.
      if (run.controller.signal.aborted) return undefined;
      const eventId = randomUUID();
      const envelope: events.Envelope = {
        eventId,
        schemaVersion: 1,
        type: TOPICS.ROUND_COMPLETED,
        occurredAt: new Date(),
        traceId: candidateTraceId(searchId, `round-${s.round}`),
        searchId,
        candidateId: '',
        causationId: '',
        producer: PRODUCER,
        payload: {
          $case: 'roundCompleted',
          value: {
            round: s.round,
            candidatesScored: s.candidatesScored,
            frontSize: s.frontSize,
            hypervolume: s.hypervolume,
            evaluationsDone: s.evaluations,
          },
        },
      };
      const roundPublished = this.options.bus.publish(TOPICS.ROUND_COMPLETED, [
        {
          key: searchId,
          value: events.Envelope.encode(envelope).finish(),
          headers: eventRecordHeaders({ eventId, traceId: envelope.traceId }),
        },
      ]);
      // hm3.front.updated when the round changed the front.
      const ids = [...run.searchScores.keys()];
      const front = frontIndices(ids.map((id) => run.searchScores.get(id)!)).map((i) => ids[i]!);
      if (front.join(',') === run.lastFront) return roundPublished;
      run.lastFront = front.join(',');
      const members = front.map((id) => ({ id, scores: run.searchScores.get(id)! }));
      return Promise.all([
        roundPublished,
        this.publishFront(searchId, s.round, members, s.hypervolume, names, false),
      ]).then(() => undefined);
    }
    return undefined;
  }

  /** The final front with its held-out scores on hm3.front.updated (final: true). */
  private publishFinalFront(searchId: string, result: SearchResult, names: readonly string[]): Promise<void> {
    const byId = new Map(result.candidates.map((c) => [c.id, c]));
    const members = result.front.map((id) => ({ id, scores: byId.get(id)?.heldout ?? [] }));
    const round = Math.max(0, result.rounds.at(-1)?.round ?? 0);
    return this.publishFront(searchId, round, members, result.hypervolume.heldout, names, true).catch(
      (error: unknown) =>
        this.options.logger.warn({ searchId, err: error }, 'the final front.updated event was not published'),
    );
  }

  private publishFront(
    searchId: string,
    round: number,
    members: readonly { id: string; scores: readonly number[] }[],
    hypervolume: number,
    names: readonly string[],
    final: boolean,
  ): Promise<void> {
    const split = final ? common.Split.HELDOUT : common.Split.SEARCH;
    const eventId = randomUUID();
    const envelope: events.Envelope = {
      eventId,
      schemaVersion: 1,
      type: TOPICS.FRONT_UPDATED,
      occurredAt: new Date(),
      traceId: candidateTraceId(searchId, final ? 'front-final' : `front-${round}`),
      searchId,
      candidateId: '',
      causationId: '',
      producer: PRODUCER,
      payload: {
        $case: 'frontUpdated',
        value: {
          round,
          split,
          members: members.map((m) =>
            common.Candidate.fromPartial({
              candidateId: m.id,
              round,
              scores: m.scores.map((value, k) => ({ objective: names[k] ?? '', split, value })),
            }),
          ),
          hypervolume,
          final,
        },
      },
    };
    return this.options.bus.publish(TOPICS.FRONT_UPDATED, [
      {
        key: searchId,
        value: events.Envelope.encode(envelope).finish(),
        headers: eventRecordHeaders({ eventId, traceId: envelope.traceId }),
      },
    ]);
  }

  private async record(searchId: string) {
    const record = await this.options.store.searches.get(searchId);
    if (!record) throw new NotFoundError(`no search ${searchId}`, { field: 'search_id', searchId });
    return record;
  }

  /** This search's own search-split scores, by candidate. */
  private async ownScores(searchId: string): Promise<Map<string, ScoreRecord[]>> {
    const by = new Map<string, ScoreRecord[]>();
    for (const s of await this.options.store.scores.listBySearch(searchId)) {
      if (s.split !== 'search') continue;
      const list = by.get(s.candidateId) ?? [];
      list.push(s);
      by.set(s.candidateId, list);
    }
    return by;
  }

  async status(searchId: string): Promise<optimizer.SearchStatus> {
    const record = await this.record(searchId);
    const run = this.runs.get(searchId);
    // A running search counts in memory; a finished one (or another replica's) from its stored scores.
    const counted = run ? run.evaluations : (await this.ownScores(searchId)).size;
    return statusToWire({
      record,
      cancelling: run?.controller.signal.aborted === true,
      evaluations: counted,
      candidatesScored: run ? run.scored.size : counted,
      front: await this.options.store.fronts.latest(searchId),
    });
  }

  async *watch(searchId: string, signal: AbortSignal): AsyncGenerator<WatchEvent> {
    const queue: WatchEvent[] = [];
    let wake: (() => void) | undefined;
    const run = this.runs.get(searchId);
    const listener = (e: WatchEvent): void => {
      queue.push(e);
      wake?.();
    };
    run?.listeners.add(listener);
    try {
      const first = await this.status(searchId);
      yield { event: { $case: 'status', value: first } };
      if (isTerminal(first.state)) return;
      let last = first.updatedAt?.getTime() ?? 0;
      while (!signal.aborted) {
        if (queue.length === 0) {
          // Without a local run (another replica runs it), poll the store.
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, run && this.runs.has(searchId) ? 5000 : 1000);
          });
          wake = undefined;
        }
        while (queue.length > 0) {
          const e = queue.shift()!;
          yield e;
          if (e.event?.$case === 'status' && isTerminal(e.event.value.state)) return;
        }
        if (!this.runs.has(searchId)) {
          const status = await this.status(searchId);
          const at = status.updatedAt?.getTime() ?? 0;
          if (at !== last || isTerminal(status.state)) {
            last = at;
            yield { event: { $case: 'status', value: status } };
            if (isTerminal(status.state)) return;
          }
        }
      }
    } finally {
      run?.listeners.delete(listener);
    }
  }

  async front(searchId: string, round?: number): Promise<optimizer.Front> {
    const record = await this.record(searchId);
    const fronts = this.options.store.fronts;
    const front =
      round === undefined
        ? await fronts.latest(searchId)
        : (await fronts.list(searchId)).find((f) => f.round === round);
    if (!front)
      throw new NotFoundError(
        round === undefined
          ? `search ${searchId} has no front yet`
          : `search ${searchId} has no front after round ${round}`,
        { searchId, ...(round === undefined ? {} : { round }) },
      );
    const members = await Promise.all(front.candidateIds.map((id) => this.candidate(id)));
    return {
      searchId,
      round: front.round,
      split: common.Split.SEARCH,
      members,
      hypervolume: front.hypervolume,
      final: TERMINAL.has(record.state),
    };
  }

  private async candidate(id: string): Promise<common.Candidate> {
    const record: CandidateRecord | undefined = await this.options.store.candidates.get(id);
    const scores = await this.options.store.scores.listByCandidate(id);
    return common.Candidate.fromPartial({
      candidateId: id,
      round: record?.round ?? 0,
      mergedArtifactId: record?.artifactId ?? '',
      scores: scoresToWire(scores),
    });
  }

  async recommend(
    searchId: string,
    weights: readonly number[],
    scalarization: RecommendScalarization | undefined,
  ): Promise<{ candidate: common.Candidate; value: number }> {
    const record = await this.record(searchId);
    const spec = validateSearchSpec(record.spec, `searches.${searchId}.spec`);
    const front = await this.front(searchId);
    const names = spec.objectives.map((o) => o.name);
    const candidates = front.members.map((m) => ({
      id: m.candidateId,
      search: names.map(
        (n) =>
          m.scores.find((s) => s.objective === n && s.split === common.Split.SEARCH)?.value ?? Number.NaN,
      ),
    }));
    if (candidates.some((c) => c.search.some((v) => !Number.isFinite(v))))
      throw new FailedPreconditionError(`search ${searchId}: a front member lacks search scores`, {
        searchId,
      });
    const pseudo = {
      searchId,
      objectives: names,
      front: candidates.map((c) => c.id),
      candidates,
    } as unknown as SearchResult;
    const chosen = recommend(pseudo, weights, scalarization ?? spec.scalarization);
    const member = front.members.find((m) => m.candidateId === chosen.candidate.id)!;
    return { candidate: member, value: chosen.value };
  }

  async cancel(searchId: string, reason: string): Promise<optimizer.SearchStatus> {
    const record = await this.record(searchId);
    if (TERMINAL.has(record.state)) return this.status(searchId);
    await this.options.journal.put(`${searchId}:cancel`, { reason: reason === '' ? 'cancelled' : reason });
    const run = this.runs.get(searchId);
    if (run) {
      run.controller.abort(new Error(reason === '' ? 'cancelled' : reason));
      this.options.logger.info({ searchId, reason }, 'search cancelling');
    } else await this.finish(searchId, 'CANCELLED', reason === '' ? 'cancelled' : reason);
    return this.status(searchId);
  }

  /** Waits until a search run of this process ends (tests, benchmarks). */
  async settled(searchId: string): Promise<void> {
    await this.runs.get(searchId)?.done;
  }

  async list(
    pageSize: number,
    pageToken: string,
    state: optimizer.SearchState,
  ): Promise<{ searches: optimizer.SearchStatus[]; nextPageToken: string }> {
    const filter = stateFromWire(state);
    const all = await this.options.store.searches.list(filter === undefined ? undefined : { state: filter });
    all.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1));
    const size = pageSize > 0 ? Math.min(pageSize, 500) : 50;
    const offset = pageToken === '' ? 0 : Number(pageToken);
    if (!Number.isInteger(offset) || offset < 0)
      throw new InvalidArgumentError(`page_token "${pageToken}" is not one this service gave`, {
        field: 'page_token',
      });
    const page = all.slice(offset, offset + size);
    return {
      searches: await Promise.all(page.map((s) => this.status(s.id))),
      nextPageToken: offset + size < all.length ? String(offset + size) : '',
    };
  }
}

function isTerminal(state: optimizer.SearchState): boolean {
  return (
    state === optimizer.SearchState.SUCCEEDED ||
    state === optimizer.SearchState.FAILED ||
    state === optimizer.SearchState.CANCELLED
  );
}
