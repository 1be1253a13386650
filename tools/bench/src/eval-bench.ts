/**
 * `npm run bench -- eval`: evaluations per second of @hm3/evaluation on the zoo base (the
 * inference-path runner, onnxruntime-node, CPU), N examples per task (default 300, the first N of the
 * search split), in three modes:
 *   - one-pass: exact match by one teacher-forced pass, no answer decoded (what a search runs);
 *   - records: the same, plus greedy decoding of the wrong examples so each record says what the model
 *     answered (evaluateTask's default);
 *   - greedy: greedy decoding of every example (KV cache), the verdict read off the generated tokens
 *     (the naive way, for the ratio).
 * One evaluation = one task's N examples. Median of --repeats runs after a warm-up.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  evaluateTask,
  findEosTokenId,
  loadTaskExamples,
  zooTaskSpec,
  GENERATION_SLACK,
} from '@hm3/evaluation';
import { ZOO_TASKS, modelPath, type ZooTask } from '@hm3/fixtures';
import { ModelRuntime, generateGreedy, loadTokenizer, ownPath, readModelConfig } from '@hm3/model';

const here = dirname(fileURLToPath(import.meta.url));

interface EvalBenchConfig {
  model: string;
  examples: number;
  repeats: number;
  threads: number;
  batchSize: number;
}

interface TaskResult {
  task: ZooTask;
  examples: number;
  score: number;
  /** Seconds per evaluation (median), per mode. */
  seconds: { onePass: number; records: number; greedy: number };
  evaluationsPerSecond: { onePass: number; records: number; greedy: number };
  examplesPerSecond: { onePass: number; records: number; greedy: number };
}

function parseEvalArgs(args: readonly string[]): EvalBenchConfig {
  const { values } = parseArgs({
    args: [...args],
    options: {
      model: { type: 'string', default: modelPath('base') },
      examples: { type: 'string', default: '300' },
      repeats: { type: 'string', default: '3' },
      threads: { type: 'string', default: '1' },
      'batch-size': { type: 'string', default: '64' },
    },
    strict: true,
  });
  const positive = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
    return n;
  };
  return {
    model: values.model,
    examples: positive('examples', values.examples),
    repeats: positive('repeats', values.repeats),
    threads: positive('threads', values.threads),
    batchSize: positive('batch-size', values['batch-size']),
  };
}

async function median(repeats: number, fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up
  const runs: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t = performance.now();
    await fn();
    runs.push((performance.now() - t) / 1000);
  }
  runs.sort((a, b) => a - b);
  return runs[Math.floor(runs.length / 2)]!;
}

export async function runEvalBench(
  config: EvalBenchConfig,
  log: (line: string) => void = console.log,
): Promise<TaskResult[]> {
  const runtime = new ModelRuntime({ intraOpThreads: config.threads });
  try {
    const arch = await readModelConfig(config.model);
    const model = await runtime.path(ownPath(config.model, arch.numLayers));
    const tokenizer = await loadTokenizer(config.model);
    const eos = findEosTokenId(tokenizer);
    const results: TaskResult[] = [];
    for (const task of ZOO_TASKS) {
      const spec = { ...zooTaskSpec(task, 'search'), limit: config.examples };
      const examples = (await loadTaskExamples(spec)).examples.slice(0, config.examples);
      const n = examples.length;
      log(`${task}: ${n} examples ...`);
      let score = 0;
      const onePass = await median(config.repeats, async () => {
        score = (
          await evaluateTask({
            model,
            tokenizer,
            task: spec,
            examples,
            batchSize: config.batchSize,
            predictions: false,
          })
        ).score;
      });
      const records = await median(config.repeats, () =>
        evaluateTask({ model, tokenizer, task: spec, examples, batchSize: config.batchSize }),
      );
      const prompts = examples.map((e) => tokenizer.encode(e.prompt, { addSpecialTokens: true }));
      const maxNewTokens =
        Math.max(...examples.map((e) => tokenizer.encode(e.answer, { addSpecialTokens: false }).length)) +
        GENERATION_SLACK;
      const greedy = await median(config.repeats, async () => {
        // Prompts of one length share a batch, as the evaluator does.
        const byLength = new Map<number, number[][]>();
        for (const p of prompts) byLength.set(p.length, [...(byLength.get(p.length) ?? []), p]);
        for (const group of byLength.values()) {
          await generateGreedy(model, group, {
            maxNewTokens,
            eosTokenIds: [eos],
            batchSize: config.batchSize,
          });
        }
      });
      const per = (s: number) => ({ evaluations: 1 / s, examples: n / s });
      results.push({
        task,
        examples: n,
        score,
        seconds: { onePass, records, greedy },
        evaluationsPerSecond: {
          onePass: per(onePass).evaluations,
          records: per(records).evaluations,
          greedy: per(greedy).evaluations,
        },
        examplesPerSecond: {
          onePass: per(onePass).examples,
          records: per(records).examples,
          greedy: per(greedy).examples,
        },
      });
    }
    return results;
  } finally {
    await runtime.close();
  }
}

function formatTable(config: EvalBenchConfig, results: readonly TaskResult[]): string {
  const lines = [
    '| task | examples | exact match | one-pass eval/s (examples/s) | with records eval/s | greedy decoding eval/s | one-pass vs greedy |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const e = r.evaluationsPerSecond;
    lines.push(
      `| ${r.task} | ${r.examples} | ${r.score.toFixed(4)} | ${e.onePass.toFixed(2)} (${r.examplesPerSecond.onePass.toFixed(0)}) | ` +
        `${e.records.toFixed(2)} | ${e.greedy.toFixed(2)} | ${(e.onePass / e.greedy).toFixed(1)}x |`,
    );
  }
  lines.push(
    '',
    `model ${config.model}, batch ${config.batchSize}, ${config.threads} thread(s), median of ${config.repeats} after a warm-up`,
  );
  return lines.join('\n');
}

/** The `eval` bench command: prints the table and writes results/eval-<date>.json. */
export async function evalBenchCommand(args: readonly string[]): Promise<number> {
  const config = parseEvalArgs(args);
  const started = new Date();
  const results = await runEvalBench(config);
  console.log(`\n@hm3/evaluation on ${config.model}\n`);
  console.log(formatTable(config, results));
  const resultsDir = join(here, '../results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `eval-${started.toISOString().slice(0, 10)}-t${config.threads}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        startedAt: started.toISOString(),
        node: process.version,
        cpus: os.cpus()[0]?.model,
        cores: os.availableParallelism(),
        loadAverage: os.loadavg(),
        config,
        results,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`\nresults: ${file}`);
  return 0;
}
