import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InProcessEventBus } from '@hm3/events';
import {
  InMemoryJournal,
  startParetoOptimizerServer,
  startStubEvaluator,
  startStubMerger,
  type RunningParetoOptimizer,
  type StubService,
} from '@hm3/pareto-optimizer';
import { startRlPolicyServer, type RunningRlPolicy } from '@hm3/rl-policy';
import { loadServiceConfig } from '@hm3/service-kit';
import { createInMemoryStore, type Store } from '@hm3/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../main.js';
import { runRemoteSearch } from './remote-search.js';

const ZOO = fileURLToPath(new URL('../../../fixtures/zoo', import.meta.url));

const config = () =>
  loadServiceConfig({
    env: {
      HM3_HOST: '127.0.0.1',
      HM3_PORT: '0',
      HM3_ALLOW_UNAUTHENTICATED: 'true',
      HM3_METRICS_PORT: 'off',
      HM3_LOG_LEVEL: 'silent',
    },
    argv: [],
  });

let work: string;
let store: Store;
let bus: InProcessEventBus;
let rl: RunningRlPolicy;
let server: RunningParetoOptimizer;
let stubs: StubService[];
let specFile: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'hm3-remote-'));
  store = createInMemoryStore();
  await store.start();
  bus = new InProcessEventBus();
  await bus.start();
  rl = await startRlPolicyServer({ config: config(), store, artifactRoot: path.join(work, 'policy') });
  stubs = [await startStubEvaluator(bus), await startStubMerger(bus, 'base')];
  server = await startParetoOptimizerServer({
    config: config(),
    store,
    bus,
    journal: new InMemoryJournal(),
    modelsRoot: ZOO,
    artifactRoot: path.join(work, 'artifacts'),
    policyService: { address: `127.0.0.1:${rl.port}` },
  });
  specFile = path.join(work, 'spec.yaml');
  await writeFile(
    specFile,
    [
      'name: remote',
      'base: base',
      'experts: [expert-translate, expert-math, expert-code]',
      'objectives:',
      ...['translate', 'math', 'code'].map((t) => `  - { name: ${t}, dataset: "zoo:${t}", max_examples: 4 }`),
      'preference_count: 2',
      'budget: { max_evaluations: 30 }',
      'rl: { episodes_per_iteration: 2, hidden_size: 16 }',
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await server.stop();
  for (const s of stubs) await s.stop();
  await rl.stop();
  await bus.close();
  await store.close();
  await rm(work, { recursive: true, force: true });
});

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out: (l: string) => out.push(l),
    err: (l: string) => err.push(l),
    tty: false,
    lines: out,
    errors: err,
  };
}

describe('hm3 search --server', () => {
  it('runs the spec on the remote optimizer (with the --budget override) and prints its front', async () => {
    const captured = io();
    const code = await runRemoteSearch(
      specFile,
      { server: `127.0.0.1:${server.port}`, budget: '9' },
      captured,
    );
    expect(captured.errors.join('\n')).toMatch(/SEARCH_STATE_SUCCEEDED: 9 evaluations/);
    expect(code).toBe(0);
    const [header, ...rows] = captured.lines;
    expect(header?.split('\t')).toEqual([
      'candidate',
      'translate (search)',
      'math (search)',
      'code (search)',
      'translate (heldout)',
      'math (heldout)',
      'code (heldout)',
    ]);
    const searchId = /search (s-\S+) started/.exec(captured.errors.join('\n'))![1]!;
    const front = await store.fronts.latest(searchId);
    expect(rows.map((r) => r.split('\t')[0]).sort()).toEqual([...front!.candidateIds].sort());
  });

  it('refuses a bad spec with exit code 2 and the field, and a bad --server address', async () => {
    const bad = path.join(work, 'bad.yaml');
    await writeFile(
      bad,
      'base: base\nexperts: [expert-math]\nobjectives: [{ name: m, dataset: "zoo:math" }]\nbudget: { max_evaluations: 3 }\n',
    );
    const captured = io();
    expect(await runRemoteSearch(bad, { server: `127.0.0.1:${server.port}` }, captured)).toBe(2);
    expect(captured.errors.join('\n')).toMatch(/experts/);
    expect(await runRemoteSearch(specFile, { server: 'no-port' }, io())).toBe(2);
  });

  it('is reachable as `hm3 search <spec> --server HOST:PORT`', async () => {
    const original = [console.log, console.error];
    const lines: string[] = [];
    console.log = (l: string) => lines.push(l);
    console.error = (l: string) => lines.push(l);
    try {
      expect(
        await run([
          'node',
          'hm3',
          'search',
          specFile,
          '--server',
          `127.0.0.1:${server.port}`,
          '--budget',
          '6',
        ]),
      ).toBe(0);
    } finally {
      [console.log, console.error] = original as [typeof console.log, typeof console.error];
    }
    expect(lines.join('\n')).toMatch(/SEARCH_STATE_SUCCEEDED: 6 evaluations/);
  });
});
