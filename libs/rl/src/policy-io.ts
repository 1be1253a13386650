/**
 * Save / load a path policy as safetensors: every parameter as F64 under its name, the settings and
 * the pool in the header's __metadata__. The optimizer state is not saved (a loaded policy restarts Adam).
 */
import { InvalidArgumentError } from '@hm3/errors';
import { encodeSafetensorsHeader, parseSafetensorsHeader } from '@hm3/tensor';
import { LayerPool } from './layer-pool.js';
import type { PoolModel } from './layer-pool.js';
import { PathPolicy } from './path-policy.js';
import type { PolicySettingsInput } from './settings.js';

const FORMAT = 'hm3.rl.path-policy/1';

export function savePolicy(policy: PathPolicy): Uint8Array {
  const names = [...policy.params.byName.keys()];
  const tensors = names.map((name) => {
    const t = policy.params.byName.get(name);
    if (t === undefined) throw new InvalidArgumentError(`missing parameter ${name}`, { field: name });
    return { name, dtype: 'F64' as const, shape: [t.rows, t.cols] };
  });
  const header = encodeSafetensorsHeader(tensors, {
    format: FORMAT,
    settings: JSON.stringify(policy.settings),
    episodesSeen: String(policy.episodesSeen),
    pool: JSON.stringify(policy.pool.models),
  });
  let bytes = header.byteLength;
  for (const t of policy.params.list) bytes += t.size * 8;
  const out = new Uint8Array(bytes);
  out.set(header, 0);
  let off = header.byteLength;
  for (const t of policy.params.list) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), off);
    off += t.data.byteLength;
  }
  return out;
}

export function loadPolicy(bytes: Uint8Array, name = 'policy.safetensors'): PathPolicy {
  if (bytes.byteLength < 8)
    throw new InvalidArgumentError(`${name}: too short for safetensors`, { file: name });
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.byteLength)
    throw new InvalidArgumentError(`${name}: header length ${n} past the end`, { file: name });
  const header = parseSafetensorsHeader(name, bytes.subarray(8, 8 + n), bytes.byteLength);
  if (header.metadata['format'] !== FORMAT)
    throw new InvalidArgumentError(
      `${name}: not a path policy (format ${String(header.metadata['format'])})`,
      { file: name },
    );
  let settings: PolicySettingsInput;
  let models: PoolModel[];
  try {
    settings = JSON.parse(header.metadata['settings'] ?? '') as PolicySettingsInput;
    models = JSON.parse(header.metadata['pool'] ?? '') as PoolModel[];
  } catch (error) {
    throw new InvalidArgumentError(`${name}: settings or pool metadata is not JSON`, { file: name }, error);
  }
  // Settings saved before preferenceActor / epsilonScope / followTarget / objectiveValueCoef existed
  // meant them off, whatever today's amortised defaults say (the actor's last layer has one mean's
  // outputs).
  const policy = new PathPolicy(new LayerPool(models), {
    preferenceActor: false,
    epsilonScope: 'candidates',
    followTarget: 'preference',
    objectiveValueCoef: 0,
    ...settings,
  });
  const seen = Number(header.metadata['episodesSeen'] ?? 0);
  policy.episodesSeen = Number.isSafeInteger(seen) && seen >= 0 ? seen : 0;
  const loaded = new Set<string>();
  for (const info of header.tensors) {
    const t = policy.params.byName.get(info.name);
    if (t === undefined)
      throw new InvalidArgumentError(`${name}: unexpected tensor ${info.name}`, {
        file: name,
        tensor: info.name,
      });
    if (
      info.dtype !== 'F64' ||
      info.shape.length !== 2 ||
      info.shape[0] !== t.rows ||
      info.shape[1] !== t.cols
    ) {
      throw new InvalidArgumentError(
        `${name}: tensor ${info.name} is ${info.dtype}${JSON.stringify(info.shape)}, expected F64[${t.rows},${t.cols}]`,
        { file: name, tensor: info.name },
      );
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset + info.offset, info.byteLength);
    for (let i = 0; i < t.size; i++) t.data[i] = view.getFloat64(i * 8, true);
    loaded.add(info.name);
  }
  for (const key of policy.params.byName.keys()) {
    if (!loaded.has(key))
      throw new InvalidArgumentError(`${name}: tensor ${key} is missing`, { file: name, tensor: key });
  }
  return policy;
}
