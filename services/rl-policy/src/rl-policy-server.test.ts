// PolicyService over loopback gRPC (service-kit's real server, bearer-token auth on), with the
// in-memory store and a local artifact folder; a second server over the same store and folder
// stands for a restart.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { common, policy } from '@hm3/proto';
import { OnnxPathPolicy } from '@hm3/rl';
import {
  checkHealth,
  createClient,
  createLogger,
  loadServiceConfig,
  type ClientOptions,
  type ServiceConfig,
} from '@hm3/service-kit';
import { createInMemoryStore, type Store } from '@hm3/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRlPolicyServer, type RunningRlPolicy } from './rl-policy-server.js';

const TOKEN = 'rl-policy-test-token-0123456789abcdef';

let dir: string;
let artifactRoot: string;
let store: Store;
let config: ServiceConfig;
let running: RunningRlPolicy | undefined;

const spec: policy.PolicySpec = policy.PolicySpec.fromPartial({
  pool: [
    { modelId: 'expert-a', uri: '' },
    { modelId: 'expert-b', uri: '' },
    { modelId: 'merged', uri: '' },
  ],
  numLayers: 4,
  tMax: 4,
  numObjectives: 2,
  settings: { nearestActions: 4, amortized: true, hiddenSize: 16, embeddingSize: 4 },
  seed: 5n,
});

async function start(): Promise<{ client: ReturnType<typeof newClient>; options: ClientOptions }> {
  running = await startRlPolicyServer({
    config,
    store,
    artifactRoot,
    logger: createLogger({ level: 'silent', name: 'rl-policy' }),
  });
  const options = { address: `127.0.0.1:${running.port}`, token: TOKEN };
  return { client: newClient(options), options };
}

function newClient(o: ClientOptions) {
  return createClient(policy.PolicyServiceService, o);
}

function errorOf(promise: Promise<unknown>): Promise<{ code?: number; details?: string } | undefined> {
  return promise.then(
    () => undefined,
    (e: { code?: number; details?: string }) => e,
  );
}

const score = (objective: string, value: number): common.Score =>
  common.Score.fromPartial({ objective, metric: 'accuracy', value, exampleCount: 10 });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hm3-rl-policy-server-'));
  artifactRoot = path.join(dir, 'artifacts');
  const tokenFile = path.join(dir, 'tokens');
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  store = createInMemoryStore();
  await store.start();
  config = loadServiceConfig({
    env: { HM3_HOST: '127.0.0.1', HM3_PORT: '0', HM3_METRICS_PORT: 'off', HM3_TOKEN_FILE: tokenFile },
    argv: ['--shutdown-drain-delay-ms=0'],
  });
});

