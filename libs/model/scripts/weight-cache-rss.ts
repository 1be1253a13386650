/**
 * Peak RSS of evaluating the four zoo models and a mixed path, with a small weight-cache budget and
 * unbounded. Each setting runs in its own child process (peak RSS is per process):
 *
 *   npx tsx libs/model/scripts/weight-cache-rss.ts [--zoo tools/fixtures/zoo] [--small-mib 2] [--rounds 3]
 *
 * Prints one JSON line per setting: budget, peak RSS (MiB), cached MiB at the end, layer loads,
 * evictions, and a checksum of every logit (equal checksums: bit-identical results).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelRuntime, ownPath, readModelConfig, sequenceLogits, type InferencePath } from '../src/index.js';

const here = fileURLToPath(import.meta.url);
const repo = path.resolve(path.dirname(here), '../../..');
const MODELS = ['base', 'expert-translate', 'expert-math', 'expert-code'] as const;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

/** Seeded prompts (a small LCG): the same token ids in every child. */
function prompts(count: number, length: number, vocab: number, seed: number): number[][] {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2 ** 31);
  return Array.from({ length: count }, () => Array.from({ length }, () => 3 + (next() % (vocab - 3))));
}

async function child(budget: number, zoo: string, rounds: number): Promise<void> {
  const runtime = new ModelRuntime({ weightCacheBytes: budget, intraOpThreads: 1 });
  const dirs = MODELS.map((m) => path.join(zoo, m));
  const archs = await Promise.all(dirs.map((d) => readModelConfig(d)));
  const paths: InferencePath[] = dirs.map((d, i) => ownPath(d, archs[i]!.numLayers));
  const layers = archs[0]!.numLayers;
  paths.push({
    pool: dirs,
    // layers from all four models, in order, the last expert's head
    steps: Array.from({ length: layers }, (_, l) => ({ poolIndex: l % dirs.length, layerIndex: l })),
    headSource: dirs.length - 1,
  });
  const hash = createHash('sha256');
  const input = prompts(32, 48, archs[0]!.vocabSize, 7);
  for (let r = 0; r < rounds; r++) {
    for (const p of paths) {
      for (const logits of await sequenceLogits(await runtime.path(p), input, 16)) {
        if (r === 0) hash.update(new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
      }
    }
  }
  const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;
  console.log(
    JSON.stringify({
      budgetMiB: Number.isFinite(budget) ? mib(budget) : 'unbounded',
      peakRssMiB: mib(process.resourceUsage().maxRSS * 1024),
      cachedMiB: mib(runtime.weights.cachedBytes),
      layerLoads: runtime.weights.loads.layers,
      evictions: runtime.weights.evictions,
      logitsSha256: hash.digest('hex').slice(0, 16),
    }),
  );
  await runtime.close();
}

async function main(): Promise<void> {
  const zoo = path.resolve(arg('zoo', path.join(repo, 'tools/fixtures/zoo')));
  const rounds = Number(arg('rounds', '3'));
  if (process.argv.includes('--child')) {
    await child(Number(arg('child', 'Infinity')), zoo, rounds);
    return;
  }
  const small = Number(arg('small-mib', '2')) * 2 ** 20;
  for (const budget of [Infinity, small]) {
    const out = execFileSync(
      process.execPath,
      [...process.execArgv, here, '--child', String(budget), '--zoo', zoo, '--rounds', String(rounds)],
      { encoding: 'utf8' },
    );
    process.stdout.write(out);
  }
}

await main();
