/**
 * The model card (README.md) of a merged checkpoint, as Hugging Face reads it: YAML front matter with
 * `base_model` and `tags: [merge, hm3]`, then the recipe that made it.
 */
import { stringify } from 'yaml';
import type { MergePlan } from './plan.js';
import { recipeToDocument } from './recipe.js';

/** The README.md of the merged model of `plan`. */
export function modelCard(plan: MergePlan, toolVersion: string): string {
  const recipe = plan.recipe;
  const baseModels =
    recipe.base !== null ? [recipe.base.uri] : [...new Set(recipe.models.map((m) => m.ref.uri))];
  const front = stringify(
    {
      base_model: baseModels.length === 1 ? baseModels[0] : baseModels,
      library_name: 'transformers',
      tags: ['merge', 'hm3'],
    },
    { lineWidth: 0 },
  );
  const recipeYaml = stringify(recipeToDocument(recipe), { lineWidth: 0 });
  const models = recipe.models
    .filter((m) => !(m.isBase && plan.method.base !== 'none'))
    .map((m) => `- ${m.ref.uri}`)
    .join('\n');
  return [
    '---',
    front.trimEnd(),
    '---',
    '',
    '# Merged model',
    '',
    `This model was merged with HM3 ${toolVersion} using the **${plan.method.name}** method` +
      (recipe.base === null ? '.' : `, with ${recipe.base.uri} as the base.`),
    '',
    '## Models merged',
    '',
    models,
    '',
    '## Recipe',
    '',
    'The mergekit-compatible recipe (`hm3 merge` and `mergekit-yaml` both accept it):',
    '',
    '```yaml',
    recipeYaml.trimEnd(),
    '```',
    '',
    `Recipe sha256: \`${plan.recipeSha256}\` (also in the safetensors metadata as \`hm3_recipe_sha256\`).`,
    '',
  ].join('\n');
}
