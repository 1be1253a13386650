// The validator is only worth something if it fails: each case copies k8s/ into a temp folder,
// plants one mistake, and expects validation to fail naming the resource and the field.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { K8S_DIR } from './paths.js';
import { validateOverlays } from './validate.js';
import { ensureValidatorBinary } from './validator-binary.js';

let binary: string;
const temps: string[] = [];
beforeAll(() => {
  binary = ensureValidatorBinary();
});
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** A copy of k8s/ with `from` replaced by `to` (once) in `file`; validates `overlay` of the copy. */
function plant(file: string, from: string, to: string, overlay = 'dev') {
  const root = mkdtempSync(join(tmpdir(), 'hm3-k8s-typo-'));
  temps.push(root);
  const k8s = join(root, 'k8s');
  cpSync(K8S_DIR, k8s, { recursive: true });
  const path = join(k8s, file);
  const text = readFileSync(path, 'utf8');
  expect(text, `${file} no longer contains ${JSON.stringify(from)}`).toContain(from);
  writeFileSync(path, text.replace(from, to));
  return validateOverlays({ binary, overlays: [join(k8s, 'overlays', overlay)], crdsDir: join(k8s, 'crds') });
}

describe('a planted typo fails validation, naming the resource and the field', () => {
  it('the unmodified copy passes (so the failures below come from the typos)', () => {
    const run = plant(
      'base/tensor-merge.yaml',
      'imagePullPolicy: IfNotPresent',
      'imagePullPolicy: IfNotPresent',
    );
    expect(run.status, run.output).toBe(0);
  });

  it('a Deployment field (k8s.io/api strict decoding)', () => {
    const run = plant(
      'base/tensor-merge.yaml',
      'imagePullPolicy: IfNotPresent',
      'imagePullPolicyy: IfNotPresent',
    );
    expect(run.status).toBe(1);
    expect(run.reports[0]!.problems).toEqual([
      expect.objectContaining({
        kind: 'Deployment',
        name: 'tensor-merge',
        field: 'spec.template.spec.containers[0].imagePullPolicyy',
      }),
    ]);
    expect(run.output).toContain('Deployment/tensor-merge');
    expect(run.output).toContain('spec.template.spec.containers[0].imagePullPolicyy');
  });

  it('a Deployment field of the wrong type', () => {
    const run = plant('base/evaluator.yaml', 'containerPort: 50063', 'containerPort: "50063"');
    expect(run.status).toBe(1);
    expect(run.reports[0]!.problems).toEqual([
      expect.objectContaining({
        kind: 'Deployment',
        name: 'evaluator',
        field: expect.stringContaining('containerPort'),
      }),
    ]);
  });

  it('a KafkaTopic spec field (Strimzi CRD schema)', () => {
    const run = plant('infra/kafka-topics.yaml', '  partitions: 24', '  partitionz: 24');
    expect(run.status).toBe(1);
    const problems = run.reports[0]!.problems;
    expect(problems).toContainEqual(
      expect.objectContaining({ kind: 'KafkaTopic', name: 'hm3.eval.requested', field: 'spec.partitionz' }),
    );
    expect(problems.every((p) => p.kind === 'KafkaTopic' && p.name === 'hm3.eval.requested')).toBe(true);
    expect(run.output).toContain('KafkaTopic/hm3.eval.requested');
    expect(run.output).toContain('spec.partitionz');
  });

  it('a ScaledObject trigger field (KEDA CRD schema)', () => {
    const run = plant(
      'infra/autoscaling.yaml',
      '      authenticationRef:\n        name: hm3-kafka\n---',
      '      authenticationReff:\n        name: hm3-kafka\n---',
    );
    expect(run.status).toBe(1);
    expect(run.reports[0]!.problems).toEqual([
      expect.objectContaining({
        kind: 'ScaledObject',
        name: 'tensor-merge',
        field: 'spec.triggers[0].authenticationReff',
      }),
    ]);
    expect(run.output).toContain('ScaledObject/tensor-merge');
  });

  it('a trigger value of the wrong type, and a CEL rule of the CRD (minReplicaCount <= maxReplicaCount)', () => {
    const typed = plant('infra/autoscaling.yaml', "lagThreshold: '4'", 'lagThreshold: 4', 'gpu');
    expect(typed.reports[0]!.problems).toEqual([
      expect.objectContaining({
        kind: 'ScaledObject',
        name: 'evaluator',
        field: 'spec.triggers[0].metadata.lagThreshold',
      }),
    ]);
    const cel = plant(
      'overlays/gpu/kustomization.yaml',
      'path: /spec/minReplicaCount\n        value: 2',
      'path: /spec/minReplicaCount\n        value: 30',
      'gpu',
    );
    expect(cel.reports[0]!.problems).toEqual([
      expect.objectContaining({
        kind: 'ScaledObject',
        name: 'evaluator',
        message: expect.stringContaining('minReplicaCount must be less than or equal to maxReplicaCount'),
      }),
    ]);
  });

  it('an apiVersion the CRD does not serve, and a built-in version Kubernetes removed', () => {
    const strimzi = plant(
      'infra/kafka-topics.yaml',
      'apiVersion: kafka.strimzi.io/v1\n',
      'apiVersion: kafka.strimzi.io/v1beta2\n',
    );
    expect(strimzi.status).toBe(1);
    expect(strimzi.reports[0]!.problems).toEqual([
      expect.objectContaining({
        kind: 'KafkaTopic',
        name: 'hm3.merge.requested',
        field: 'apiVersion',
        message: expect.stringContaining('not served'),
      }),
    ]);
    const pdb = plant('base/rl-policy.yaml', 'apiVersion: policy/v1\n', 'apiVersion: policy/v1beta1\n');
    expect(pdb.reports[0]!.problems).toEqual([
      expect.objectContaining({ kind: 'PodDisruptionBudget', name: 'rl-policy', field: 'apiVersion' }),
    ]);
  });

  it('an unknown enum value in the Kafka resource', () => {
    const run = plant('infra/kafka.yaml', 'type: internal', 'type: internall');
    expect(run.reports[0]!.problems).toEqual([
      expect.objectContaining({ kind: 'Kafka', name: 'hm3', field: 'spec.kafka.listeners[0].type' }),
    ]);
  });
});
