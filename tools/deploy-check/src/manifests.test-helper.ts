// Typed views of the rendered resources the tests look into (only the fields they read).
import { join } from 'node:path';
import { K8S_DIR, OVERLAYS } from './paths.js';
import type { K8sObject, ValidationRun } from './validate.js';
import { validateOverlays } from './validate.js';
import { ensureValidatorBinary } from './validator-binary.js';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
  };
}
export interface Probe {
  grpc?: { port: number; service?: string };
  exec?: { command: string[] };
  httpGet?: unknown;
  tcpSocket?: unknown;
}
export interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: {
    runAsNonRoot?: boolean;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
}
export interface Volume {
  name: string;
  emptyDir?: object;
  secret?: { secretName: string };
  configMap?: { name: string };
  persistentVolumeClaim?: { claimName: string };
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  automountServiceAccountToken?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  nodeSelector?: Record<string, string>;
  tolerations?: { key?: string; operator?: string; effect?: string }[];
}
export interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}
export interface ScaledObject extends K8sObject {
  spec: {
    scaleTargetRef: { name: string; kind?: string };
    minReplicaCount?: number;
    maxReplicaCount?: number;
    triggers: { type: string; metadata: Record<string, string>; authenticationRef?: { name: string } }[];
  };
}
export interface KafkaTopic extends K8sObject {
  spec: { topicName?: string; partitions: number; replicas: number; config?: Record<string, unknown> };
}
export interface NetworkPolicy extends K8sObject {
  spec: {
    podSelector: {
      matchLabels?: Record<string, string>;
      matchExpressions?: { key: string; operator: string; values?: string[] }[];
    };
    policyTypes: string[];
    ingress?: { from?: unknown[]; ports?: { port: number | string }[] }[];
    egress?: { to?: Peer[]; ports?: { port: number | string; protocol?: string }[] }[];
  };
}
export interface Peer {
  podSelector?: { matchLabels?: Record<string, string> };
  namespaceSelector?: { matchLabels?: Record<string, string> };
}

/** The four services: Deployment name = `hm3 serve` argument. */
export const SERVICES = ['tensor-merge', 'rl-policy', 'evaluator', 'pareto-optimizer'] as const;

export function ofKind<T extends K8sObject = K8sObject>(objects: readonly K8sObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as T[];
}

export function named<T extends K8sObject = K8sObject>(
  objects: readonly K8sObject[],
  kind: string,
  name: string,
): T {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind}/${name} in the rendered overlay`);
  return found as T;
}

/** Does a NetworkPolicy's podSelector select pods with these labels? */
export function selects(policy: NetworkPolicy, labels: Record<string, string>): boolean {
  const sel = policy.spec.podSelector;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const value = labels[e.key];
    if (e.operator === 'In' && (value === undefined || !(e.values ?? []).includes(value))) return false;
    if (e.operator === 'NotIn' && value !== undefined && (e.values ?? []).includes(value)) return false;
    if (e.operator === 'Exists' && value === undefined) return false;
    if (e.operator === 'DoesNotExist' && value !== undefined) return false;
  }
  return true;
}

/** Renders and validates both overlays once per test file. */
export function renderOverlays(): ValidationRun {
  const binary = ensureValidatorBinary();
  return validateOverlays({ binary, overlays: OVERLAYS.map((o) => join(K8S_DIR, 'overlays', o)) });
}

/** Every container (init ones too) of every workload kind. */
export function allContainers(objects: readonly K8sObject[]): { owner: string; container: Container }[] {
  const out: { owner: string; container: Container }[] = [];
  for (const o of objects) {
    if (!['Deployment', 'StatefulSet', 'Job', 'DaemonSet'].includes(o.kind)) continue;
    const pod = (o as Workload).spec.template.spec;
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      out.push({ owner: `${o.kind}/${o.metadata.name}`, container: c });
    }
  }
  return out;
}
