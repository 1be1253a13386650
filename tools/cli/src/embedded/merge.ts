/**
 * The merge port of the embedded search: a search recipe becomes a mergekit-style recipe for
 * @hm3/merge, executed into the local artifact store under its content id (an existing id is a
 * finished merge: nothing is redone).
 */
import { copyFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { runMerge, validateRecipeDocument } from '@hm3/merge';
import type { MergePort, ModelRef, SearchRecipe } from '@hm3/search';
import type { ArtifactStore } from '@hm3/store';
import { ARTIFACT_MODEL_FOLDER, resolveModelUri, type Locations } from './locations.js';

/** The mergekit document of a search recipe (model folders resolved). */
export function recipeDocument(
  recipe: SearchRecipe,
  base: string,
  experts: readonly string[],
): Record<string, unknown> {
  const usesDensity = recipe.method !== 'task_arithmetic' && recipe.method !== 'linear';
  return {
    merge_method: recipe.method,
    base_model: base,
    models: recipe.terms
      .filter((t) => t.weight !== 0)
      .map((t) => ({
        model: experts[t.expert],
        parameters: { weight: t.weight, ...(usesDensity ? { density: t.density } : {}) },
      })),
    parameters: { lambda: recipe.lambda },
    dtype: recipe.dtype,
    ...(recipe.outDtype ? { out_dtype: recipe.outDtype } : {}),
    seed: recipe.seed,
  };
}

/** The base's tokenizer files, so a merged folder is a complete Hugging Face model on its own. */
async function copyTokenizer(from: string, to: string): Promise<void> {
  const have = new Set(await readdir(to));
  for (const name of await readdir(from)) {
    if (
      /^(tokenizer.*|special_tokens_map\.json|vocab\.json|merges\.txt|.*\.model)$/.test(name) &&
      !have.has(name)
    )
      await copyFile(path.join(from, name), path.join(to, name));
  }
}

export class LocalMerge implements MergePort {
  /** Merges that ran (not reused). */
  merged = 0;

  constructor(
    private readonly artifacts: ArtifactStore & { readonly root: string },
    private readonly where: Locations,
    private readonly base: ModelRef,
    private readonly experts: readonly ModelRef[],
  ) {}

  async merge(recipe: SearchRecipe, recipeId: string, signal?: AbortSignal): Promise<{ uri: string }> {
    const base = resolveModelUri(this.base.uri, this.where, 'base');
    const experts = this.experts.map((e, i) => resolveModelUri(e.uri, this.where, `experts[${i}]`));
    // A recipe whose weights are all zero is the base itself.
    if (recipe.terms.every((t) => t.weight === 0)) return { uri: base };
    const parsed = validateRecipeDocument(recipeDocument(recipe, base, experts), {
      source: `recipe ${recipeId}`,
    });
    const result = await this.artifacts.write(recipeId, async (temp) => {
      const out = path.join(temp, ARTIFACT_MODEL_FOLDER);
      await runMerge(parsed, out, { ...(signal ? { signal } : {}) });
      await copyTokenizer(base, out);
      this.merged++;
    });
    return { uri: path.join(result.path, ARTIFACT_MODEL_FOLDER) };
  }
}
