/**
 * `npm run bench -- runtime`: tokens/s of @hm3/model (onnxruntime-node, CPU, the inference-path
 * runner on the model's own path) against transformers (PyTorch fp32, CPU) in the same run, same
 * machine, same threads, same prompts: greedy generation (KV cache) and teacher-forced scoring, at
 * batch 1 and 32. Model: the zoo base (tools/fixtures/zoo/base), or --model DIR.
 * Each run is timed in wall-clock seconds (the tok/s of the table and of the exit status) and in CPU
 * seconds of the process (all its threads), which a machine loaded by other work disturbs far less;
 * the load average before and after goes into the results.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import {
  ModelRuntime,
  generateGreedy,
  ownPath,
  readModelConfig,
  sequenceLogits,
  type CausalLM,
} from '@hm3/model';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '../../..');

interface RuntimeBenchConfig {
  model: string;
  batches: number[];
  promptLength: number;
  newTokens: number;
  repeats: number;
  threads: number;
  torch: boolean;
  /** onnxruntime flushes denormals to zero (ModelRuntime's flushDenormals; the bench's process does nothing else) */
  flushDenormals: boolean;
}

interface Throughput {
  generateTokensPerS: number;
  scoreTokensPerS: number;
  /** tokens per CPU second of the process */
  generateTokensPerCpuS: number;
  scoreTokensPerCpuS: number;
}

interface CaseResult {
  batch: number;
  ours: Throughput;
  torch?: Throughput;
}

