/**
 * `npm run bench -- merge`: the streaming merge engine (@hm3/merge) against mergekit (CPU, default
 * options) on the same files, in the same run. Generates (not committed; cached under --work) four
 * Llama-shaped bf16 checkpoints of about --size-gb each (a base and three experts, two shards each)
 * and merges them with task_arithmetic, ties (density 0.5) and dare_ties (density 0.5), f32
 * arithmetic, bf16 output. Per method: wall time (median of --repeats with the inputs in the page
 * cache, plus one cold run after evicting them), GB/s over bytes read + written, peak RSS, and the
 * floor measured in the same run: reading the same input files plus writing and fsyncing an output of
 * the same size. Each merge runs in a child process (plain Node on the built @hm3/merge, as a user's
 * merge runs; mergekit in its own Python) so its peak RSS is its own.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseByteSize } from '@hm3/merge';
import { CheckpointWriter, tiesBandedBackend } from '@hm3/tensor';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.join(here, '../../..');
const METHODS = ['task_arithmetic', 'ties', 'dare_ties'] as const;
const EXPERTS = ['expert1', 'expert2', 'expert3'] as const;

interface MergeBenchConfig {
  work: string;
  sizeGb: number;
  methods: string[];
  repeats: number;
  threads: number;
  /**
   * Bound on hm3's tensor buffers (the executor's --max-memory), bytes; null: unbounded; 'auto':
   * 512 MB for the element-wise task_arithmetic, unbounded for ties / dare_ties (they merge each
   * tensor whole, which the planner refuses under a bound smaller than the largest tensor's need).
   */
  maxMemory: number | null | 'auto';
  mergekit: boolean;
  mergekitRepeats: number;
  cold: boolean;
  json: string | null;
}

interface RunStats {
  /** Wall time of the whole process (start-up, imports, merge, exit). */
  wallS: number;
  /** The merge call alone (runMerge / mergekit's run_merge), without process start-up and imports. */
  mergeOnlyS: number;
  peakRssBytes: number;
  /** CPU seconds (user + system, all threads) of the whole process: less sensitive to the machine's load than wall time. */
  cpuS: number;
}

interface MethodResult {
  method: string;
  maxMemoryBytes: number | null;
  inputBytes: number;
  outputBytes: number;
  ours: {
    warmMedianS: number;
    warmRunsS: number[];
    mergeOnlyS: number;
    coldS: number | null;
    gbPerS: number;
    peakRssBytes: number;
    /** Median CPU seconds of the warm runs. */
    cpuS: number;
  };
  floorS: number;
  wallOverFloor: number;
  mergekit: {
    wallMedianS: number;
    runsS: number[];
    mergeOnlyS: number;
    gbPerS: number;
    peakRssBytes: number;
    cpuS: number;
  } | null;
  /** The 1-minute load average when the method's runs started and ended. */
  loadavg1: [number, number];
  /** mergekit's process wall / hm3's process wall. */
  speedupVsMergekit: number | null;
  /** mergekit's run_merge time / hm3's runMerge time (start-up and imports excluded on both sides). */
  mergeOnlySpeedupVsMergekit: number | null;
}

