/**
 * The embedded search: the cores in one process (merge executor, model runtime + evaluator, path
 * policy, the search loop) over the in-memory store and a local artifact folder, no server. Bad input
 * (the spec, a missing model, a dataset, experts of another architecture) is refused before anything
 * is written. Outputs, in the search folder: search.json (everything: spec, rounds, every scored
 * candidate), front.json (the final front), artifacts/<recipe id>/model (merged checkpoints).
 */
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FailedPreconditionError, NotFoundError } from '@hm3/errors';
import { exportPathCheckpoint, loadTokenizer } from '@hm3/model';
import {
  frontMembers,
  recommend,
  resolveModels,
  runSearch,
  type ScoredCandidate,
  type SearchEvent,
  type SearchResult,
  type SearchSpec,
} from '@hm3/search';
import { createInMemoryStore, LocalArtifactStore } from '@hm3/store';
import { renderFrontPlot } from '../plot/front-plot.js';
import { LocalModelCatalog } from './catalog.js';
import { checkObjectives, LocalEvaluator } from './evaluate.js';
import { resolveModelUri, type Locations } from './locations.js';
import { LocalMerge } from './merge.js';
import { LocalPolicies } from './policy.js';

export const SEARCH_FILE = 'search.json';
export const FRONT_FILE = 'front.json';

export interface EmbeddedSearchOptions {
  /** Folder relative paths of the spec resolve against. */
  readonly specDir: string;
  /** The search folder (created after validation). */
  readonly outDir: string;
  readonly onEvent?: (event: SearchEvent) => void;
  readonly signal?: AbortSignal;
  /** onnxruntime threads per operator (default 1). */
  readonly threads?: number;
}

/** Everything checked before the search writes anything: models (and their architectures), datasets. */
export async function validateEmbedded(spec: SearchSpec, where: Locations): Promise<void> {
  await resolveModels(spec, new LocalModelCatalog(where));
  await checkObjectives(spec.objectives, where.specDir);
}

export async function runEmbeddedSearch(
  spec: SearchSpec,
  options: EmbeddedSearchOptions,
): Promise<SearchResult> {
  const outDir = path.resolve(options.outDir);
  const where: Locations = {
    specDir: path.resolve(options.specDir),
    artifactsRoot: path.join(outDir, 'artifacts'),
  };
  await validateEmbedded(spec, where);
  await mkdir(outDir, { recursive: true });
  const baseDir = resolveModelUri(spec.base.uri, where, 'base');
  const evaluator = new LocalEvaluator({
    specDir: where.specDir,
    tokenizer: await loadTokenizer(baseDir),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
  });
  const store = createInMemoryStore();
  await store.start();
  const artifacts = new LocalArtifactStore(where.artifactsRoot);
  try {
    const result = await runSearch(spec, {
      catalog: new LocalModelCatalog(where, () => evaluator.runtime),
      merge: new LocalMerge(artifacts, where, spec.base, spec.experts),
      evaluate: evaluator,
      policy: new LocalPolicies(),
      store,
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    await writeSearch(outDir, result);
    return result;
  } finally {
    await evaluator.close();
    await store.close();
  }
}

/** The front members in front.json's form: scores by objective name, on both splits. */
export function frontDocument(result: SearchResult): Record<string, unknown> {
  const byName = (values: readonly number[] | undefined) =>
    values === undefined ? undefined : Object.fromEntries(result.objectives.map((o, k) => [o, values[k]]));
  return {
    searchId: result.searchId,
    strategy: result.strategy,
    objectives: result.objectives,
    hypervolume: result.hypervolume,
    evaluations: result.evaluations,
    members: frontMembers(result).map((c) => ({
      id: c.id,
      label: c.label,
      kind: c.pure ? (c.pool[0]!.recipe ? 'merged model' : 'source model') : 'inference path',
      search: byName(c.search),
      heldout: byName(c.heldout),
      ...(c.preference ? { preference: c.preference } : {}),
      recipe: c.pool.find((p) => p.recipe)?.recipe,
      ...(c.pure
        ? {}
        : {
            path: {
              pool: c.pool.map((p) => p.label),
              steps: c.steps.map((s) => [s.poolIndex, s.layerIndex]),
              headSource: c.headSource,
            },
          }),
    })),
  };
}

export async function writeSearch(outDir: string, result: SearchResult): Promise<void> {
  await writeFile(path.join(outDir, SEARCH_FILE), `${JSON.stringify(result)}\n`);
  await writeFile(path.join(outDir, FRONT_FILE), `${JSON.stringify(frontDocument(result), null, 2)}\n`);
}

/** Reads a search folder (or its search.json). */
export async function readSearch(location: string): Promise<{ result: SearchResult; dir: string }> {
  const file = location.endsWith('.json') ? path.resolve(location) : path.resolve(location, SEARCH_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new NotFoundError(
      `no search at ${location} (${file} is not readable); run \`hm3 search\` first`,
      { file },
      cause,
    );
  }
  try {
    return { result: JSON.parse(text) as SearchResult, dir: path.dirname(file) };
  } catch (cause) {
    throw new FailedPreconditionError(`${file} is not JSON`, { file }, cause);
  }
}

export interface PlotFiles {
  readonly svg: string;
  readonly png: string;
}

/** Writes the front plot (every candidate, the front, the recommended point marked) as `<base>.svg` and `<base>.png`. */
export async function writeFrontPlot(
  result: SearchResult,
  base: string,
  recommended?: ScoredCandidate,
): Promise<PlotFiles> {
  const points = result.candidates.map((c) => [...c.search]);
  const ids = result.candidates.map((c) => c.id);
  const plot = await renderFrontPlot({
    objectives: [...result.objectives],
    points,
    frontIndices: result.front.map((id) => ids.indexOf(id)),
    ...(recommended ? { recommendedIndex: ids.indexOf(recommended.id) } : {}),
    title: `${result.strategy}: ${result.candidates.length} candidates, front of ${result.front.length} (search split)`,
    labels: result.candidates.map((c) => c.label),
  });
  const files = { svg: `${base}.svg`, png: `${base}.png` };
  await writeFile(files.svg, plot.svg);
  await writeFile(files.png, plot.png);
  return files;
}

export interface ExportedMember {
  readonly outDir: string;
  /** 'copy': a model as is (merged or source); 'path': an exported inference path. */
  readonly how: 'copy' | 'path';
  readonly standalone: boolean;
}

/** Writes a front member as a standalone Hugging Face folder. */
export async function exportMember(candidate: ScoredCandidate, outDir: string): Promise<ExportedMember> {
  const out = path.resolve(outDir);
  if (candidate.pure) {
    await mkdir(path.dirname(out), { recursive: true });
    await rm(out, { recursive: true, force: true });
    await cp(candidate.pool[0]!.uri, out, { recursive: true });
    return { outDir: out, how: 'copy', standalone: true };
  }
  const report = await exportPathCheckpoint(
    { pool: candidate.pool.map((p) => p.uri), steps: candidate.steps, headSource: candidate.headSource },
    out,
  );
  return { outDir: out, how: 'path', standalone: report.standalone };
}

export { frontMembers, recommend };
