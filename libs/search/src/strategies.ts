/**
 * The strategies of a search, all under the same evaluation budget:
 * - hm3: per preference w, the upper-level merge (w as the DARE-TIES task weights, or the best
 *   NSGA-II merge for w), then the path policy (PPO) over the pool {experts, merged(w)}, head = merged;
 * - hm3-amortized: the same pools, one preference-conditioned policy for every w;
 * - param-only: NSGA-II over DARE-TIES weights, densities and lambda (merged models as they are);
 * - arch-only: the path policy over the experts alone;
 * - random: uniform merges, and uniform paths over {experts, that merge};
 * - task_arithmetic / ties / dare_ties: one merge with weights 1/K and density 0.5.
 * Path policies start from every pure model's own path (and the merged model's own path).
 */
import { Nsga2 } from '@hm3/moo';
import { ownPathDraft, type PoolEntry } from './candidate.js';
import { mapLimit } from './concurrency.js';
import type { PathPolicyHandle, PathStepRef } from './ports.js';
import type { ScoreItem, ScoredCandidate, SearchContext } from './search.js';
import { SINGLE_METHODS, type SingleMethod } from './spec.js';

export async function runStrategy(ctx: SearchContext): Promise<void> {
  const strategy = ctx.spec.strategy;
  if ((SINGLE_METHODS as readonly string[]).includes(strategy))
    return singleMethod(ctx, strategy as SingleMethod);
  switch (strategy) {
    case 'param-only':
      return paramOnly(ctx, Number.POSITIVE_INFINITY);
    case 'random':
      return randomSearch(ctx);
    case 'arch-only':
      return archOnly(ctx);
    case 'hm3':
    case 'hm3-amortized':
      return hierarchical(ctx, strategy === 'hm3-amortized');
  }
}

/**
 * Scores a batch of proposals (see SearchContext.scoreMany); when the budget or a stop left any of
 * them unscored, ends the strategy (BudgetExhausted) after `use` has seen the scored ones.
 */
async function scoreAll(
  ctx: SearchContext,
  items: readonly ScoreItem[],
  use: (scored: ScoredCandidate, index: number) => void = () => undefined,
): Promise<void> {
  const scored = await ctx.scoreMany(items);
  scored.forEach((c, i) => c && use(c, i));
  if (scored.some((c) => c === undefined)) ctx.checkStop();
}

/** Merges and other per-proposal port calls of a round, as many at once as evaluations. */
function concurrency(ctx: SearchContext): number {
  return Math.max(1, ctx.deps.concurrency ?? 1);
}

/** Round 0 of the path strategies: every expert as is; sets z* from their scores. */
async function seedExperts(ctx: SearchContext): Promise<void> {
  await scoreAll(
    ctx,
    ctx.experts.map((_, i) => ({ draft: ownPathDraft(ctx.experts, i), meta: { origin: 'seed' as const } })),
  );
  const seeds = [...ctx.archive.values()].filter((c) => c.origin === 'seed');
  ctx.ideal = ctx.spec.objectives.map((_, k) => Math.max(...seeds.map((c) => c.search[k]!)));
}

async function singleMethod(ctx: SearchContext, method: SingleMethod): Promise<void> {
  ctx.startRound(1);
  const k = ctx.experts.length;
  const density = method === 'task_arithmetic' ? 1 : 0.5;
  const merged = await ctx.mergeEntry(
    ctx.recipeFor(new Array<number>(k).fill(1 / k), density, 1, method),
    method,
  );
  await ctx.score(ownPathDraft([merged], 0), { origin: 'merge' });
  await ctx.endRound();
}

/** NSGA-II over merges until `share` evaluations are spent (or the budget ends). */
async function paramOnly(ctx: SearchContext, share: number): Promise<void> {
  const box = ctx.upperBox();
  const population =
    ctx.spec.upper.population > 0 ? ctx.spec.upper.population : Math.max(8, ctx.preferences.length);
  const nsga = new Nsga2(
    { ...box, objectives: ctx.k },
    { populationSize: population, seed: ctx.spec.seed, survivalInterval: population },
  );
  const limit = ctx.evaluations + share;
  let generation = 0;
  while (ctx.evaluations < limit) {
    ctx.startRound(population);
    const asked = nsga.ask(population);
    if (asked.length === 0) break;
    // Merge no more than the evaluations left can score.
    const room = Math.min(asked.length, limit - ctx.evaluations, ctx.remaining);
    const chosen = asked.slice(0, room);
    for (const cand of asked.slice(room)) nsga.fail(cand.id);
    const first = generation;
    generation += chosen.length;
    const merged = await mapLimit(chosen, concurrency(ctx), (cand, i) =>
      ctx.mergeEntry(ctx.recipeFromVector(cand.x), `merge#${ctx.round}.${first + i}`),
    );
    const scored = await ctx.scoreMany(
      merged.map((m) => ({ draft: ownPathDraft([m], 0), meta: { origin: 'upper' as const } })),
      { limit: limit - ctx.evaluations },
    );
    scored.forEach((c, i) => (c ? nsga.tell(chosen[i]!.id, [...c.search]) : nsga.fail(chosen[i]!.id)));
    if (scored.some((c) => c === undefined)) ctx.checkStop();
    await ctx.endRound();
  }
}