function parseRuntimeArgs(args: readonly string[]): RuntimeBenchConfig {
  const { values } = parseArgs({
    args: [...args],
    options: {
      model: { type: 'string', default: join(repo, 'tools/fixtures/zoo/base') },
      batches: { type: 'string', default: '1,32' },
      'prompt-length': { type: 'string', default: '32' },
      'new-tokens': { type: 'string', default: '32' },
      repeats: { type: 'string', default: '3' },
      threads: { type: 'string', default: String(os.availableParallelism()) },
      'no-torch': { type: 'boolean', default: false },
      'no-flush-denormals': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const positive = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
    return n;
  };
  if (!existsSync(join(values.model, 'config.json')))
    throw new Error(`--model ${values.model}: no config.json (train the zoo, or pass an HF folder)`);
  return {
    model: values.model,
    batches: values.batches.split(',').map((b) => positive('batches', b)),
    promptLength: positive('prompt-length', values['prompt-length']),
    newTokens: positive('new-tokens', values['new-tokens']),
    repeats: positive('repeats', values.repeats),
    threads: positive('threads', values.threads),
    torch: !values['no-torch'],
    flushDenormals: !values['no-flush-denormals'],
  };
}

/** Seeded prompts (an LCG) of equal length over ids [4, vocab). */
function prompts(count: number, length: number, vocab: number, seed: number): number[][] {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  return Array.from({ length: count }, () =>
    Array.from({ length }, () => 4 + Math.floor(next() * (vocab - 4))),
  );
}

const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Median wall-clock and CPU seconds of `repeats` runs after a warm-up. */
async function median(repeats: number, fn: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  await fn(); // warm-up
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t = performance.now();
    const c = process.cpuUsage();
    await fn();
    const used = process.cpuUsage(c);
    wall.push((performance.now() - t) / 1000);
    cpu.push((used.user + used.system) / 1e6);
  }
  return { wall: mid(wall), cpu: mid(cpu) };
}

export async function runRuntimeBench(
  config: RuntimeBenchConfig,
  log: (line: string) => void = console.log,
): Promise<{ arch: unknown; cases: CaseResult[]; torchVersion?: string }> {
  const arch = await readModelConfig(config.model);
  const cases = config.batches.map((batch, i) => ({
    batch,
    prompts: prompts(batch, config.promptLength, arch.vocabSize, 100 + i),
  }));
  let torchOut:
    | {
        torch: string;
        cases: {
          batch: number;
          generate_s: number[];
          score_s: number[];
          generate_cpu_s: number[];
          score_cpu_s: number[];
        }[];
      }
    | undefined;
  if (config.torch) {
    log('running PyTorch (transformers) ...');
    const work = mkdtempSync(join(os.tmpdir(), 'hm3-runtime-bench-'));
    try {
      writeFileSync(
        join(work, 'spec.json'),
        JSON.stringify({
          model: config.model,
          threads: config.threads,
          repeats: config.repeats,
          new_tokens: config.newTokens,
          cases,
        }),
      );
      const venv = execFileSync(join(repo, 'tools/python/ensure-venv.sh'), { encoding: 'utf8' }).trim();
      await promisify(execFile)(
        join(venv, 'bin/python'),
        [
          join(repo, 'tools/conformance/model/runtime_bench.py'),
          join(work, 'spec.json'),
          join(work, 'out.json'),
        ],
        { maxBuffer: 1 << 24 },
      );
      torchOut = JSON.parse(readFileSync(join(work, 'out.json'), 'utf8')) as typeof torchOut;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  log('running @hm3/model (onnxruntime-node) ...');
  const runtime = new ModelRuntime({
    intraOpThreads: config.threads,
    flushDenormals: config.flushDenormals,
  });
  try {
    const model: CausalLM = await runtime.path(ownPath(config.model, arch.numLayers));
    const results: CaseResult[] = [];
    for (const c of cases) {
      const gen = await median(config.repeats, () =>
        generateGreedy(model, c.prompts, {
          maxNewTokens: config.newTokens,
          eosTokenIds: [],
          batchSize: c.batch,
        }),
      );
      const score = await median(config.repeats, () => sequenceLogits(model, c.prompts, c.batch));
      const t = torchOut?.cases.find((x) => x.batch === c.batch);
      const throughput = (g: { wall: number; cpu: number }, s: { wall: number; cpu: number }) => ({
        generateTokensPerS: (c.batch * config.newTokens) / g.wall,
        scoreTokensPerS: (c.batch * config.promptLength) / s.wall,
        generateTokensPerCpuS: (c.batch * config.newTokens) / g.cpu,
        scoreTokensPerCpuS: (c.batch * config.promptLength) / s.cpu,
      });
      results.push({
        batch: c.batch,
        ours: throughput(gen, score),
        ...(t
          ? {
              torch: throughput(
                { wall: mid(t.generate_s), cpu: mid(t.generate_cpu_s) },
                { wall: mid(t.score_s), cpu: mid(t.score_cpu_s) },
              ),
            }
          : {}),
      });
    }
    return { arch, cases: results, ...(torchOut ? { torchVersion: torchOut.torch } : {}) };
  } finally {
    await runtime.close();
  }
}

function formatTable(config: RuntimeBenchConfig, cases: CaseResult[]): string {
  const f = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(0));
  const lines = [
    '| batch | generate ours tok/s | generate PyTorch tok/s | score ours tok/s | score PyTorch tok/s | per CPU second: generate ours / PyTorch | score ours / PyTorch |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const c of cases)
    lines.push(
      `| ${c.batch} | ${f(c.ours.generateTokensPerS)} | ${f(c.torch?.generateTokensPerS)} | ${f(c.ours.scoreTokensPerS)} | ${f(c.torch?.scoreTokensPerS)} | ${f(c.ours.generateTokensPerCpuS)} / ${f(c.torch?.generateTokensPerCpuS)} | ${f(c.ours.scoreTokensPerCpuS)} / ${f(c.torch?.scoreTokensPerCpuS)} |`,
    );
  lines.push(
    '',
    `prompt length ${config.promptLength}, ${config.newTokens} new tokens, ${config.threads} threads, median of ${config.repeats} after a warm-up, onnxruntime denormals ${config.flushDenormals ? 'flushed to zero' : 'kept'}`,
  );
  return lines.join('\n');
}

/** The `runtime` bench command: prints the table, writes results JSON; exit 1 when ours is slower than PyTorch anywhere. */
export async function runtimeBenchCommand(args: readonly string[]): Promise<number> {
  const config = parseRuntimeArgs(args);
  const started = new Date();
  const loadBefore = os.loadavg();
  const result = await runRuntimeBench(config);
  const loadAfter = os.loadavg();
  console.log(`\n@hm3/model vs transformers on ${config.model}\n`);
  console.log(formatTable(config, result.cases));
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  console.log(
    `load average (1/5/15 min) before ${load(loadBefore)}, after ${load(loadAfter)} on ${os.availableParallelism()} CPUs`,
  );
  const resultsDir = join(here, '../results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `runtime-${started.toISOString().slice(0, 10)}-t${config.threads}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        startedAt: started.toISOString(),
        node: process.version,
        cpus: os.cpus()[0]?.model,
        loadAverage: { before: loadBefore, after: loadAfter },
        config,
        ...result,
      },
      null,
      2,
    ),
  );
  console.log(`\nresults: ${file}`);
  const slower = result.cases.filter(
    (c) =>
      c.torch &&
      (c.ours.generateTokensPerS < c.torch.generateTokensPerS ||
        c.ours.scoreTokensPerS < c.torch.scoreTokensPerS),
  );
  return slower.length === 0 ? 0 : 1;
}