afterAll(async () => {
  await running?.stop('test over');
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('PolicyService over loopback gRPC', () => {
  it('create, propose, report, train stream, export (ONNX that runs); a restart keeps the policy', async () => {
    const { client, options } = await start();
    expect(await checkHealth({ address: options.address })).toBe('SERVING');
    const anonymous = newClient({ address: options.address, retry: false });
    expect((await errorOf(anonymous.createPolicy({ policyId: 'x', spec })))?.code).toBe(
      status.UNAUTHENTICATED,
    );

    const { policyId } = await client.createPolicy({ policyId: 'grpc-1', spec });
    expect(policyId).toBe('grpc-1');
    // The same spec again is the same policy; another spec under the id is ALREADY_EXISTS.
    expect((await client.createPolicy({ policyId, spec })).policyId).toBe(policyId);
    const other = { ...spec, seed: 6n };
    expect((await errorOf(client.createPolicy({ policyId, spec: other })))?.code).toBe(status.ALREADY_EXISTS);

    const { paths } = await client.proposePaths({
      policyId,
      preference: { weights: [0.3, 0.7] },
      count: 5,
      greedy: false,
    });
    expect(paths).toHaveLength(5);
    for (const p of paths) {
      expect(p.path?.pool.map((m) => m.modelId)).toEqual(['expert-a', 'expert-b', 'merged']);
      expect(p.path?.steps).toHaveLength(4);
      for (const s of p.path!.steps) {
        expect(s.poolIndex).toBeLessThan(3);
        expect(s.layerIndex).toBeLessThan(4);
      }
    }
    const report = await client.reportRewards({
      policyId,
      rewards: [
        ...paths.map((p, i) => ({
          episodeId: p.episodeId,
          scores: [score('a', i / 5), score('b', 1 - i / 5)],
          reward: 0,
        })),
        { episodeId: 'never-proposed', scores: [], reward: 0.5 },
      ],
    });
    expect(report.accepted).toBe(5);
    expect(report.ignoredEpisodeIds).toEqual(['never-proposed']);

    const events: policy.TrainResponse[] = [];
    for await (const e of client.train({ policyId, iterations: 3 })) events.push(e);
    expect(events.map((e) => e.event?.$case)).toEqual(['progress', 'progress', 'progress', 'result']);
    const progress = events.slice(0, 3).map((e) => (e.event as { value: policy.TrainProgress }).value);
    expect(progress.map((p) => p.iteration)).toEqual([0, 1, 2]);
    expect(progress.every((p) => p.episodes === 5 && Number.isFinite(p.valueLoss))).toBe(true);
    expect(events[3]?.event).toMatchObject({ $case: 'result', value: { iterations: 3 } });

    const exported = await client.exportPolicy({ policyId });
    expect(exported.uri).toBe(`artifact://${exported.artifactId}`);
    const folder = path.join(artifactRoot, exported.artifactId);
    const actor = await readFile(path.join(folder, 'actor.onnx'));
    expect(createHash('sha256').update(actor).digest('hex')).toBe(exported.sha256);
    const served = await OnnxPathPolicy.create({
      encoder: await readFile(path.join(folder, 'encoder.onnx')),
      actor,
      critic: await readFile(path.join(folder, 'critic.onnx')),
      policyJson: await readFile(path.join(folder, 'policy.json'), 'utf8'),
    });
    const greedy = await client.proposePaths({
      policyId,
      preference: { weights: [0.5, 0.5] },
      count: 1,
      greedy: true,
    });
    try {
      const onnxPath = await served.greedyPath([0.5, 0.5]);
      expect(onnxPath).toEqual(
        greedy.paths[0]!.path!.steps.map((s) => ({ poolIndex: s.poolIndex, layerIndex: s.layerIndex })),
      );
    } finally {
      await served.release();
    }

    // Bad input: typed errors at the edge.
    const bad = (p: Promise<unknown>) => errorOf(p).then((e) => e?.code);
    expect(
      await bad(client.proposePaths({ policyId, preference: { weights: [-1, 2] }, count: 1, greedy: false })),
    ).toBe(status.INVALID_ARGUMENT);
    expect(
      await bad(
        client.proposePaths({ policyId: 'nope', preference: { weights: [1, 0] }, count: 1, greedy: false }),
      ),
    ).toBe(status.NOT_FOUND);
    expect(await bad(client.createPolicy({ policyId: 'empty', spec: { ...spec, pool: [] } }))).toBe(
      status.INVALID_ARGUMENT,
    );
    expect(await bad(client.createPolicy({ policyId: 't0', spec: { ...spec, tMax: 0 } }))).toBe(
      status.INVALID_ARGUMENT,
    );
    const drain = async (iterations = 1) => {
      for await (const _ of client.train({ policyId, iterations })) void _;
    };
    expect(await bad(drain())).toBe(status.FAILED_PRECONDITION); // nothing rewarded since the last Train
    expect(await bad(drain(0))).toBe(status.INVALID_ARGUMENT); // iterations 0: no implicit default
    const nan = await client.proposePaths({
      policyId,
      preference: { weights: [1, 1] },
      count: 1,
      greedy: false,
    });
    expect(
      await bad(
        client.reportRewards({
          policyId,
          rewards: [{ episodeId: nan.paths[0]!.episodeId, scores: [], reward: NaN }],
        }),
      ),
    ).toBe(status.INVALID_ARGUMENT);
    client.close();

    // Restart: a new server over the same store and artifact folder serves the trained policy.
    await running!.stop('restart');
    running = undefined;
    const again = await start();
    const after = await again.client.proposePaths({
      policyId,
      preference: { weights: [0.5, 0.5] },
      count: 1,
      greedy: true,
    });
    expect(after.paths[0]!.path!.steps).toEqual(greedy.paths[0]!.path!.steps);
    expect((await again.client.exportPolicy({ policyId })).sha256).toBe(exported.sha256);
    const record = await store.policies.get(policyId);
    expect(record?.iterations).toBe(3);
  });
});
