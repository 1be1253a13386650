/**
 * The PolicyService core, transport-free: create a path policy, propose paths for a preference,
 * take rewards for proposed episodes, train (PPO) with streamed progress, export the weights.
 * Policies persist through the store's `policies` repository (metadata) and the ArtifactStore
 * (safetensors weights, content-addressed), so they survive a restart. Proposed episodes waiting for
 * their rewards live in memory only: a restart forgets them (their rewards are then ignored).
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError, Hm3Error, InvalidArgumentError, NotFoundError } from '@hm3/errors';
import {
  checkReward,
  checkScores,
  episodeReward,
  exportPolicyOnnx,
  LayerPool,
  loadPolicy,
  PathPolicy,
  savePolicy,
} from '@hm3/rl';
import type { Episode, PathStep, PolicySettingsInput, PoolModel } from '@hm3/rl';
import type { ArtifactStore, PoliciesRepository } from '@hm3/store';

const WEIGHTS_FILE = 'policy.safetensors';

/** What ExportPolicy writes: the ONNX networks (actor.onnx is the one the response's sha256 names). */
export interface ExportedPolicy {
  readonly artifactId: string;
  /** Hex sha256 of actor.onnx. */
  readonly sha256: string;
  /** File name -> hex sha256, every file of the artifact. */
  readonly files: Readonly<Record<string, string>>;
}

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

export interface PolicySpec {
  readonly pool: readonly PoolModel[];
  readonly settings: PolicySettingsInput;
  /** The pool as the caller names it (wire ModelRefs), kept with the policy and given back with paths. */
  readonly poolRefs?: readonly unknown[];
}

export interface ProposedPath {
  readonly episodeId: string;
  readonly path: readonly PathStep[];
}

/** A reward for a proposed episode: `reward` as is, or objective `scores` scalarised with the episode's preference. */
export interface EpisodeReward {
  readonly episodeId: string;
  readonly reward?: number;
  readonly scores?: readonly number[];
}

export interface TrainProgressEvent {
  readonly iteration: number;
  readonly episodes: number;
  readonly meanReward: number;
  readonly policyLoss: number;
  readonly valueLoss: number;
  readonly entropy: number;
}

interface Live {
  policy: PathPolicy;
  iterations: number;
  pending: Map<string, Episode>;
  /** Rewarded episodes not yet trained on; `scores` where the report gave them. */
  rewarded: { episode: Episode; reward: number; scores?: readonly number[] }[];
}

export interface PolicyServiceDeps {
  readonly policies: PoliciesRepository;
  readonly artifacts: ArtifactStore;
  readonly now?: () => Date;
}

export class PolicyServiceCore {
  private readonly live = new Map<string, Live>();
  private readonly now: () => Date;

