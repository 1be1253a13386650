// An external evaluator takes part through the public contract only: the system's producer publishes
// eval.requested on the real broker; tools/conformance/external-evaluator/external_evaluator.py (Python:
// the .proto files compiled by grpcio-tools, kafka-python from PyPI) consumes and answers them; the
// evaluator's completed-event handling (the score recorder) records its scores in FerretDB.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KafkaEventBus, type Subscription } from '@hm3/events';
import { loadAnswers, loadDataset, loadManifest } from '@hm3/fixtures';
import { common, events } from '@hm3/proto';
import { createLogger } from '@hm3/service-kit';
import { createMongoStore, type MongoStore } from '@hm3/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishEvalRequest } from './envelopes.js';
import { startScoreRecorder } from './score-recorder.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const script = path.join(repo, 'tools/conformance/external-evaluator/external_evaluator.py');
const lock = path.join(repo, 'tools/conformance/external-evaluator/requirements.lock');
const run = randomUUID().slice(0, 8);
const topics = {
  requested: `test.ext.${run}.eval.requested`,
  completed: `test.ext.${run}.eval.completed`,
  failed: `test.ext.${run}.eval.failed`,
};
const brokers = process.env['HM3_KAFKA_BROKERS'] ?? '127.0.0.1:9092';

let python: string;
let store: MongoStore;
let bus: KafkaEventBus;
const subscriptions: Subscription[] = [];
const failed: events.Envelope[] = [];

beforeAll(async () => {
  // The external evaluator's own venv (its lock, not the torch one): created once per machine.
  const { stdout } = await promisify(execFile)(
    'bash',
    [path.join(repo, 'tools/python/ensure-venv.sh'), lock],
    {
      maxBuffer: 1 << 20,
    },
  );
  python = path.join(stdout.trim(), 'bin/python');
  store = createMongoStore({
    url: process.env['HM3_MONGO_URL'] ?? 'mongodb://127.0.0.1:27017',
    database: `hm3_ext_${run}`,
  });
  await store.start();
  bus = new KafkaEventBus({
    brokers: brokers.split(','),
    clientId: `external-evaluator-test-${run}`,
    topics: Object.values(topics).map((name) => ({ name, partitions: 2 })),
    logger: createLogger({ level: 'silent', name: 'external-evaluator-test' }),
  });
  await bus.start();
  // The system side: only the score recorder runs (no built-in evaluator consumes these requests).
  subscriptions.push(
    await startScoreRecorder(bus, store.processedEvents, store.scores, {
      groupId: `ext-rec-${run}`,
      topic: topics.completed,
    }),
  );
  subscriptions.push(
    await bus.subscribe({ groupId: `ext-failed-${run}`, topics: [topics.failed] }, async (e) => {
      failed.push(events.Envelope.decode(e.value));
    }),
  );
});

afterAll(async () => {
  for (const s of subscriptions) await s.stop();
  await bus?.close();
  await store?.close();
});

function runScript(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('an external evaluator (Python, the .proto files and kafka-python only)', () => {
  it('answers requests the system produced; the system records its scores', async () => {
    const objective = (task: string, maxExamples = 0) =>
      common.Objective.fromPartial({ name: task, task, maxExamples });
    const model = (uri: string) => ({ $case: 'model' as const, value: { uri, modelId: '' } });
    const base = await publishEvalRequest(
      bus,
      {
        candidateId: 'cand-base',
        searchId: 's-ext',
        target: model('base'),
        objectives: [objective('math'), objective('code')],
      },
      topics.requested,
    );
    await publishEvalRequest(
      bus,
      {
        candidateId: 'cand-translate',
        searchId: 's-ext',
        target: model('expert-translate'),
        objectives: [objective('translate', 100)],
        split: common.Split.HELDOUT,
      },
      topics.requested,
    );
    const unknown = await publishEvalRequest(
      bus,
      {
        candidateId: 'cand-unknown',
        target: model('artifact://not-in-its-answers'),
        objectives: [objective('math')],
      },
      topics.requested,
    );

    const { code, output } = await runScript([
      '--brokers',
      brokers,
      '--group',
      `ext-${run}`,
      '--requested-topic',
      topics.requested,
      '--completed-topic',
      topics.completed,
      '--failed-topic',
      topics.failed,
      '--max-requests',
      '3',
      '--idle-timeout',
      '120',
    ]);
    expect(code, output).toBe(0);

    const manifest = await loadManifest();
    const until = Date.now() + 60_000;
    const wanted = () =>
      Promise.all([
        store.scores.get('cand-base', 'math', 'search'),
        store.scores.get('cand-base', 'code', 'search'),
        store.scores.get('cand-translate', 'translate', 'heldout'),
      ]);
    let got = await wanted();
    while (got.some((s) => s === undefined) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 250));
      got = await wanted();
    }
    const [math, code_, translate] = got;
    // Its harness: exact match of PyTorch's recorded answers, i.e. the manifest's scores.
    expect(math).toMatchObject({ value: manifest.scores['base']!.math.search, searchId: 's-ext' });
    expect(math?.details).toMatchObject({
      producer: 'external-evaluator',
      causationId: base.eventId,
      exampleCount: 320,
    });
    expect(code_?.value).toBe(manifest.scores['base']!.code.search);
    const recorded = (await loadAnswers(manifest)).answers['expert-translate']!.translate.heldout.slice(
      0,
      100,
    );
    const gold = (await loadDataset('translate', 'heldout')).slice(0, 100);
    expect(translate?.value).toBe(recorded.filter((a, i) => a === gold[i]!.answer).length / 100);
    expect(translate?.details).toMatchObject({ exampleCount: 100 });

    const waitFailed = Date.now() + 30_000;
    while (!failed.some((f) => f.causationId === unknown.eventId) && Date.now() < waitFailed) {
      await new Promise((r) => setTimeout(r, 250));
    }
    const refusal = failed.find((f) => f.causationId === unknown.eventId);
    expect(refusal?.payload?.$case).toBe('evalFailed');
    expect((refusal?.payload?.value as events.EvalFailed).failure?.code).toBe('FAILED_PRECONDITION');
    expect(await store.scores.get('cand-unknown', 'math', 'search')).toBeUndefined();
  }, 300_000);
});