function parseMergeArgs(args: readonly string[]): MergeBenchConfig {
  const { values } = parseArgs({
    args: [...args],
    options: {
      work: { type: 'string', default: path.join(os.tmpdir(), 'hm3-merge-bench') },
      'size-gb': { type: 'string', default: '1' },
      methods: { type: 'string', default: METHODS.join(',') },
      repeats: { type: 'string', default: '3' },
      threads: { type: 'string', default: String(Math.min(8, os.availableParallelism())) },
      'max-memory': { type: 'string', default: 'auto' },
      'no-mergekit': { type: 'boolean', default: false },
      'mergekit-repeats': { type: 'string', default: '1' },
      'no-cold': { type: 'boolean', default: false },
      json: { type: 'string' },
    },
    strict: true,
  });
  const positive = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
    return n;
  };
  const sizeGb = Number(values['size-gb']);
  if (!(sizeGb > 0 && sizeGb <= 64))
    throw new Error(`--size-gb must be in (0, 64], got ${values['size-gb']}`);
  const methods = values.methods.split(',').map((m) => m.trim());
  for (const m of methods)
    if (!(METHODS as readonly string[]).includes(m)) throw new Error(`--methods: unknown ${m}`);
  return {
    work: path.resolve(values.work),
    sizeGb,
    methods,
    repeats: positive('repeats', values.repeats),
    threads: positive('threads', values.threads),
    maxMemory:
      values['max-memory'] === 'none'
        ? null
        : values['max-memory'] === 'auto'
          ? 'auto'
          : parseByteSize(values['max-memory'], '--max-memory'),
    mergekit: !values['no-mergekit'],
    mergekitRepeats: positive('mergekit-repeats', values['mergekit-repeats']),
    cold: !values['no-cold'],
    json: values.json ?? null,
  };
}

// ---- the checkpoints

/** A Llama-shaped config whose bf16 weights take about `sizeGb` GB (hidden 1024, GQA 16/8 heads, vocab 32000). */
export function benchConfig(sizeGb: number): Record<string, unknown> {
  const hidden = 1024;
  const intermediate = 2816;
  const heads = 16;
  const kvHeads = 8;
  const vocab = 32000;
  const headDim = hidden / heads;
  const perLayer =
    2 * hidden * hidden + 2 * hidden * kvHeads * headDim + 3 * hidden * intermediate + 2 * hidden;
  const fixed = 2 * vocab * hidden + hidden;
  const layers = Math.max(1, Math.round((sizeGb * 1e9) / 2 / perLayer - fixed / perLayer));
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: hidden,
    intermediate_size: intermediate,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    num_hidden_layers: layers,
    vocab_size: vocab,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
  };
}

function tensorSpecs(config: Record<string, unknown>): { name: string; shape: number[] }[] {
  const h = config['hidden_size'] as number;
  const i = config['intermediate_size'] as number;
  const kv = ((config['num_key_value_heads'] as number) * h) / (config['num_attention_heads'] as number);
  const v = config['vocab_size'] as number;
  const specs = [{ name: 'model.embed_tokens.weight', shape: [v, h] }];
  for (let l = 0; l < (config['num_hidden_layers'] as number); l++) {
    const p = `model.layers.${l}`;
    specs.push(
      { name: `${p}.input_layernorm.weight`, shape: [h] },
      { name: `${p}.self_attn.q_proj.weight`, shape: [h, h] },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv, h] },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv, h] },
      { name: `${p}.self_attn.o_proj.weight`, shape: [h, h] },
      { name: `${p}.post_attention_layernorm.weight`, shape: [h] },
      { name: `${p}.mlp.gate_proj.weight`, shape: [i, h] },
      { name: `${p}.mlp.up_proj.weight`, shape: [i, h] },
      { name: `${p}.mlp.down_proj.weight`, shape: [h, i] },
    );
  }
  specs.push({ name: 'model.norm.weight', shape: [h] }, { name: 'lm_head.weight', shape: [v, h] });
  return specs;
}

/** Random bf16 bits of magnitude ~2^-8..2^-4 with random signs (xorshift32; seeded). */
function fillRandomBf16(out: Uint16Array, state: { s: number }): void {
  let s = state.s;
  for (let k = 0; k < out.length; k++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const r = s >>> 0;
    // sign (1 bit) | exponent 0x77..0x7a | 7 mantissa bits
    out[k] = ((r >>> 31) << 15) | ((0x77 + ((r >>> 7) & 3)) << 7) | (r & 0x7f);
  }
  state.s = s;
}