  constructor(private readonly deps: PolicyServiceDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async createPolicy(policyId: string | undefined, spec: PolicySpec): Promise<string> {
    const id = policyId === undefined || policyId === '' ? randomUUID() : policyId;
    if (!/^[A-Za-z0-9._-]{1,100}$/.test(id))
      throw new InvalidArgumentError(`policy id ${JSON.stringify(id)} is not allowed`, {
        field: 'policy_id',
      });
    const policy = new PathPolicy(new LayerPool(spec.pool), spec.settings);
    // The spec as resolved (defaults filled in): the same request twice is the same policy.
    const specHash = sha256(
      JSON.stringify({ settings: policy.settings, pool: spec.pool, poolRefs: spec.poolRefs ?? [] }),
    );
    const existing = await this.deps.policies.get(id);
    if (existing !== undefined) {
      if (existing.settings['specHash'] === specHash) return id;
      throw new Hm3Error(`policy ${id} already exists with another spec`, {
        status: 'ALREADY_EXISTS',
        details: { field: 'policy_id', policyId: id },
      });
    }
    const live: Live = { policy, iterations: 0, pending: new Map(), rewarded: [] };
    const weightsArtifactId = await this.saveWeights(policy);
    const at = this.now();
    await this.deps.policies.insert({
      id,
      weightsArtifactId,
      settings: { ...policy.settings, pool: spec.pool, poolRefs: spec.poolRefs ?? [], specHash },
      iterations: 0,
      createdAt: at,
      updatedAt: at,
    });
    this.live.set(id, live);
    return id;
  }

  async proposePaths(
    policyId: string,
    preference: readonly number[],
    count: number,
    greedy = false,
  ): Promise<ProposedPath[]> {
    if (!Number.isSafeInteger(count) || count <= 0 || count > 4096)
      throw new InvalidArgumentError(`count must be in 1..4096, got ${count}`, { field: 'count' });
    const live = await this.get(policyId);
    const episodes = live.policy.propose(
      Array.from({ length: count }, () => preference),
      greedy ? 'greedy' : 'explore',
    );
    return episodes.map((e) => {
      const episodeId = randomUUID();
      if (!greedy) live.pending.set(episodeId, e);
      return { episodeId, path: e.path };
    });
  }

  /** Accepts rewards of pending episodes (once each); unknown or repeated ids are returned as ignored. */
  async reportRewards(
    policyId: string,
    rewards: readonly EpisodeReward[],
  ): Promise<{ accepted: number; ignored: string[] }> {
    const live = await this.get(policyId);
    rewards.forEach((r, i) => {
      if (r.scores !== undefined && r.scores.length > 0)
        checkScores(r.scores, live.policy.settings.objectives, `rewards[${i}].scores`);
      else checkReward(r.reward ?? Number.NaN, `rewards[${i}].reward`);
    });
    const ignored: string[] = [];
    let accepted = 0;
    for (const r of rewards) {
      const episode = live.pending.get(r.episodeId);
      if (episode === undefined) {
        ignored.push(r.episodeId);
        continue;
      }
      live.pending.delete(r.episodeId);
      const reward =
        r.scores !== undefined && r.scores.length > 0
          ? episodeReward(r.scores, episode.preference, episode.path.length, live.policy.settings.reward)
          : (r.reward as number);
      live.rewarded.push(
        r.scores !== undefined && r.scores.length > 0
          ? { episode, reward, scores: r.scores }
          : { episode, reward },
      );
      accepted++;
    }
    return { accepted, ignored };
  }

  /**
   * PPO updates over the rewarded episodes (each one update of epochs x minibatches over the same
   * batch), one progress event per iteration; then persists the weights. iterations < 1 (0 is the
   * wire's unset) is InvalidArgumentError.
   */
  async *train(policyId: string, iterations: number): AsyncGenerator<TrainProgressEvent> {
    if (!Number.isSafeInteger(iterations) || iterations <= 0)
      throw new InvalidArgumentError(`iterations must be a positive integer, got ${iterations}`, {
        field: 'iterations',
      });
    const live = await this.get(policyId);
    if (live.rewarded.length === 0)
      throw new FailedPreconditionError(
        'no rewarded episodes to train on: propose paths and report their rewards first',
        { policyId },
      );
    const batch = live.rewarded.splice(0);
    const meanReward = batch.reduce((s, b) => s + b.reward, 0) / batch.length;
    // the per-objective value loss (amortised policies) needs every episode's scores
    const scores = batch.every((b) => b.scores !== undefined)
      ? batch.map((b) => b.scores as readonly number[])
      : undefined;
    for (let i = 1; i <= iterations; i++) {
      const stats = live.policy.update(
        batch.map((b) => b.episode),
        batch.map((b) => b.reward),
        scores,
      );
      live.iterations++;
      yield {
        iteration: live.iterations,
        episodes: batch.length,
        meanReward,
        policyLoss: stats.policyLoss,
        valueLoss: stats.valueLoss,
        entropy: stats.entropy,
      };
    }
    await this.persist(policyId, live);
  }

  /** The pool references given at creation. */
  async poolRefs(policyId: string): Promise<unknown[]> {
    const record = await this.deps.policies.get(policyId);
    if (record === undefined)
      throw new NotFoundError(`policy ${policyId} not found`, { field: 'policy_id', policyId });
    const refs = record.settings['poolRefs'];
    return Array.isArray(refs) ? refs : [];
  }

  /** The weights as safetensors bytes. */
  async exportPolicy(policyId: string): Promise<Uint8Array> {
    return savePolicy((await this.get(policyId)).policy);
  }

  /**
   * Writes the policy as ONNX (encoder.onnx, actor.onnx, critic.onnx, policy.json; see @hm3/rl's
   * OnnxPathPolicy) plus its safetensors weights into one content-addressed artifact.
   */
  async exportPolicyArtifact(policyId: string): Promise<ExportedPolicy> {
    const policy = (await this.get(policyId)).policy;
    const onnx = exportPolicyOnnx(policy);
    const contents: Record<string, Uint8Array | string> = {
      'encoder.onnx': onnx.encoder,
      'actor.onnx': onnx.actor,
      'critic.onnx': onnx.critic,
      'policy.json': onnx.policyJson,
      [WEIGHTS_FILE]: savePolicy(policy),
    };
    const files: Record<string, string> = {};
    for (const [name, bytes] of Object.entries(contents)) files[name] = sha256(bytes);
    const artifactId = `policy-onnx-${sha256(JSON.stringify(files))}`;
    await this.deps.artifacts.write(artifactId, async (dir) => {
      for (const [name, bytes] of Object.entries(contents)) await writeFile(join(dir, name), bytes);
    });
    return { artifactId, sha256: files['actor.onnx'] as string, files };
  }

  private async persist(policyId: string, live: Live): Promise<void> {
    const record = await this.deps.policies.get(policyId);
    if (record === undefined) throw new NotFoundError(`policy ${policyId} not found`, { policyId });
    const weightsArtifactId = await this.saveWeights(live.policy);
    await this.deps.policies.upsert({
      ...record,
      weightsArtifactId,
      iterations: live.iterations,
      updatedAt: this.now(),
    });
  }

  private async saveWeights(policy: PathPolicy): Promise<string> {
    const bytes = savePolicy(policy);
    const id = `policy-${sha256(bytes)}`;
    await this.deps.artifacts.write(id, async (dir) => {
      await writeFile(join(dir, WEIGHTS_FILE), bytes);
    });
    return id;
  }

  private async get(policyId: string): Promise<Live> {
    const cached = this.live.get(policyId);
    if (cached !== undefined) return cached;
    const record = await this.deps.policies.get(policyId);
    if (record === undefined)
      throw new NotFoundError(`policy ${policyId} not found`, { field: 'policy_id', policyId });
    if (record.weightsArtifactId === undefined)
      throw new FailedPreconditionError(`policy ${policyId} has no weights`, { policyId });
    const lease = await this.deps.artifacts.open(record.weightsArtifactId);
    let policy: PathPolicy;
    try {
      policy = loadPolicy(
        new Uint8Array(await readFile(join(lease.path, WEIGHTS_FILE))),
        `${record.weightsArtifactId}/${WEIGHTS_FILE}`,
      );
    } finally {
      lease.release();
    }
    const live: Live = { policy, iterations: record.iterations, pending: new Map(), rewarded: [] };
    this.live.set(policyId, live);
    return live;
  }
}
