import { describe, expect, it } from 'vitest';
import { common, events, TOPIC_BY_PAYLOAD } from './index.js';
import type { PayloadCase } from './index.js';

const { Envelope } = events;
type Payload = NonNullable<events.Envelope['payload']>;

const base: common.ModelRef = { modelId: 'llama-base', uri: 'models/llama-base' };
const math: common.ModelRef = { modelId: 'llama-math', uri: 'models/llama-math' };
const code: common.ModelRef = { modelId: 'llama-code', uri: 'models/llama-code' };

// A recipe that uses every ParamValue form, a bigint seed above 2^53 and both dtype fields.
const recipe = common.MergeRecipe.fromPartial({
  method: 'dare_ties',
  base,
  models: [
    { model: math, parameters: { weight: { value: { $case: 'scalar', value: 0.7 } } } },
    {
      model: code,
      parameters: {
        weight: { value: { $case: 'gradient', value: { values: [0, 0.5, 1] } } },
        density: {
          value: {
            $case: 'filtered',
            value: {
              entries: [
                { filter: 'self_attn', value: { $case: 'scalar', value: 0.3 } },
                { filter: '', value: { $case: 'gradient', value: { values: [0.2, 0.8] } } },
              ],
            },
          },
        },
      },
    },
  ],
  dtype: common.DType.F32,
  outDtype: common.DType.BF16,
  tokenizerSource: { kind: common.TokenizerSourceKind.MODEL, model: math },
  seed: 2n ** 60n + 7n,
  parameters: {
    normalize: { value: { $case: 'flag', value: true } },
    rescale: { value: { $case: 'choice', value: 'l1' } },
  },
});

// A path with a repeated layer, an affine map (float32-exact values) and head_source 0, which must
// survive as "set to 0", not "unset".
const path = common.InferencePath.fromPartial({
  pool: [math, code, { modelId: '', uri: 'artifact://merged-1' }],
  steps: [
    { poolIndex: 2, layerIndex: 0 },
    { poolIndex: 0, layerIndex: 1, affine: { scale: [1.5, -0.25], shift: [0.125, 0] } },
    { poolIndex: 0, layerIndex: 1 },
  ],
  headSource: 0,
});

const candidate = common.Candidate.fromPartial({
  candidateId: 'c-1',
  round: 3,
  preference: { weights: [0.25, 0.75] },
  recipe,
  mergedArtifactId: 'merged-1',
  path,
  scores: [
    { objective: 'math', metric: 'accuracy', split: common.Split.SEARCH, value: 0.5, exampleCount: 40 },
  ],
});

const objectives = [
  common.Objective.fromPartial({
    name: 'math',
    task: 'exact-match-qa',
    dataset: { datasetId: 'gsm-mini', uri: 'datasets/gsm-mini.jsonl', sha256: 'ab'.repeat(32) },
    metric: 'accuracy',
    searchFraction: 0.7,
    splitSeed: 11n,
    maxExamples: 64,
  }),
];

const failure = { code: 'INVALID_ARGUMENT', message: 'models[1]: hidden size 64 != 128', retryable: false };

// One payload of every kind; `satisfies` makes a new payload kind a compile error until it is added here.
const payloads = {
  mergeRequested: { artifactId: 'merged-1', recipe, device: common.Device.CUDA },
  mergeCompleted: {
    artifactId: 'merged-1',
    uri: 'artifact://merged-1',
    reused: true,
    bytes: 2n ** 40n,
    elapsedSeconds: 1.5,
  },
  mergeFailed: { artifactId: 'merged-1', failure },
  evalRequested: {
    target: { $case: 'path', value: path },
    objectives,
    split: common.Split.HELDOUT,
    deadline: new Date('2026-11-28T10:00:00.123Z'),
  },
  evalCompleted: { scores: candidate.scores, elapsedSeconds: 12.25 },
  evalFailed: { failure: { ...failure, code: 'UNAVAILABLE', retryable: true } },
  roundCompleted: { round: 3, candidatesScored: 16, frontSize: 4, hypervolume: 0.81, evaluationsDone: 64 },
  frontUpdated: {
    round: 3,
    split: common.Split.SEARCH,
    members: [candidate],
    hypervolume: 0.81,
    final: false,
  },
  deadLettered: {
    sourceTopic: 'hm3.eval.requested',
    partition: 2,
    offset: '9007199254740993',
    consumerGroup: 'evaluator',
    reason: 'undecodable envelope',
    key: Buffer.from('c-1'),
    value: Buffer.from([0xff, 0x00, 0x13]),
  },
} satisfies { [K in PayloadCase]: Extract<Payload, { $case: K }>['value'] };

