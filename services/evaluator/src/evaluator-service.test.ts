// EvaluatorService over loopback gRPC (service-kit's real server, bearer-token auth on), with the
// in-memory store, a local artifact folder, and the committed zoo as the models root.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { evaluateTask, zooTaskSpec } from '@hm3/evaluation';
import { loadAnswers, loadDataset, loadManifest, modelPath, zooRoot } from '@hm3/fixtures';
import { loadTokenizer, ModelRuntime } from '@hm3/model';
import { common, evaluator } from '@hm3/proto';
import { createClient, createLogger, loadServiceConfig, type ClientOptions } from '@hm3/service-kit';
import { createInMemoryStore, type Store } from '@hm3/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEvaluatorServer, type RunningEvaluator } from './evaluator-server.js';

const TOKEN = 'evaluator-test-token-0123456789abcdef';

let dir: string;
let datasetsRoot: string;
let artifactRoot: string;
let store: Store;
let running: RunningEvaluator;
let options: ClientOptions;
let client: ReturnType<typeof newClient>;

function newClient(o: ClientOptions) {
  return createClient(evaluator.EvaluatorServiceService, o);
}

async function collect(
  stream: AsyncIterable<evaluator.EvaluateResponse>,
): Promise<evaluator.EvaluateResponse[]> {
  const out: evaluator.EvaluateResponse[] = [];
  for await (const m of stream) out.push(m);
  return out;
}

function failure(promise: Promise<unknown>): Promise<{ code?: number; details?: string } | undefined> {
  return promise.then(
    () => undefined,
    (e: { code?: number; details?: string }) => e,
  );
}

const objective = (over: Partial<common.Objective> = {}): common.Objective =>
  common.Objective.fromPartial({ name: 'math', task: 'math', maxExamples: 40, ...over });

const request = (over: Partial<evaluator.EvaluateRequest> = {}): evaluator.EvaluateRequest =>
  evaluator.EvaluateRequest.fromPartial({
    candidateId: 'cand-1',
    target: { $case: 'model', value: { uri: 'base', modelId: '' } },
    objectives: [objective()],
    split: common.Split.SEARCH,
    ...over,
  });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hm3-evaluator-'));
  datasetsRoot = path.join(dir, 'datasets');
  artifactRoot = path.join(dir, 'artifacts');
  await mkdir(datasetsRoot);
  await writeFile(path.join(datasetsRoot, 'empty.jsonl'), '');
  await writeFile(
    path.join(datasetsRoot, 'bad.jsonl'),
    '{"prompt":"12+34=","answer":"640"}\n{"prompt": 12+\n',
  );
  await writeFile(path.join(datasetsRoot, 'noprompt.jsonl'), '{"question":"12+34=","answer":"640"}\n');
  const tokenFile = path.join(dir, 'tokens');
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  store = createInMemoryStore();
  await store.start();
  const config = loadServiceConfig({
    env: { HM3_HOST: '127.0.0.1', HM3_PORT: '0', HM3_METRICS_PORT: 'off', HM3_TOKEN_FILE: tokenFile },
    argv: ['--shutdown-drain-delay-ms=0'],
  });
  running = await startEvaluatorServer({
    config,
    store,
    modelsRoot: zooRoot,
    datasetRoots: [datasetsRoot],
    artifactRoot,
    intraOpThreads: 1,
    logger: createLogger({ level: 'silent', name: 'evaluator' }),
  });
  options = { address: `127.0.0.1:${running.port}`, token: TOKEN };
  client = newClient(options);
});

