// Runs HM3 merges for the conformance check: `tsx run-hm3.ts jobs.json`, jobs = [{recipe, out}]:
// each recipe (a YAML file) is merged into `out` with models resolved against the recipe's folder.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseRecipeYaml, runMerge } from '@hm3/merge';

const jobsFile = process.argv[2];
if (jobsFile === undefined) throw new Error('usage: run-hm3.ts jobs.json');
const jobs = JSON.parse(await readFile(jobsFile, 'utf8')) as { recipe: string; out: string }[];
for (const job of jobs) {
  const text = await readFile(job.recipe, 'utf8');
  const recipe = parseRecipeYaml(text, job.recipe);
  await runMerge(recipe, job.out, { modelRoot: path.dirname(job.recipe), source: job.recipe, threads: 1 });
  process.stdout.write(`hm3 merged ${job.recipe} -> ${job.out}\n`);
}