/** The head source of a path over experts only: the model most of its steps come from (ties: the first step's). */
export function majorityHead(steps: readonly PathStepRef[]): number {
  const counts = new Map<number, number>();
  for (const s of steps) counts.set(s.poolIndex, (counts.get(s.poolIndex) ?? 0) + 1);
  let best = steps[0]!.poolIndex;
  for (const [m, c] of counts) if (c > counts.get(best)!) best = m;
  return best;
}

interface PolicyRun {
  readonly policy: PathPolicyHandle;
  /** The preferences this policy serves, with the pool of each. */
  readonly members: readonly { readonly w: readonly number[]; readonly pool: readonly PoolEntry[] }[];
  /** Head source of proposed paths: a pool index, or 'majority'. */
  readonly head: number | 'majority';
}

interface Incumbent {
  readonly steps: readonly PathStepRef[];
  readonly reward: number;
}

/** Keeps the best few paths of one preference (by episode reward), best first. */
function remember(list: Incumbent[], item: Incumbent, keep = 8): void {
  if (list.some((i) => samePath(i.steps, item.steps))) return;
  list.push(item);
  list.sort((a, b) => b.reward - a.reward);
  list.length = Math.min(list.length, keep);
}

function samePath(a: readonly PathStepRef[], b: readonly PathStepRef[]): boolean {
  return (
    a.length === b.length &&
    a.every((s, i) => s.poolIndex === b[i]!.poolIndex && s.layerIndex === b[i]!.layerIndex)
  );
}

/**
 * A neighbour of an incumbent path: one layer, or a block of 2-3 layers, taken from another pool
 * model at the same positions (layer t at step t, where the layers were trained to sit).
 */
export function mutatePath(
  steps: readonly PathStepRef[],
  poolSize: number,
  layers: number,
  rng: () => number,
): PathStepRef[] {
  const out = steps.map((s) => ({ ...s }));
  const length = rng() < 0.6 ? 1 : 2 + Math.floor(rng() * 2);
  const start = Math.floor(rng() * Math.max(1, out.length - length + 1));
  const current = out[start]!.poolIndex;
  let model = Math.floor(rng() * (poolSize - 1));
  if (model >= current) model++;
  for (let t = start; t < Math.min(out.length, start + length); t++)
    out[t] = { poolIndex: model, layerIndex: Math.min(t, layers - 1) };
  return out;
}

/**
 * The lower level in rounds. First every pool model's own path (under the run's head source) is
 * scored for each preference: the starting points. Then each round, per preference,
 * `episodes_per_iteration` paths: the policy's proposals (PPO learns from their rewards) and a
 * `mutation_share` of neighbours of the best paths found so far for that preference (drawn from the
 * incumbents as they stand after the round's proposals). A round's proposals of every run are scored
 * as one batch, its mutations as a second one while the policies learn.
 */
