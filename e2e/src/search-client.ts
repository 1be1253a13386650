/**
 * The e2e side of a search: a ParetoOptimizerService client, the spec of a zoo search, status polls,
 * and the checks against MongoDB (exactly the budget of evaluations, none duplicated, the front equal
 * to the non-dominated set of the stored scores).
 */
import { nonDominatedIndices } from '@hm3/moo';
import { specToWire } from '@hm3/pareto-optimizer';
import { optimizer } from '@hm3/proto';
import { parseSearchSpecYaml } from '@hm3/search';
import { createClient, type ServiceClient } from '@hm3/service-kit';
import type { Store } from '@hm3/store';

export type OptimizerClient = ServiceClient<typeof optimizer.ParetoOptimizerServiceService>;

export function optimizerClient(address: string): OptimizerClient {
  return createClient(optimizer.ParetoOptimizerServiceService, { address, deadlineMs: 60_000 });
}

export const OBJECTIVES = ['translate', 'math', 'code'] as const;

/** A small hm3 search over the zoo, as YAML (model paths inside the models root; a few examples per objective). */
export function zooSpecYaml(options: {
  budget: number;
  seed: number;
  maxExamples?: number;
  name?: string;
}): string {
  return [
    `name: ${options.name ?? 'e2e'}`,
    'base: base',
    'experts: [expert-translate, expert-math, expert-code]',
    'objectives:',
    ...OBJECTIVES.map(
      (t) => `  - { name: ${t}, dataset: "zoo:${t}", max_examples: ${options.maxExamples ?? 8} }`,
    ),
    'preference_count: 2',
    `budget: { max_evaluations: ${options.budget} }`,
    'rl: { episodes_per_iteration: 2 }',
    `seed: ${options.seed}`,
    '',
  ].join('\n');
}

export function zooSpec(options: {
  budget: number;
  seed: number;
  maxExamples?: number;
  name?: string;
}): optimizer.SearchSpec {
  return specToWire(parseSearchSpecYaml(zooSpecYaml(options), 'e2e.yaml'));
}

export async function status(client: OptimizerClient, searchId: string): Promise<optimizer.SearchStatus> {
  const { searches } = await client.listSearches({ pageSize: 500, pageToken: '', state: 0 });
  const found = searches.find((s) => s.searchId === searchId);
  if (!found) throw new Error(`search ${searchId} is not listed`);
  return found;
}

const TERMINAL = new Set([
  optimizer.SearchState.SUCCEEDED,
  optimizer.SearchState.FAILED,
  optimizer.SearchState.CANCELLED,
]);

/** Polls until `until` holds (the optimizer may be down in between: errors are retried). */
export async function waitFor(
  client: () => OptimizerClient,
  searchId: string,
  until: (s: optimizer.SearchStatus) => boolean,
  timeoutMs: number,
): Promise<optimizer.SearchStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: optimizer.SearchStatus | undefined;
  let error: unknown;
  while (Date.now() < deadline) {
    try {
      last = await status(client(), searchId);
      if (until(last)) return last;
      if (TERMINAL.has(last.state) && !until(last))
        throw new Error(`search ${searchId} ended ${optimizer.SearchState[last.state]}: ${last.message}`);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith(`search ${searchId} ended`)) throw e;
      error = e;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(
    `search ${searchId}: condition not reached in ${timeoutMs} ms (last: ${JSON.stringify(last)}, error: ${String(error)})`,
  );
}

export function isTerminal(s: optimizer.SearchStatus): boolean {
  return TERMINAL.has(s.state);
}

export interface StoredSearch {
  /** Candidates with this search's search-split scores. */
  readonly scored: Map<string, Map<string, number>>;
  /** Score documents of this search on the search split. */
  readonly scoreDocuments: number;
  /** Distinct (candidate, objective, split) keys among them: a duplicate document would make it smaller. */
  readonly scoreKeys: number;
  readonly candidates: number;
  /** Distinct ids among this search's candidate documents. */
  readonly candidateIds: number;
  readonly candidatesNotScored: string[];
  readonly front: string[];
  readonly nonDominated: string[];
}

/** What MongoDB holds about a search. */
export async function storedSearch(store: Store, searchId: string): Promise<StoredSearch> {
  // Evaluations this search ran: the score documents it wrote.
  const scores = (await store.scores.listBySearch(searchId)).filter((s) => s.split === 'search');
  const candidates = await store.candidates.listBySearch(searchId);
  // The front is over this search's candidates with their scores, whoever recorded them: scores are
  // keyed by content (candidate, objective, split), so a candidate another search already scored
  // keeps that score and is not evaluated again.
  const scored = new Map<string, Map<string, number>>();
  for (const c of candidates) {
    for (const s of await store.scores.listByCandidate(c.id)) {
      if (s.split !== 'search') continue;
      const m = scored.get(c.id) ?? new Map<string, number>();
      m.set(s.objective, s.value);
      scored.set(c.id, m);
    }
  }
  const ids = [...scored.keys()];
  const points = ids.map((id) => OBJECTIVES.map((o) => scored.get(id)!.get(o) ?? Number.NaN));
  const nonDominated = nonDominatedIndices(points).map((i) => ids[i]!);
  const front = (await store.fronts.latest(searchId))?.candidateIds ?? [];
  return {
    scored,
    scoreDocuments: scores.length,
    scoreKeys: new Set(scores.map((s) => `${s.candidateId}|${s.objective}|${s.split}`)).size,
    candidates: candidates.length,
    candidateIds: new Set(candidates.map((c) => c.id)).size,
    candidatesNotScored: candidates.filter((c) => c.state !== 'SCORED').map((c) => c.id),
    front: [...front].sort(),
    nonDominated: nonDominated.sort(),
  };
}
