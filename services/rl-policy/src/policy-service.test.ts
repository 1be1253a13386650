import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '@hm3/errors';
import { createInMemoryStore, LocalArtifactStore } from '@hm3/store';
import type { InMemoryStore } from '@hm3/store';
import { PolicyServiceCore } from './policy-service.js';
import type { PolicySpec, TrainProgressEvent } from './policy-service.js';

const spec: PolicySpec = {
  pool: [0, 1, 2].map((m) => ({ id: `model-${m}`, layers: 4, hiddenSize: 32 })),
  settings: { tMax: 4, objectives: 2, amortised: true, gruHidden: 16, headHidden: 16, seed: 3 },
};

let dir: string;
let store: InMemoryStore;
let artifacts: LocalArtifactStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hm3-rl-policy-'));
  store = createInMemoryStore();
  await store.start();
  artifacts = new LocalArtifactStore(dir);
});

afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('PolicyServiceCore', () => {
  it('creates, proposes, takes rewards, trains with progress, and the policy survives a restart', async () => {
    const core = new PolicyServiceCore({ policies: store.policies, artifacts });
    const id = await core.createPolicy('p1', spec);
    expect(id).toBe('p1');
    const proposed = await core.proposePaths(id, [0.3, 0.7], 6);
    expect(proposed).toHaveLength(6);
    for (const p of proposed) expect(p.path).toHaveLength(4);
    const report = await core.reportRewards(id, [
      ...proposed.map((p, i) => ({ episodeId: p.episodeId, reward: i / 6 })),
      { episodeId: 'unknown', reward: 1 },
    ]);
    expect(report).toEqual({ accepted: 6, ignored: ['unknown'] });
    expect(
      (await core.reportRewards(id, [{ episodeId: proposed[0]!.episodeId, reward: 1 }])).ignored,
    ).toHaveLength(1);
    const events: TrainProgressEvent[] = [];
    for await (const e of core.train(id, 2)) events.push(e);
    expect(events.map((e) => e.iteration)).toEqual([1, 2]);
    expect(events[0]!.episodes).toBe(6);
    expect(events.every((e) => Number.isFinite(e.valueLoss))).toBe(true);

    const record = await store.policies.get(id);
    expect(record?.iterations).toBe(2);
    expect(await artifacts.has(record!.weightsArtifactId!)).toBe(true);

    // A new core over the same store and artifact folder: the trained policy comes back.
    const greedyBefore = await core.proposePaths(id, [0.5, 0.5], 1, true);
    const exported = await core.exportPolicy(id);
    const restarted = new PolicyServiceCore({
      policies: store.policies,
      artifacts: new LocalArtifactStore(dir),
    });
    expect(Array.from(await restarted.exportPolicy(id))).toEqual(Array.from(exported));
    expect((await restarted.proposePaths(id, [0.5, 0.5], 1, true))[0]!.path).toEqual(greedyBefore[0]!.path);
  });

  it("learns each objective's value from reported scores (an amortised policy's objectiveValueCoef)", async () => {
    // Two policies of the same spec and seed propose the same episodes; one is told the scores, the
    // other only the reward those scores make: the same reward, but the first also fits u_k.
    const trained: Uint8Array[] = [];
    for (const [name, withScores] of [
      ['scores', true],
      ['reward-only', false],
      ['reward-only-again', false],
    ] as const) {
      const core = new PolicyServiceCore({ policies: store.policies, artifacts });
      const id = await core.createPolicy(name, spec);
      const proposed = await core.proposePaths(id, [0.3, 0.7], 4);
      await core.reportRewards(
        id,
        proposed.map((p, i) => {
          const scores = [i / 4, 1 - i / 4];
          const reward = 0.3 * scores[0]! + 0.7 * scores[1]! - 0.01 * 4;
          return withScores ? { episodeId: p.episodeId, scores } : { episodeId: p.episodeId, reward };
        }),
      );
      for await (const e of core.train(id, 1)) void e;
      trained.push(await core.exportPolicy(id));
    }
    expect(Array.from(trained[2]!)).toEqual(Array.from(trained[1]!));
    expect(Array.from(trained[0]!)).not.toEqual(Array.from(trained[1]!));
  });

  it('maps bad input to typed errors', async () => {
    const core = new PolicyServiceCore({ policies: store.policies, artifacts });
    await expect(core.createPolicy('empty', { pool: [], settings: {} })).rejects.toThrow(
      InvalidArgumentError,
    );
    await expect(core.createPolicy('t0', { pool: spec.pool, settings: { tMax: 0 } })).rejects.toThrow(/tMax/);
    await expect(core.proposePaths('nope', [1], 1)).rejects.toThrow(NotFoundError);
    const id = await core.createPolicy('p2', spec);
    expect(await core.createPolicy('p2', spec)).toBe(id); // the same spec again: the same policy
    await expect(
      core.createPolicy('p2', { ...spec, settings: { ...spec.settings, seed: 4 } }),
    ).rejects.toMatchObject({ status: 'ALREADY_EXISTS' });
    await expect(core.proposePaths(id, [-0.5, 1.5], 2)).rejects.toThrow(InvalidArgumentError);
    await expect(core.proposePaths(id, [0.5, 0.5], 0)).rejects.toThrow(/count/);
    const [p] = await core.proposePaths(id, [0.5, 0.5], 1);
    await expect(core.reportRewards(id, [{ episodeId: p!.episodeId, reward: Number.NaN }])).rejects.toThrow(
      InvalidArgumentError,
    );
    const drain = async (iterations: number) => {
      for await (const _ of core.train(id, iterations)) void _;
    };
    await expect(drain(1)).rejects.toThrow(FailedPreconditionError);
    // 0 iterations (the wire's unset) has no implicit default.
    await expect(drain(0)).rejects.toThrow(InvalidArgumentError);
    await expect(drain(0)).rejects.toMatchObject({ details: { field: 'iterations' } });
  });
});
