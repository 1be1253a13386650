import { describe, expect, it } from 'vitest';
import { onnx } from '@hm3/proto';
import { LayerPool } from './layer-pool.js';
import { PathPolicy } from './path-policy.js';
import { exportPolicyOnnx, OnnxPathPolicy } from './policy-onnx.js';
import { Rng } from './random.js';
import { syntheticPool } from './synthetic.js';

const TOL = 1e-5;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/** Random inputs of S_t for a batch: hidden in (-1, 1) (a GRU state's range), any t, any last action. */
function randomStates(policy: PathPolicy, B: number, rng: Rng) {
  const H = policy.settings.gruHidden;
  const K = policy.settings.objectives;
  const hidden = Float64Array.from({ length: B * H }, () => 2 * rng.uniform() - 1);
  const positions = Array.from({ length: B }, (_, b) => (b === 0 ? 0 : rng.int(policy.tMax + 1)));
  const lastActions = positions.map((t) => (t === 0 ? policy.pool.size : rng.int(policy.pool.size)));
  const preferences = Float64Array.from(Array.from({ length: B }, () => rng.dirichlet(K)).flat());
  return { hidden, positions, lastActions, preferences };
}

async function roundTrip(policy: PathPolicy, seed: number): Promise<void> {
  const files = exportPolicyOnnx(policy);
  const served = await OnnxPathPolicy.create(files);
  try {
    const rng = new Rng(seed);
    const B = 17;
    const x = randomStates(policy, B, rng);
    const ts = policy.heads(x.hidden, x.positions, x.lastActions, x.preferences);
    const input = {
      hidden: Float32Array.from(x.hidden),
      positions: x.positions,
      lastActions: x.lastActions,
      preferences: Float32Array.from(x.preferences),
    };
    const actor = await served.actorForward(input);
    expect(maxAbsDiff(actor.mean, ts.mean)).toBeLessThan(TOL);
    expect(maxAbsDiff(actor.logStd, policy.logStd.data)).toBeLessThan(TOL);
    const critic = await served.criticForward(input);
    expect(maxAbsDiff(critic, ts.pathValue)).toBeLessThan(TOL);
    const actions = Array.from({ length: B }, () => rng.int(policy.pool.size));
    const next = await served.encode(input.hidden, actions);
    expect(maxAbsDiff(next, policy.encodeStep(x.hidden, actions))).toBeLessThan(TOL);
    const w = rng.dirichlet(policy.settings.objectives);
    expect(await served.greedyPath(w)).toEqual(policy.propose([w], 'greedy')[0]!.path);
  } finally {
    await served.release();
  }
}

describe('ONNX export of the actor, the critic and the state encoder', () => {
  it('writes three valid ONNX models (opset 17) and the pool and settings', () => {
    const policy = new PathPolicy(syntheticPool(3, 5, new Rng(1)), { tMax: 4, gruHidden: 16, headHidden: 8 });
    const files = exportPolicyOnnx(policy);
    for (const bytes of [files.encoder, files.actor, files.critic]) {
      const m = onnx.ModelProto.decode(bytes);
      expect(m.opsetImport[0]?.version).toBe(17n);
      expect(m.graph?.node.length).toBeGreaterThan(3);
    }
    const meta = JSON.parse(files.policyJson) as { pool: unknown[]; settings: { tMax: number } };
    expect(meta.pool).toHaveLength(3);
    expect(meta.settings.tMax).toBe(4);
  });

  it('TS forward and onnxruntime forward agree within 1e-5 (one policy per preference)', async () => {
    const policy = new PathPolicy(syntheticPool(4, 8, new Rng(2)), { tMax: 8, seed: 3 });
    // Move the weights off their initial values so that the biases and the embeddings matter.
    const rng = new Rng(5);
    for (const t of policy.params.list) for (let i = 0; i < t.size; i++) t.data[i]! += 0.2 * rng.normal();
    await roundTrip(policy, 11);
  });

  for (const [preferenceCritic, preferenceActor] of [
    [false, false],
    [true, false],
    [true, true],
  ] as const) {
    it(`TS forward and onnxruntime forward agree within 1e-5 (amortised, 3 objectives, no features, preferenceCritic ${preferenceCritic}, preferenceActor ${preferenceActor})`, async () => {
      const pool = new LayerPool([
        { id: 'a', layers: 4 },
        { id: 'b', layers: 6 },
        { id: 'merged', layers: 4 },
      ]);
      const policy = new PathPolicy(pool, {
        tMax: 5,
        objectives: 3,
        amortised: true,
        preferenceCritic,
        preferenceActor,
        seed: 4,
        mPrime: 3,
      });
      const rng = new Rng(6);
      for (const t of policy.params.list) for (let i = 0; i < t.size; i++) t.data[i]! += 0.2 * rng.normal();
      await roundTrip(policy, 12);
    });
  }

  it('refuses a policy.json of another format with a typed error', async () => {
    const policy = new PathPolicy(syntheticPool(2, 2, new Rng(1)), { tMax: 2, gruHidden: 4, headHidden: 4 });
    const files = exportPolicyOnnx(policy);
    await expect(
      OnnxPathPolicy.create({ ...files, policyJson: JSON.stringify({ format: 'other' }) }),
    ).rejects.toMatchObject({ name: 'InvalidArgumentError' });
  });
});
