// TensorMergeService over loopback gRPC (service-kit's real server, bearer-token auth on), with the
// in-memory store and a local artifact folder.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { common, merge } from '@hm3/proto';
import { createClient, createLogger, loadServiceConfig, type ClientOptions } from '@hm3/service-kit';
import { createInMemoryStore, type Store } from '@hm3/store';
import { Checkpoint } from '@hm3/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyModel, writeTokenFile } from './fixtures.test-helper.js';
import { startTensorMergeServer, type RunningTensorMerge } from './tensor-merge-server.js';

const TOKEN = 'tensor-merge-test-token-0123456789';

let dir: string;
let modelsRoot: string;
let artifactRoot: string;
let store: Store;
let running: RunningTensorMerge;
let options: ClientOptions;
let client: ReturnType<typeof newClient>;

function newClient(o: ClientOptions) {
  return createClient(merge.TensorMergeServiceService, o);
}

const scalar = (value: number): common.ParamValue => ({ value: { $case: 'scalar', value } });

function recipe(over: Partial<common.MergeRecipe> = {}): common.MergeRecipe {
  return common.MergeRecipe.fromPartial({
    method: 'task_arithmetic',
    base: { uri: 'base', modelId: '' },
    models: [
      { model: { uri: 'experts/a', modelId: '' }, parameters: { weight: scalar(0.5) } },
      { model: { uri: 'experts/b', modelId: '' }, parameters: { weight: scalar(0.7) } },
    ],
    outDtype: common.DType.BF16,
    seed: 7n,
    ...over,
  });
}

async function collect(stream: AsyncIterable<merge.MergeResponse>): Promise<merge.MergeResponse[]> {
  const out: merge.MergeResponse[] = [];
  for await (const m of stream) out.push(m);
  return out;
}

function codeOf(promise: Promise<unknown>): Promise<{ code?: number; details?: string } | undefined> {
  return promise.then(
    () => undefined,
    (e: { code?: number; details?: string }) => e,
  );
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hm3-tensor-merge-'));
  modelsRoot = path.join(dir, 'models');
  artifactRoot = path.join(dir, 'artifacts');
  await writeTinyModel(modelsRoot, 'base', 1);
  await writeTinyModel(modelsRoot, 'experts/a', 2);
  await writeTinyModel(modelsRoot, 'experts/b', 3);
  await writeTinyModel(dir, 'outside', 4);
  const tokenFile = path.join(dir, 'tokens');
  await writeTokenFile(tokenFile, TOKEN);
  store = createInMemoryStore();
  await store.start();
  const config = loadServiceConfig({
    env: { HM3_HOST: '127.0.0.1', HM3_PORT: '0', HM3_METRICS_PORT: 'off', HM3_TOKEN_FILE: tokenFile },
    argv: ['--shutdown-drain-delay-ms=0'],
  });
  running = await startTensorMergeServer({
    config,
    store,
    modelsRoot,
    artifactRoot,
    logger: createLogger({ level: 'silent', name: 'tensor-merge' }),
  });
  options = { address: `127.0.0.1:${running.port}`, token: TOKEN };
  client = newClient(options);
});

