/**
 * The content id of a merge: sha256 over the canonical recipe in which every model reference is
 * replaced by its content digest (the manifest digest of a registered folder, the id of an artifact),
 * so the same recipe over the same bytes gets the same id wherever the files live.
 * (Reusable by the optimizer, which predicts the id of a merge it requests: a candidate for libs/merge.)
 */
import { recipeSha256, type ModelRef, type Recipe, type RecipeModel, type TokenizerSource } from '@hm3/merge';

/** The content of a model reference for hashing: `sha256:<digest>`. */
export type DigestOf = (ref: ModelRef) => string;

export function mergeContentId(recipe: Recipe, digestOf: DigestOf): string {
  const swap = (ref: ModelRef): ModelRef => ({ uri: `sha256:${digestOf(ref)}`, modelId: '' });
  const models: RecipeModel[] = recipe.models.map((m) => ({ ...m, ref: swap(m.ref) }));
  let tokenizerSource: TokenizerSource | null = recipe.tokenizerSource;
  if (tokenizerSource?.kind === 'model')
    tokenizerSource = { kind: 'model', model: swap(tokenizerSource.model) };
  return recipeSha256({
    ...recipe,
    base: recipe.base === null ? null : swap(recipe.base),
    models,
    tokenizerSource,
  });
}