async function policyRounds(ctx: SearchContext, runs: readonly PolicyRun[]): Promise<void> {
  const e = ctx.spec.rl.episodesPerIteration;
  const mutations = Math.min(e - 1, Math.round(e * ctx.spec.rl.mutationShare));
  const fromPolicy = e - mutations;
  const incumbents = runs.map((run) => run.members.map(() => [] as Incumbent[]));
  const headOf = (run: PolicyRun, steps: readonly PathStepRef[]) =>
    run.head === 'majority' ? majorityHead(steps) : run.head;
  /** A batch of paths with the (run, member) each belongs to. */
  interface Slot {
    readonly r: number;
    readonly m: number;
    readonly steps: readonly PathStepRef[];
    readonly episode?: number;
  }
  const items = (slots: readonly Slot[], origin: 'start' | 'policy' | 'mutation'): ScoreItem[] =>
    slots.map(({ r, m, steps }) => {
      const run = runs[r]!;
      const member = run.members[m]!;
      return {
        draft: { pool: member.pool, steps, headSource: headOf(run, steps) },
        meta: { origin, preference: member.w },
      };
    });
  const rememberScored =
    (slots: readonly Slot[]) =>
    (scored: ScoredCandidate, i: number): void => {
      const { r, m, steps } = slots[i]!;
      const w = runs[r]!.members[m]!.w;
      remember(incumbents[r]![m]!, { steps, reward: ctx.reward(scored.search, w, steps.length) });
    };
  try {
    ctx.startRound(runs.reduce((n, r) => n + r.members.reduce((m, x) => m + x.pool.length, 0), 0));
    const starts: Slot[] = runs.flatMap((run, r) =>
      run.members.flatMap((member, m) =>
        member.pool.map((_, i) => ({ r, m, steps: ownPathDraft(member.pool, i).steps })),
      ),
    );
    await scoreAll(ctx, items(starts, 'start'), rememberScored(starts));
    await ctx.endRound();
    for (;;) {
      ctx.startRound(runs.reduce((n, r) => n + r.members.length * e, 0));
      const proposed = await Promise.all(
        runs.map((run) =>
          run.policy.propose(run.members.flatMap((m) => new Array<readonly number[]>(fromPolicy).fill(m.w))),
        ),
      );
      const proposals: Slot[] = proposed.flatMap((list, r) =>
        list.map((p, i) => ({ r, m: Math.floor(i / fromPolicy), steps: p.steps, episode: p.episode })),
      );
      const scored = await ctx.scoreMany(items(proposals, 'policy'));
      const episodes = runs.map(() => [] as number[]);
      const rewards = runs.map(() => [] as number[]);
      const scores = runs.map(() => [] as (readonly number[])[]);
      scored.forEach((c, i) => {
        if (!c) return;
        const { r, m, steps, episode } = proposals[i]!;
        const reward = ctx.reward(c.search, runs[r]!.members[m]!.w, steps.length);
        episodes[r]!.push(episode!);
        rewards[r]!.push(reward);
        scores[r]!.push(c.search);
        remember(incumbents[r]![m]!, { steps, reward });
      });
      const learning = runs.map((run, r) =>
        episodes[r]!.length > 0 ? run.policy.learn(episodes[r]!, rewards[r]!, scores[r]!) : Promise.resolve(),
      );
      const neighbours: Slot[] = [];
      if (scored.every((c) => c !== undefined))
        for (const [r, run] of runs.entries())
          for (const [m, member] of run.members.entries()) {
            const best = incumbents[r]![m]!;
            for (let j = 0; j < mutations && best.length > 0; j++) {
              const parent = best[Math.floor(ctx.rng() * Math.min(3, best.length))]!;
              neighbours.push({
                r,
                m,
                steps: mutatePath(parent.steps, member.pool.length, ctx.base.numLayers, ctx.rng),
              });
            }
          }
      const outcomes = await Promise.allSettled([
        ...learning,
        scoreAll(ctx, items(neighbours, 'mutation'), rememberScored(neighbours)),
      ]);
      const failed = outcomes.find((o) => o.status === 'rejected');
      if (failed) throw failed.reason;
      if (scored.some((c) => c === undefined)) ctx.checkStop();
      await ctx.endRound();
    }
  } finally {
    for (const run of runs) await run.policy.close();
  }
}

function policyPool(pool: readonly PoolEntry[]) {
  return pool.map((p) => ({
    id: p.label,
    layers: p.info.numLayers,
    hiddenSize: p.info.hiddenSize,
    ...(p.info.layerFeatures ? { layerFeatures: p.info.layerFeatures } : {}),
  }));
}

async function createPolicy(
  ctx: SearchContext,
  pool: readonly PoolEntry[],
  amortized: boolean,
  seed: number,
): Promise<PathPolicyHandle> {
  return ctx.deps.policy.create({
    pool: policyPool(pool),
    tMax: ctx.tMax,
    objectives: ctx.k,
    amortized,
    settings: ctx.spec.rl,
    ideal: ctx.ideal,
    seed,
  });
}