async function writeModel(dir: string, config: Record<string, unknown>, seed: number): Promise<void> {
  const specs = tensorSpecs(config).map((s) => ({ ...s, dtype: 'BF16' as const }));
  const total = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) * 2, 0);
  // two shards: the first fills to half the model plus its largest tensor, the rest fits the second
  const largest = Math.max(...specs.map((s) => s.shape.reduce((x, y) => x * y, 1) * 2));
  const writer = await CheckpointWriter.create(dir, specs, {
    shardBytes: Math.min(total - 1, Math.ceil(total / 2) + largest),
  });
  const state = { s: (seed * 2654435761) >>> 0 || 1 };
  for (const s of specs) {
    const n = s.shape.reduce((x, y) => x * y, 1);
    const bits = new Uint16Array(n);
    if (s.shape.length === 1)
      bits.fill(0x3f80); // norms: 1.0
    else fillRandomBf16(bits, state);
    await writer.write(s.name, new Uint8Array(bits.buffer));
  }
  await writer.writeFile('config.json', JSON.stringify(config, null, 2));
  await writer.commit();
}

/** The four models under work/models, generated once per size (a marker records the config). */
async function ensureModels(
  work: string,
  config: Record<string, unknown>,
  log: (s: string) => void,
): Promise<string> {
  const root = path.join(work, 'models');
  const marker = path.join(root, 'bench-config.json');
  const want = JSON.stringify({ ...config, bench_shards: 2 });
  if (existsSync(marker) && readFileSync(marker, 'utf8') === want) return root;
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const names = ['base', ...EXPERTS];
  for (const [k, name] of names.entries()) {
    const t = performance.now();
    await writeModel(path.join(root, name), config, 101 + k);
    log(`generated ${name} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  writeFileSync(marker, want);
  return root;
}

async function safetensorsFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.safetensors')).map((f) => path.join(dir, f));
}

async function filesBytes(files: readonly string[]): Promise<number> {
  let n = 0;
  for (const f of files) n += (await stat(f)).size;
  return n;
}

// ---- recipes

function recipeYaml(method: string, root: string): string {
  const params =
    method === 'task_arithmetic'
      ? (i: number) => `{weight: ${[0.3, 0.4, 0.3][i]}}`
      : (i: number) => `{weight: ${[0.5, 0.3, 0.2][i]}, density: 0.5}`;
  return [
    `merge_method: ${method}`,
    `base_model: ${path.join(root, 'base')}`,
    'models:',
    ...EXPERTS.flatMap((e, i) => [`  - model: ${path.join(root, e)}`, `    parameters: ${params(i)}`]),
    'dtype: float32',
    'out_dtype: bfloat16',
    '',
  ].join('\n');
}

// ---- page cache

/** Reads every file with 16 MiB positioned reads; returns the bytes read. */
async function readAll(files: readonly string[]): Promise<number> {
  const buf = Buffer.allocUnsafe(16 * 1024 * 1024);
  let total = 0;
  for (const f of files) {
    const fh = await open(f, 'r');
    try {
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        total += bytesRead;
      }
    } finally {
      await fh.close();
    }
  }
  return total;
}

/** Drops the files from the page cache (GNU dd's nocache: posix_fadvise DONTNEED); false when it cannot. */
function evict(files: readonly string[]): boolean {
  try {
    for (const f of files) execFileSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
    return true;
  } catch {
    return false;
  }
}

// ---- the floor

/** Reading the inputs, then writing and fsyncing `outputBytes` to a new file. */
async function floorOnce(inputs: readonly string[], outputBytes: number, scratch: string): Promise<number> {
  const t = performance.now();
  await readAll(inputs);
  const fh = await open(scratch, 'w');
  try {
    const chunk = Buffer.alloc(16 * 1024 * 1024, 0x3c);
    for (let done = 0; done < outputBytes;) {
      const n = Math.min(chunk.length, outputBytes - done);
      await fh.write(chunk, 0, n, done);
      done += n;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  const s = (performance.now() - t) / 1000;
  await rm(scratch, { force: true });
  return s;
}

// ---- runs in child processes

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function spawnTimed(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd?: string,
): Promise<{ wallS: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(cmd, [...args], { env, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallS = (performance.now() - t) / 1000;
      if (code === 0) resolve({ wallS, stdout });
      else
        reject(
          new Error(
            `${path.basename(cmd)} ${args.slice(0, 3).join(' ')} failed (${code}): ${stderr.slice(-2000)}`,
          ),
        );
    });
  });
}

/**
 * The hm3 side's child process, plain Node on the built @hm3/merge (no TypeScript loader, as a user's
 * `hm3 merge` runs): argv recipe, out, threads, max memory ('none': unbounded).
 */
const HM3_RUNNER = `
const t0 = performance.now();
const { readFileSync } = await import('node:fs');
const { parseRecipeYaml, runMerge } = await import('@hm3/merge');
const [recipeFile, out, threads, maxMemory] = process.argv.slice(1);
const recipe = parseRecipeYaml(readFileSync(recipeFile, 'utf8'), recipeFile);
const t1 = performance.now();
await runMerge(recipe, out, { threads: Number(threads), ...(maxMemory === 'none' ? {} : { maxMemory: Number(maxMemory) }) });
const t2 = performance.now();
const ru = process.resourceUsage();
console.log(JSON.stringify({ importS: (t1 - t0) / 1000, mergeS: (t2 - t1) / 1000, maxRssKb: ru.maxRSS, cpuS: (ru.userCPUTime + ru.systemCPUTime) / 1e6 }));
`;

/** One merge by @hm3/merge in a child process: wall time of the process and its peak RSS. */
async function oursOnce(
  recipeFile: string,
  out: string,
  threads: number,
  maxMemory: number | null,
): Promise<RunStats> {
  await rm(out, { recursive: true, force: true });
  const { wallS, stdout } = await spawnTimed(
    process.execPath,
    ['--input-type=module', '-e', HM3_RUNNER, recipeFile, out, String(threads), String(maxMemory ?? 'none')],
    process.env,
    path.join(here, '..'), // resolves @hm3/merge from the bench package
  );
  const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    mergeS: number;
    maxRssKb: number;
    cpuS: number;
  };
  await rm(out, { recursive: true, force: true });
  return { wallS, mergeOnlyS: report.mergeS, peakRssBytes: report.maxRssKb * 1024, cpuS: report.cpuS };
}

const MERGEKIT_RUNNER = `
import json, resource, sys, time
t0 = time.perf_counter()
import yaml
from mergekit.config import MergeConfiguration
from mergekit.merge import MergeOptions, run_merge
with open(sys.argv[1]) as f:
    config = MergeConfiguration.model_validate(yaml.safe_load(f))
t1 = time.perf_counter()
run_merge(config, sys.argv[2], options=MergeOptions())
t2 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"import_s": t1 - t0, "merge_s": t2 - t1, "max_rss_kb": ru.ru_maxrss, "cpu_s": ru.ru_utime + ru.ru_stime}))
`;

function mergekitRuntime(): { python: string; pythonPath: string } {
  const script = path.join(repo, 'tools/conformance/mergekit/ensure-mergekit.sh');
  const [python, pythonPath] = execFileSync('bash', [script], { encoding: 'utf8' }).trim().split(' ');
  if (!python || !pythonPath) throw new Error(`${script} printed no python`);
  return { python, pythonPath };
}

async function mergekitOnce(
  rt: { python: string; pythonPath: string },
  recipeFile: string,
  out: string,
  threads: number,
): Promise<RunStats> {
  await rm(out, { recursive: true, force: true });
  const env = { ...process.env, PYTHONPATH: rt.pythonPath, OMP_NUM_THREADS: String(threads) };
  const { wallS, stdout } = await spawnTimed(rt.python, ['-c', MERGEKIT_RUNNER, recipeFile, out], env);
  const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    merge_s: number;
    max_rss_kb: number;
    cpu_s: number;
  };
  await rm(out, { recursive: true, force: true });
  return { wallS, mergeOnlyS: report.merge_s, peakRssBytes: report.max_rss_kb * 1024, cpuS: report.cpu_s };
}

// ---- the command

const gb = (bytes: number) => bytes / 1e9;
const fmt = (x: number, d = 2) => x.toFixed(d);

export async function runMergeBench(
  config: MergeBenchConfig,
  log: (s: string) => void = console.log,
): Promise<MethodResult[]> {
  mkdirSync(config.work, { recursive: true });
  const modelConfig = benchConfig(config.sizeGb);
  // the merges run this build's kernels: say when the WebAssembly ones did not load (3-4x slower)
  const backend = tiesBandedBackend();
  log(
    `merge bench: 4 Llama-shaped bf16 checkpoints of ~${config.sizeGb} GB (${modelConfig['num_hidden_layers']} layers, hidden 1024, vocab 32000, 2 shards each) in ${config.work}; ` +
      `threads ${config.threads}; hm3 max memory ${config.maxMemory === null ? 'unbounded' : config.maxMemory === 'auto' ? 'auto' : `${(config.maxMemory / 1e6).toFixed(0)} MB`}; load ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(
          ' ',
        )}; ${os.availableParallelism()} cpus; kernels ${backend.kind === 'wasm' ? 'WebAssembly SIMD' : `JS (the WebAssembly module did not load: ${backend.reason})`}`,
  );
  const root = await ensureModels(config.work, modelConfig, log);
  const inputs: string[] = [];
  for (const name of ['base', ...EXPERTS]) inputs.push(...(await safetensorsFiles(path.join(root, name))));
  const inputBytes = await filesBytes(inputs);
  const outputBytes = await filesBytes(await safetensorsFiles(path.join(root, 'base')));
  const rt = config.mergekit ? mergekitRuntime() : null;
  const results: MethodResult[] = [];

  for (const method of config.methods) {
    const recipeFile = path.join(config.work, `${method}.yaml`);
    writeFileSync(recipeFile, recipeYaml(method, root));
    const out = path.join(config.work, `out-${method}`);
    const bound =
      config.maxMemory === 'auto' ? (method === 'task_arithmetic' ? 512_000_000 : null) : config.maxMemory;

    const loadStart = os.loadavg()[0]!;
    let coldS: number | null = null;
    if (config.cold && evict(inputs)) coldS = (await oursOnce(recipeFile, out, config.threads, bound)).wallS;
    await readAll(inputs); // into the page cache
    const floors: number[] = [];
    const warm: RunStats[] = [];
    for (let r = 0; r < config.repeats; r++) {
      floors.push(await floorOnce(inputs, outputBytes, path.join(config.work, 'floor.bin')));
      warm.push(await oursOnce(recipeFile, out, config.threads, bound));
    }
    const warmMedianS = median(warm.map((w) => w.wallS));
    const floorS = median(floors);
    let mk: MethodResult['mergekit'] = null;
    if (rt !== null) {
      await readAll(inputs);
      const runs: RunStats[] = [];
      for (let r = 0; r < config.mergekitRepeats; r++)
        runs.push(await mergekitOnce(rt, recipeFile, out, config.threads));
      const wall = median(runs.map((x) => x.wallS));
      mk = {
        wallMedianS: wall,
        runsS: runs.map((x) => x.wallS),
        mergeOnlyS: median(runs.map((x) => x.mergeOnlyS)),
        gbPerS: gb(inputBytes + outputBytes) / wall,
        peakRssBytes: Math.max(...runs.map((x) => x.peakRssBytes)),
        cpuS: median(runs.map((x) => x.cpuS)),
      };
    }
    const result: MethodResult = {
      method,
      maxMemoryBytes: bound,
      inputBytes,
      outputBytes,
      ours: {
        warmMedianS,
        warmRunsS: warm.map((w) => w.wallS),
        mergeOnlyS: median(warm.map((w) => w.mergeOnlyS)),
        coldS,
        gbPerS: gb(inputBytes + outputBytes) / warmMedianS,
        peakRssBytes: Math.max(...warm.map((w) => w.peakRssBytes)),
        cpuS: median(warm.map((w) => w.cpuS)),
      },
      floorS,
      wallOverFloor: warmMedianS / floorS,
      mergekit: mk,
      speedupVsMergekit: mk === null ? null : mk.wallMedianS / warmMedianS,
      mergeOnlySpeedupVsMergekit: mk === null ? null : mk.mergeOnlyS / median(warm.map((w) => w.mergeOnlyS)),
      loadavg1: [loadStart, os.loadavg()[0]!],
    };
    results.push(result);
    log(
      `${method}: hm3 ${fmt(warmMedianS)} s (median of ${config.repeats}; merge only ${fmt(result.ours.mergeOnlyS)} s; cold ${coldS === null ? 'n/a' : fmt(coldS)} s), ` +
        `${fmt(result.ours.gbPerS)} GB/s, peak RSS ${fmt(gb(result.ours.peakRssBytes))} GB, CPU ${fmt(result.ours.cpuS)} s; floor ${fmt(floorS)} s ` +
        `(x${fmt(result.wallOverFloor)})` +
        (mk === null
          ? ''
          : `; mergekit ${fmt(mk.wallMedianS)} s (merge only ${fmt(mk.mergeOnlyS)} s), ${fmt(mk.gbPerS)} GB/s, ` +
            `peak RSS ${fmt(gb(mk.peakRssBytes))} GB, CPU ${fmt(mk.cpuS)} s; mergekit/hm3: x${fmt(result.speedupVsMergekit!)} ` +
            `(merge only x${fmt(result.mergeOnlySpeedupVsMergekit!)})`) +
        `; load ${fmt(result.loadavg1[0], 1)} -> ${fmt(result.loadavg1[1], 1)}`,
    );
  }

  log('');
  log(
    '| method | hm3 wall s (cold) | hm3 merge only s | hm3 CPU s | floor s | hm3/floor | hm3 GB/s | hm3 peak RSS GB | mergekit wall s | mergekit merge only s | mergekit CPU s | mergekit GB/s | mergekit peak RSS GB | mergekit/hm3 wall | mergekit/hm3 merge only | load (1 min) |',
  );
  log(`|${' --- |'.repeat(16)}`);
  for (const r of results) {
    const mk = r.mergekit;
    log(
      `| ${r.method} | ${fmt(r.ours.warmMedianS)} (${r.ours.coldS === null ? 'n/a' : fmt(r.ours.coldS)}) | ${fmt(r.ours.mergeOnlyS)} | ` +
        `${fmt(r.ours.cpuS)} | ${fmt(r.floorS)} | ${fmt(r.wallOverFloor)} | ${fmt(r.ours.gbPerS)} | ${fmt(gb(r.ours.peakRssBytes))} | ` +
        `${mk ? fmt(mk.wallMedianS) : '-'} | ${mk ? fmt(mk.mergeOnlyS) : '-'} | ${mk ? fmt(mk.cpuS) : '-'} | ${mk ? fmt(mk.gbPerS) : '-'} | ` +
        `${mk ? fmt(gb(mk.peakRssBytes)) : '-'} | ${r.speedupVsMergekit === null ? '-' : fmt(r.speedupVsMergekit)} | ` +
        `${r.mergeOnlySpeedupVsMergekit === null ? '-' : fmt(r.mergeOnlySpeedupVsMergekit)} | ` +
        `${fmt(r.loadavg1[0], 1)} -> ${fmt(r.loadavg1[1], 1)} |`,
    );
  }
  return results;
}

export async function mergeBenchCommand(args: readonly string[]): Promise<number> {
  const config = parseMergeArgs(args);
  const results = await runMergeBench(config);
  const file =
    config.json ??
    path.join(repo, 'tools/bench/results', `merge-${new Date().toISOString().slice(0, 10)}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(
    file,
    JSON.stringify(
      {
        bench: 'merge',
        date: new Date().toISOString(),
        machine: { cpus: os.availableParallelism(), memoryBytes: os.totalmem(), loadavg: os.loadavg() },
        config: { ...config, modelConfig: benchConfig(config.sizeGb) },
        results,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`results: ${path.relative(process.cwd(), file)}`);
  return 0;
}
