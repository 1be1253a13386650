/**
 * Candidates are content-addressed: the id hashes what the candidate computes, not where its files
 * are. A pool model is named by content (a source model by its weights' sha256, a merged model by its
 * recipe id, which hashes the recipe with the sources' sha256); a candidate by its head model and its
 * steps over those names. So the same path reached from two pools, or a merged model's own path
 * proposed by a policy, is the same candidate and is never scored twice.
 */
import { createHash } from 'node:crypto';
import type { ModelInfo, PathStepRef, ResolvedPath, SearchRecipe } from './ports.js';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** JSON with sorted keys: one text per value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The recipe's content id: its fields with the base's and experts' sha256 in place of their locations. */
export function recipeId(recipe: SearchRecipe, base: ModelInfo, experts: readonly ModelInfo[]): string {
  const body = {
    method: recipe.method,
    base: base.sha256,
    terms: recipe.terms
      .filter((t) => t.weight !== 0)
      .map((t) => ({ model: experts[t.expert]!.sha256, weight: t.weight, density: t.density })),
    lambda: recipe.lambda,
    seed: recipe.seed,
    dtype: recipe.dtype,
    outDtype: recipe.outDtype,
  };
  return `m-${sha256Hex(canonicalJson(body)).slice(0, 40)}`;
}

/** A model of a layer pool: a source model (an expert) or a merged one. */
export interface PoolEntry {
  /** Content name: `src:<sha256>` or `merge:<recipe id>`. */
  readonly key: string;
  /** Short display name (`expert-math`, `merged(w=0.33,0.33,0.33)`). */
  readonly label: string;
  readonly info: ModelInfo;
  /** The recipe of a merged model. */
  readonly recipe?: SearchRecipe;
  readonly recipeId?: string;
}

/** A candidate before it is scored: a path over a pool, with a head source. */
export interface CandidateDraft {
  readonly pool: readonly PoolEntry[];
  readonly steps: readonly PathStepRef[];
  readonly headSource: number;
}

/** The canonical form of a draft: only the pool models it uses, in order of first use (head first). */
export interface CanonicalCandidate {
  readonly id: string;
  readonly pool: readonly PoolEntry[];
  readonly steps: readonly PathStepRef[];
  readonly headSource: 0;
  /** True when the candidate is one model as is (its own layers in order, its own head). */
  readonly pure: boolean;
}

export function canonicalise(draft: CandidateDraft): CanonicalCandidate {
  const order: number[] = [draft.headSource];
  for (const s of draft.steps) if (!order.includes(s.poolIndex)) order.push(s.poolIndex);
  const pool = order.map((i) => draft.pool[i]!);
  const steps = draft.steps.map((s) => ({ poolIndex: order.indexOf(s.poolIndex), layerIndex: s.layerIndex }));
  const head = pool[0]!;
  const pure =
    pool.length === 1 && steps.length === head.info.numLayers && steps.every((s, t) => s.layerIndex === t);
  const body = { head: head.key, steps: steps.map((s) => [pool[s.poolIndex]!.key, s.layerIndex]) };
  const id = `c-${sha256Hex(canonicalJson(body)).slice(0, 40)}`;
  return { id, pool, steps, headSource: 0, pure };
}

/** The path a candidate runs, over model locations. */
export function resolvePath(candidate: CanonicalCandidate): ResolvedPath {
  return {
    pool: candidate.pool.map((p) => p.info.uri),
    steps: candidate.steps,
    headSource: candidate.headSource,
  };
}

/** A model's own path: its layers in order, its own head. */
export function ownPathDraft(pool: readonly PoolEntry[], index: number): CandidateDraft {
  const layers = pool[index]!.info.numLayers;
  return {
    pool,
    steps: Array.from({ length: layers }, (_, layerIndex) => ({ poolIndex: index, layerIndex })),
    headSource: index,
  };
}

/** One line describing a path: `expert-math[0-3] merged[4-7]`, runs of consecutive layers merged. */
export function describePath(candidate: {
  pool: readonly { label: string }[];
  steps: readonly PathStepRef[];
  pure: boolean;
}): string {
  if (candidate.pure) return candidate.pool[0]!.label;
  const parts: string[] = [];
  let i = 0;
  while (i < candidate.steps.length) {
    const s = candidate.steps[i]!;
    let j = i;
    while (
      j + 1 < candidate.steps.length &&
      candidate.steps[j + 1]!.poolIndex === s.poolIndex &&
      candidate.steps[j + 1]!.layerIndex === candidate.steps[j]!.layerIndex + 1
    )
      j++;
    const last = candidate.steps[j]!.layerIndex;
    parts.push(
      `${candidate.pool[s.poolIndex]!.label}[${s.layerIndex}${last === s.layerIndex ? '' : `-${last}`}]`,
    );
    i = j + 1;
  }
  return `${parts.join(' ')} (head ${candidate.pool[0]!.label})`;
}