async function archOnly(ctx: SearchContext): Promise<void> {
  ctx.startRound(ctx.experts.length);
  await seedExperts(ctx);
  await ctx.endRound();
  const runs: PolicyRun[] = [];
  for (const [i, w] of ctx.preferences.entries()) {
    runs.push({
      policy: await createPolicy(ctx, ctx.experts, false, ctx.spec.seed + 1 + i),
      members: [{ w, pool: ctx.experts }],
      head: 'majority',
    });
  }
  await policyRounds(ctx, runs);
}

async function hierarchical(ctx: SearchContext, amortized: boolean): Promise<void> {
  const k = ctx.experts.length;
  ctx.startRound(k + ctx.preferences.length);
  await seedExperts(ctx);
  let merged: PoolEntry[];
  if (ctx.spec.upper.optimizer === 'nsga2') {
    await ctx.endRound();
    const share = Math.max(1, Math.floor(ctx.remaining * ctx.spec.upper.budgetShare));
    await paramOnly(ctx, Number.isFinite(share) ? share : 64);
    merged = await bestMergesPerPreference(ctx);
  } else {
    merged = await mapLimit(ctx.preferences, concurrency(ctx), (w) =>
      ctx.mergeEntry(ctx.recipeFor(w), `merged(${w.map((x) => x.toFixed(2)).join(',')})`),
    );
    await scoreAll(
      ctx,
      merged.map((entry, i) => ({
        draft: ownPathDraft([entry], 0),
        meta: { origin: 'merge' as const, preference: ctx.preferences[i]! },
      })),
    );
    await ctx.endRound();
  }
  const pools = merged.map((m) => [...ctx.experts, m]);
  const runs: PolicyRun[] = [];
  if (amortized) {
    runs.push({
      policy: await createPolicy(ctx, pools[0]!, true, ctx.spec.seed + 1),
      members: ctx.preferences.map((w, i) => ({ w, pool: pools[i]! })),
      head: k,
    });
  } else {
    for (const [i, w] of ctx.preferences.entries())
      runs.push({
        policy: await createPolicy(ctx, pools[i]!, false, ctx.spec.seed + 1 + i),
        members: [{ w, pool: pools[i]! }],
        head: k,
      });
  }
  await policyRounds(ctx, runs);
}

/** For each preference, the scored merge of lowest subproblem cost (NSGA-II upper level). */
async function bestMergesPerPreference(ctx: SearchContext): Promise<PoolEntry[]> {
  const merges = [...ctx.archive.values()].filter((c) => c.pure && c.pool[0]!.recipe !== undefined);
  const out: PoolEntry[] = [];
  for (const w of ctx.preferences) {
    let best = merges[0];
    for (const m of merges)
      if (ctx.subproblemCost(m.search, w) < ctx.subproblemCost(best!.search, w)) best = m;
    const source = best?.pool[0];
    out.push(await ctx.mergeEntry(source?.recipe ?? ctx.recipeFor(w), source?.label ?? 'merged'));
  }
  return out;
}

async function randomSearch(ctx: SearchContext): Promise<void> {
  ctx.startRound(ctx.experts.length);
  await seedExperts(ctx);
  await ctx.endRound();
  const box = ctx.upperBox();
  const perRound = ctx.spec.rl.episodesPerIteration * ctx.preferences.length;
  const layers = ctx.base.numLayers;
  let n = 0;
  for (;;) {
    ctx.startRound(perRound);
    // Draws first (the same sequence as one at a time), then the round's merges and evaluations at once;
    // no more merges than the budget can score.
    const draws = Array.from({ length: Math.min(perRound, ctx.remaining) }, () => {
      const x = box.lower.map((lo, j) => lo + ctx.rng() * (box.upper[j]! - lo));
      const label = `random#${n++}`;
      const steps =
        ctx.rng() < 0.5
          ? undefined
          : Array.from({ length: ctx.tMax }, () => ({
              poolIndex: Math.floor(ctx.rng() * (ctx.experts.length + 1)),
              layerIndex: Math.floor(ctx.rng() * layers),
            }));
      return { x, label, steps };
    });
    const entries = await mapLimit(draws, concurrency(ctx), (d) =>
      ctx.mergeEntry(ctx.recipeFromVector(d.x), d.label),
    );
    await scoreAll(
      ctx,
      draws.map((d, i) => {
        const entry = entries[i]!;
        const pool = [...ctx.experts, entry];
        return {
          draft: d.steps ? { pool, steps: d.steps, headSource: pool.length - 1 } : ownPathDraft([entry], 0),
          meta: { origin: 'random' as const },
        };
      }),
    );
    await ctx.endRound();
  }
}