afterAll(async () => {
  client?.close();
  await running?.stop('test over');
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('EvaluatorService over loopback gRPC', () => {
  it('refuses a call without the bearer token', async () => {
    const anonymous = newClient({ address: options.address, retry: false });
    expect((await failure(anonymous.listTasks({})))?.code).toBe(status.UNAUTHENTICATED);
    anonymous.close();
  });

  it('lists its tasks, sorted, with metrics and the default metric', async () => {
    const { tasks } = await client.listTasks({});
    expect(tasks.map((t) => t.name)).toEqual(['code', 'completion', 'math', 'multiple-choice', 'translate']);
    expect(tasks.find((t) => t.name === 'completion')).toMatchObject({
      metrics: ['exact_match', 'chrf'],
      defaultMetric: 'exact_match',
    });
  });

  it('streams progress, then the scores; the score is the zoo answers of PyTorch on the same examples', async () => {
    const messages = await collect(client.evaluate(request()));
    const last = messages.at(-1)!;
    expect(last.event?.$case).toBe('result');
    const progress = messages.slice(0, -1).map((m) => m.event?.value as evaluator.EvaluateProgress);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toEqual({ objective: 'math', examplesDone: 40, examplesTotal: 40 });
    const result = last.event!.value as evaluator.EvaluateResult;
    expect(result.candidateId).toBe('cand-1');
    const manifest = await loadManifest();
    const recorded = (await loadAnswers(manifest)).answers['base']!.math.search.slice(0, 40);
    const gold = (await loadDataset('math', 'search')).slice(0, 40);
    const expected = recorded.filter((a, i) => a === gold[i]!.answer).length / 40;
    expect(result.scores).toEqual([
      {
        objective: 'math',
        metric: 'exact_match',
        split: common.Split.SEARCH,
        value: expected,
        exampleCount: 40,
      },
    ]);
    // Recorded in the store, with the per-example records in the artifact store.
    const stored = await store.scores.get('cand-1', 'math', 'search');
    expect(stored?.value).toBe(expected);
    const recordsId = stored?.details?.['recordsArtifactId'] as string;
    const lines = (await readFile(path.join(artifactRoot, recordsId, 'records.jsonl'), 'utf8'))
      .trim()
      .split('\n');
    expect(lines).toHaveLength(40);
    expect(lines.map((l) => (JSON.parse(l) as { predicted: string }).predicted)).toEqual(recorded);
    // Prometheus: evaluations and examples counted.
    const metrics = await running.server.registry.metrics();
    expect(metrics).toContain('hm3_evaluations_total{metric="exact_match",reused="false"} 1');
    expect(metrics).toContain('hm3_evaluation_examples_total{metric="exact_match"} 40');
  });

  it('takes zoo: references to models and datasets (as search specs write them)', async () => {
    const messages = await collect(
      client.evaluate(
        request({
          candidateId: '',
          target: { $case: 'model', value: { uri: 'zoo:base', modelId: '' } },
          objectives: [objective({ task: '', dataset: { uri: 'zoo:math', datasetId: '', sha256: '' } })],
        }),
      ),
    );
    const recorded = await store.scores.get('cand-1', 'math', 'search');
    expect((messages.at(-1)!.event!.value as evaluator.EvaluateResult).scores[0]!.value).toBe(
      recorded?.value,
    );
  });

  it('answers a (candidate, objective, split) already scored from the store: no progress, the same score', async () => {
    await store.scores.upsert({
      candidateId: 'cand-2',
      objective: 'math',
      split: 'heldout',
      searchId: '',
      value: 0.123,
      details: { metric: 'exact_match', exampleCount: 7 },
      createdAt: new Date(),
    });
    const messages = await collect(
      client.evaluate(request({ candidateId: 'cand-2', split: common.Split.HELDOUT })),
    );
    expect(messages).toHaveLength(1);
    expect((messages[0]!.event!.value as evaluator.EvaluateResult).scores[0]).toMatchObject({
      value: 0.123,
      exampleCount: 7,
      split: common.Split.HELDOUT,
    });
  });

  it('scores an inference path over a pool of models like the evaluator core does', async () => {
    const pool = ['base', 'expert-math'];
    const steps = [0, 1, 2, 3, 4, 5, 6, 7].map((l) => ({ poolIndex: l < 4 ? 0 : 1, layerIndex: l }));
    const messages = await collect(
      client.evaluate(
        request({
          candidateId: '',
          target: {
            $case: 'path',
            value: { pool: pool.map((uri) => ({ uri, modelId: '' })), steps, headSource: 1 },
          },
        }),
      ),
    );
    const result = messages.at(-1)!.event!.value as evaluator.EvaluateResult;
    const runtime = new ModelRuntime({ intraOpThreads: 1 });
    try {
      const model = await runtime.path({
        pool: pool.map((m) => modelPath(m as 'base')),
        steps,
        headSource: 1,
      });
      const direct = await evaluateTask({
        model,
        tokenizer: await loadTokenizer(modelPath('expert-math')),
        task: { ...zooTaskSpec('math', 'search'), limit: 40 },
      });
      expect(result.scores[0]!.value).toBe(direct.score);
    } finally {
      await runtime.close();
    }
  });

  describe('bad input is INVALID_ARGUMENT', () => {
    const cases: [string, Partial<evaluator.EvaluateRequest>, RegExp][] = [
      ['no objective', { objectives: [] }, /objectives/],
      ['an unknown metric', { objectives: [objective({ metric: 'bleu' })] }, /unknown metric "bleu"/],
      ['an unknown task', { objectives: [objective({ task: 'poetry' })] }, /unknown task "poetry"/],
      [
        'an empty dataset',
        {
          objectives: [
            objective({ task: 'completion', dataset: { uri: 'empty.jsonl', datasetId: '', sha256: '' } }),
          ],
        },
        /empty\.jsonl: holds no example/,
      ],
      [
        'a malformed JSONL line, with its line number',
        {
          objectives: [
            objective({ task: 'completion', dataset: { uri: 'bad.jsonl', datasetId: '', sha256: '' } }),
          ],
        },
        /bad\.jsonl:2: malformed JSON/,
      ],
      [
        'lines without the prompt field the template reads',
        {
          objectives: [
            objective({ task: 'completion', dataset: { uri: 'noprompt.jsonl', datasetId: '', sha256: '' } }),
          ],
        },
        /noprompt\.jsonl:1: the prompt template reads field "prompt"/,
      ],
      [
        'a dataset outside the dataset roots',
        {
          objectives: [
            objective({
              task: 'completion',
              dataset: { uri: path.join(zooRoot, 'datasets/math/search.jsonl'), datasetId: '', sha256: '' },
            }),
          ],
        },
        /outside the dataset roots/,
      ],
      [
        'a model outside the models root',
        { target: { $case: 'model', value: { uri: '../..', modelId: '' } } },
        /outside the models root/,
      ],
      ['no target', { target: undefined }, /target/],
    ];
    for (const [what, over, message] of cases) {
      it(what, async () => {
        const error = await failure(collect(client.evaluate(request({ candidateId: '', ...over }))));
        expect(error?.code).toBe(status.INVALID_ARGUMENT);
        expect(error?.details).toMatch(message);
      });
    }
  });
});

describe('startEvaluatorServer options', () => {
  it('passes flushDenormals to the model runtime (default off)', async () => {
    expect(running.core.runtime('cpu').flushDenormals).toBe(false);
    const config = loadServiceConfig({
      env: { HM3_HOST: '127.0.0.1', HM3_PORT: '0', HM3_METRICS_PORT: 'off' },
      argv: ['--shutdown-drain-delay-ms=0', '--allow-unauthenticated'],
    });
    const flushing = await startEvaluatorServer({
      config,
      store,
      modelsRoot: zooRoot,
      datasetRoots: [],
      artifactRoot: path.join(dir, 'artifacts-flush'),
      flushDenormals: true,
      logger: createLogger({ level: 'silent', name: 'evaluator' }),
    });
    try {
      // no model has run: the runtime exists, no session (and so no FTZ in this worker) yet
      expect(flushing.core.runtime('cpu').flushDenormals).toBe(true);
    } finally {
      await flushing.stop('test over');
    }
  });
});