afterAll(async () => {
  await running?.stop('test over');
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('TensorMergeService over loopback gRPC', () => {
  it('refuses a call without the bearer token', async () => {
    const anonymous = newClient({ address: options.address, retry: false });
    const error = await codeOf(anonymous.listMethods({}));
    expect(error?.code).toBe(status.UNAUTHENTICATED);
  });

  it('registers models with a manifest of sha256s, and a second registration changes nothing', async () => {
    const first = await client.registerModel({ uri: 'base', modelId: 'base-v1' });
    const m = first.manifest!;
    expect(first.alreadyRegistered).toBe(false);
    expect(m.modelId).toBe('base-v1');
    expect(m.architecture).toBe('LlamaForCausalLM');
    expect(m.numLayers).toBe(2);
    expect(m.hiddenSize).toBe(16);
    expect(m.dtype).toBe(common.DType.BF16);
    expect(m.files.map((f) => f.path)).toContain('config.json');
    expect(m.files.filter((f) => f.path.endsWith('.safetensors')).length).toBeGreaterThan(1);
    for (const f of m.files) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
    const record = await store.models.get('base-v1');
    expect(record?.files.map((f) => f.sha256)).toEqual(m.files.map((f) => f.sha256));

    const again = await client.registerModel({ uri: 'base', modelId: 'base-v1' });
    expect(again.alreadyRegistered).toBe(true);
    expect(again.manifest?.files).toEqual(m.files);
    const derived = await client.registerModel({ uri: 'experts/a', modelId: '' });
    expect(derived.manifest?.modelId).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a model path outside the models root with INVALID_ARGUMENT', async () => {
    for (const uri of ['../outside', path.join(dir, 'outside')]) {
      const error = await codeOf(client.registerModel({ uri, modelId: '' }));
      expect(error?.code).toBe(status.INVALID_ARGUMENT);
      expect(error?.details).toContain('outside the models root');
    }
    const viaRecipe = await codeOf(
      collect(
        client.merge({ recipe: recipe({ base: { uri: '../outside', modelId: '' } }), device: 0, workers: 0 }),
      ),
    );
    expect(viaRecipe?.code).toBe(status.INVALID_ARGUMENT);
    expect(viaRecipe?.details).toContain('base');
  });

  it('validates a recipe (plan with the content id) and reports an invalid one as issues naming the field', async () => {
    const ok = await client.validate({ recipe: recipe() });
    expect(ok.valid).toBe(true);
    expect(ok.plan?.artifactId).toMatch(/^[0-9a-f]{64}$/);
    expect(ok.plan?.tensorCount).toBeGreaterThan(10);
    expect(ok.plan?.architecture).toBe('LlamaForCausalLM');

    const bad = recipe();
    bad.models[1]!.parameters = { weight: scalar(0.7), densty: scalar(0.5) };
    const result = await client.validate({ recipe: bad });
    expect(result.valid).toBe(false);
    expect(result.issues.map((i) => i.field)).toContain('models[1].parameters.densty');
  });

  it('merges a recipe: progress messages, then the result with the artifact id, as a readable checkpoint', async () => {
    const messages = await collect(client.merge({ recipe: recipe(), device: common.Device.CPU, workers: 0 }));
    const last = messages.at(-1)!;
    expect(last.event?.$case).toBe('result');
    const progress = messages.slice(0, -1);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((m) => m.event?.$case === 'progress')).toBe(true);
    const result = last.event!.value as merge.MergeResult;
    const planned = await client.validate({ recipe: recipe() });
    expect(result.artifactId).toBe(planned.plan?.artifactId);
    expect(result.uri).toBe(`artifact://${result.artifactId}`);
    expect(result.reused).toBe(false);
    const out = await Checkpoint.open(path.join(artifactRoot, result.artifactId));
    expect(out.has('model.layers.1.mlp.down_proj.weight')).toBe(true);
    expect(out.info('model.embed_tokens.weight').dtype).toBe('BF16');
    await out.close();
    expect(result.manifest?.files.map((f) => f.path)).toContain('config.json');
  });

  it('does the same merge once: a repeat returns at once, concurrent identical requests share one run', async () => {
    const r = recipe({ seed: 8n });
    const [one, two] = await Promise.all([
      collect(client.merge({ recipe: r, device: 0, workers: 0 })),
      collect(client.merge({ recipe: r, device: 0, workers: 0 })),
    ]);
    const a = one.at(-1)!.event!.value as merge.MergeResult;
    const b = two.at(-1)!.event!.value as merge.MergeResult;
    expect(a.artifactId).toBe(b.artifactId);
    expect([a.reused, b.reused].sort()).toEqual([false, true]);

    const again = await collect(client.merge({ recipe: r, device: 0, workers: 0 }));
    expect(again).toHaveLength(1);
    const c = again[0]!.event!.value as merge.MergeResult;
    expect(c.artifactId).toBe(a.artifactId);
    expect(c.reused).toBe(true);
    const entries = (await readdir(artifactRoot)).filter((e) => !e.startsWith('.'));
    expect(entries.filter((e) => e === a.artifactId)).toHaveLength(1);
  });

  it('derives the content id from the recipe and the content of the sources, not from how a source is named', async () => {
    const ids = await Promise.all(
      [
        recipe(),
        recipe({
          models: [
            recipe().models[0]!,
            { model: { uri: 'experts/a', modelId: '' }, parameters: { weight: scalar(0.7) } },
          ],
        }),
      ].map(async (r) => (await client.validate({ recipe: r })).plan?.artifactId),
    );
    expect(ids[0]).not.toBe(ids[1]);
    // The same source by registry id gives the same content id as by path.
    const byId = recipe({ base: { uri: '', modelId: 'base-v1' } });
    expect((await client.validate({ recipe: byId })).plan?.artifactId).toBe(ids[0]);
  });

  it('refuses an invalid recipe on Merge with INVALID_ARGUMENT naming the field', async () => {
    const bad = recipe();
    bad.models[0]!.parameters = { weight: scalar(0.5), densty: scalar(0.5) };
    const error = await codeOf(collect(client.merge({ recipe: bad, device: 0, workers: 0 })));
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toContain('models[0].parameters.densty');
    const missing = await codeOf(collect(client.merge({ device: 0, workers: 0 })));
    expect(missing?.code).toBe(status.INVALID_ARGUMENT);
    expect(missing?.details).toContain('recipe');
  });

  it('fails device cuda with FAILED_PRECONDITION naming the missing provider libraries', async () => {
    const error = await codeOf(
      collect(client.merge({ recipe: recipe(), device: common.Device.CUDA, workers: 0 })),
    );
    expect(error?.code).toBe(status.FAILED_PRECONDITION);
    expect(error?.details).toContain('libonnxruntime_providers_cuda.so');
  });

  it('lists the methods with their parameter schemas', async () => {
    const { methods } = await client.listMethods({});
    const names = methods.map((m) => m.name);
    expect(names).toEqual([...names].sort());
    const ties = methods.find((m) => m.name === 'ties');
    expect(ties?.requiresBase).toBe(true);
    const density = ties?.parameters.find((p) => p.name === 'density');
    expect(density?.type).toBe(merge.ParameterType.NUMBER);
    expect(density?.scope).toBe(merge.ParameterScope.MODEL);
  });
});