function envelopeWith(payload: Payload): events.Envelope {
  return Envelope.fromPartial({
    eventId: `e-${payload.$case}`,
    schemaVersion: 1,
    type: TOPIC_BY_PAYLOAD[payload.$case],
    occurredAt: new Date('2026-11-28T09:30:00.456Z'),
    traceId: 't-1',
    searchId: 's-1',
    candidateId: 'c-1',
    causationId: 'e-0',
    producer: 'test',
    payload,
  });
}

const cases = Object.entries(payloads).map(([$case, value]) => ({ $case, value }) as Payload);

describe('Envelope', () => {
  it('has a fixture for every payload kind', () => {
    expect(cases.map((c) => c.$case).sort()).toEqual(Object.keys(TOPIC_BY_PAYLOAD).sort());
  });

  it.each(cases.map((payload) => [payload.$case, payload] as const))(
    'round-trips a %s payload through binary encode/decode',
    (_name, payload) => {
      const envelope = envelopeWith(payload);
      const bytes = Envelope.encode(envelope).finish();
      const decoded = Envelope.decode(bytes);
      expect(decoded).toEqual(envelope);
      expect(decoded.payload?.$case).toBe(payload.$case);
      // Deterministic: the decoded message encodes to the same bytes.
      expect(Buffer.from(Envelope.encode(decoded).finish())).toEqual(Buffer.from(bytes));
    },
  );

  it.each(cases.map((payload) => [payload.$case, payload] as const))(
    'round-trips a %s payload through proto3 JSON',
    (_name, payload) => {
      const envelope = envelopeWith(payload);
      const json = JSON.parse(JSON.stringify(Envelope.toJSON(envelope))) as unknown;
      expect(Envelope.fromJSON(json)).toEqual(envelope);
    },
  );

  it('keeps 64-bit values exact and an explicit head_source of 0', () => {
    const decoded = Envelope.decode(
      Envelope.encode(envelopeWith({ $case: 'mergeRequested', value: payloads.mergeRequested })).finish(),
    );
    const value = decoded.payload?.$case === 'mergeRequested' ? decoded.payload.value : undefined;
    expect(value?.recipe?.seed).toBe(2n ** 60n + 7n);
    const evalDecoded = Envelope.decode(
      Envelope.encode(envelopeWith({ $case: 'evalRequested', value: payloads.evalRequested })).finish(),
    );
    const target =
      evalDecoded.payload?.$case === 'evalRequested' ? evalDecoded.payload.value.target : undefined;
    expect(target?.$case === 'path' ? target.value.headSource : 'missing').toBe(0);
    const unset = common.InferencePath.decode(
      common.InferencePath.encode({ ...path, headSource: undefined }).finish(),
    );
    expect(unset.headSource).toBeUndefined();
  });

  it('decodes an envelope from a newer schema, skipping fields it does not know', () => {
    const envelope = envelopeWith({ $case: 'evalFailed', value: payloads.evalFailed });
    const bytes = Buffer.from(Envelope.encode(envelope).finish());
    // Field 10 (kept free for future envelope metadata), wire type 2 (length-delimited), 3 bytes.
    const withUnknown = Buffer.concat([bytes, Buffer.from([(10 << 3) | 2, 3, 0x61, 0x62, 0x63])]);
    expect(Envelope.decode(withUnknown)).toEqual(envelope);
  });
});
