// The rendered overlays: both validate, and they keep the invariants of the deployment issue
// (security, probes, secrets, storage, GPUs, topics, autoscaling, network flows).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TOPIC_NAMES } from '@hm3/proto';
import {
  allContainers,
  named,
  ofKind,
  renderOverlays,
  selects,
  SERVICES,
  type KafkaTopic,
  type NetworkPolicy,
  type ScaledObject,
  type Workload,
} from './manifests.test-helper.js';
import { OVERLAYS, REPO_ROOT } from './paths.js';
import type { K8sObject, ValidationRun } from './validate.js';

let run: ValidationRun;
beforeAll(() => {
  run = renderOverlays();
});

function overlay(name: string): K8sObject[] {
  const objects = run.rendered.get(name);
  if (objects === undefined) throw new Error(`overlay ${name} was not rendered:\n${run.output}`);
  return objects;
}

function settings(objects: readonly K8sObject[]): Record<string, string> {
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('hm3-settings'));
  if (cm === undefined) throw new Error('no hm3-settings ConfigMap');
  return cm['data'] as Record<string, string>;
}

function gpuQuantity(resources: Record<string, string | number> | undefined): number {
  return Number(resources?.['nvidia.com/gpu'] ?? 0);
}

describe('both overlays render and validate', () => {
  it('every resource is valid, with the count per kind printed', () => {
    expect(run.status, run.output).toBe(0);
    expect(run.reports.map((r) => r.overlay.split('/').pop())).toEqual([...OVERLAYS]);
    for (const report of run.reports) {
      expect(report.problems).toEqual([]);
      expect(report.counts).toMatchObject({
        Deployment: 4,
        Service: 5,
        PodDisruptionBudget: 5,
        KafkaTopic: TOPIC_NAMES.length,
        Kafka: 1,
        KafkaNodePool: 1,
        ScaledObject: 2,
        TriggerAuthentication: 1,
        StatefulSet: 1,
        PersistentVolumeClaim: 1,
      });
      expect(run.output).toMatch(new RegExp(`${report.overlay}: \\d+ resources validated`));
      expect(run.output).toMatch(/KafkaTopic\s+9\n/);
    }
  });
});

describe.each(OVERLAYS)('overlay %s', (name) => {
  it('has a Deployment, a Service and a PodDisruptionBudget per service, started by `hm3 serve <service>`', () => {
    const objects = overlay(name);
    for (const service of SERVICES) {
      const deployment = named<Workload>(objects, 'Deployment', service);
      const container = deployment.spec.template.spec.containers[0]!;
      expect(container.args).toEqual(['serve', service]);
      const selector = deployment.spec.selector.matchLabels;
      for (const kind of ['Service', 'PodDisruptionBudget']) {
        const o = named(objects, kind, service) as K8sObject & {
          spec: { selector: Record<string, unknown> };
        };
        const sel = (kind === 'Service' ? o.spec.selector : o.spec.selector['matchLabels']) as Record<
          string,
          string
        >;
        expect(sel).toEqual(selector);
      }
      // The port the process listens on is the one the probes and the Service use.
      const port = Number(container.env?.find((e) => e.name === 'HM3_PORT')?.value);
      expect(container.ports?.find((p) => p.name === 'grpc')?.containerPort).toBe(port);
    }
  });

  it('runs every HM3 container non-root, read-only, without privilege escalation or capabilities, or a service-account token', () => {
    const objects = overlay(name);
    for (const service of SERVICES) {
      const pod = named<Workload>(objects, 'Deployment', service).spec.template.spec;
      expect(pod.automountServiceAccountToken, service).toBe(false);
      expect(pod.securityContext?.runAsNonRoot, service).toBe(true);
      for (const c of pod.containers) {
        expect(c.securityContext, service).toMatchObject({
          runAsNonRoot: true,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
        });
        expect(c.securityContext?.capabilities?.add ?? []).toEqual([]);
        // Writable paths are emptyDirs or the artifact store, nothing else.
        const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
        const writable = (c.volumeMounts ?? []).filter((m) => m.readOnly !== true);
        for (const m of writable) {
          const v = volumes.get(m.name);
          expect(
            v?.emptyDir !== undefined || v?.persistentVolumeClaim?.claimName === 'hm3-artifacts',
            m.mountPath,
          ).toBe(true);
        }
        expect(
          writable.some((m) => m.mountPath === '/tmp' && volumes.get(m.name)?.emptyDir !== undefined),
        ).toBe(true);
      }
    }
    for (const w of [...ofKind<Workload>(objects, 'StatefulSet'), ...ofKind<Workload>(objects, 'Job')]) {
      expect(w.spec.template.spec.automountServiceAccountToken, w.metadata.name).toBe(false);
      expect(w.spec.template.spec.securityContext?.runAsNonRoot, w.metadata.name).toBe(true);
    }
    for (const { owner, container } of allContainers(objects)) {
      expect(container.securityContext?.readOnlyRootFilesystem, `${owner} ${container.name}`).toBe(true);
      expect(container.securityContext?.capabilities?.drop, `${owner} ${container.name}`).toEqual(['ALL']);
    }
  });

  it('sets CPU and memory requests and limits on every container', () => {
    for (const { owner, container } of allContainers(overlay(name))) {
      for (const kind of ['requests', 'limits'] as const) {
        for (const resource of ['cpu', 'memory']) {
          expect(
            container.resources?.[kind]?.[resource],
            `${owner} ${container.name} ${kind}.${resource}`,
          ).toBeDefined();
        }
      }
    }
  });

  it('probes the gRPC health service: native gRPC probes without TLS, the mTLS health probe with it', () => {
    const objects = overlay(name);
    for (const service of SERVICES) {
      const container = named<Workload>(objects, 'Deployment', service).spec.template.spec.containers[0]!;
      const port = container.ports?.find((p) => p.name === 'grpc')?.containerPort;
      const mtls = container.env?.find((e) => e.name === 'HM3_MTLS')?.value === 'true';
      expect(mtls, service).toBe(name === 'gpu');
      for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
        if (mtls) expect(probe?.exec?.command).toEqual(['node', '/app/health-probe.mjs']);
        else expect(probe?.grpc?.port).toBe(port);
      }
    }
  });

  it('takes every credential from a Secret, never from a literal', () => {
    const objects = overlay(name);
    const kafkaUsers = new Set(ofKind(objects, 'KafkaUser').map((u) => u.metadata.name));
    for (const service of SERVICES) {
      const pod = named<Workload>(objects, 'Deployment', service).spec.template.spec;
      const env = new Map((pod.containers[0]!.env ?? []).map((e) => [e.name, e]));
      for (const [key, e] of env) {
        if (/PASSWORD|SECRET|TOKEN(?!_FILE)/.test(key)) expect(e.value, `${service} ${key}`).toBeUndefined();
      }
      expect(env.get('HM3_MONGO_PASSWORD')?.valueFrom?.secretKeyRef?.name).toBe('hm3-mongodb-app');
      const kafkaPassword = env.get('HM3_KAFKA_PASSWORD')?.valueFrom?.secretKeyRef;
      if (service === 'rl-policy') {
        expect(kafkaPassword).toBeUndefined();
      } else {
        // Strimzi's user operator writes the password of KafkaUser X into Secret X.
        expect(kafkaPassword).toEqual({ name: `hm3-${service}`, key: 'password' });
        expect(env.get('HM3_KAFKA_USERNAME')?.value).toBe(`hm3-${service}`);
        expect(kafkaUsers.has(`hm3-${service}`)).toBe(true);
      }
      const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
      const tokenDir = settings(objects)['HM3_TOKEN_FILE']!.replace(/\/[^/]+$/, '');
      const tokenMount = pod.containers[0]!.volumeMounts?.find((m) => m.mountPath === tokenDir);
      expect(tokenMount?.subPath, 'a subPath mount would never see a rotated token').toBeUndefined();
      expect(volumes.get(tokenMount!.name)?.secret?.secretName).toBe('hm3-api-tokens');
      const tlsMount = pod.containers[0]!.volumeMounts?.find((m) => m.mountPath === '/etc/hm3/tls');
      if (name === 'gpu') {
        expect(volumes.get(tlsMount!.name)?.secret?.secretName).toBe(`hm3-${service}-tls`);
        for (const file of ['HM3_TLS_CERT_FILE', 'HM3_TLS_KEY_FILE', 'HM3_TLS_CA_FILE']) {
          expect(env.get(file)?.value?.startsWith('/etc/hm3/tls/'), file).toBe(true);
        }
      } else {
        expect(tlsMount).toBeUndefined();
        expect([...env.keys()].filter((k) => k.startsWith('HM3_TLS') || k === 'HM3_MTLS')).toEqual([]);
      }
    }
    for (const literal of Object.keys(settings(objects))) expect(literal).not.toMatch(/PASSWORD|SECRET/);
  });

  it('keeps the artifact store, and its .tmp, on one ReadWriteMany volume', () => {
    const objects = overlay(name);
    const pvc = named(objects, 'PersistentVolumeClaim', 'hm3-artifacts') as K8sObject & {
      spec: { accessModes: string[] };
    };
    expect(pvc.spec.accessModes).toEqual(['ReadWriteMany']);
    const root = settings(objects)['HM3_ARTIFACT_ROOT'];
    for (const service of SERVICES) {
      const pod = named<Workload>(objects, 'Deployment', service).spec.template.spec;
      const mount = pod.containers[0]!.volumeMounts?.find((m) => m.mountPath === root);
      // <root>/.tmp lies inside this mount: the writer's rename stays on one filesystem.
      const volume = pod.volumes?.find((v) => v.name === mount?.name);
      expect(volume?.persistentVolumeClaim?.claimName, service).toBe('hm3-artifacts');
      expect(pod.containers[0]!.volumeMounts?.some((m) => m.mountPath.startsWith(`${root}/`))).toBe(false);
      // Every service writes there (checkpoints, policy weights, per-example records, retention).
      expect(mount?.readOnly === true, service).toBe(false);
    }
  });

  it('has a KafkaTopic for every topic of the event contract, and no other', () => {
    const objects = overlay(name);
    const topics = ofKind<KafkaTopic>(objects, 'KafkaTopic');
    expect(topics.map((t) => t.spec.topicName ?? t.metadata.name).sort()).toEqual([...TOPIC_NAMES].sort());
    const kafka = ofKind(objects, 'Kafka');
    expect(kafka).toHaveLength(1);
    const brokers = (ofKind(objects, 'KafkaNodePool')[0] as K8sObject & { spec: { replicas: number } }).spec
      .replicas;
    for (const t of topics) {
      expect(t.metadata.labels?.['strimzi.io/cluster']).toBe(kafka[0]!.metadata.name);
      expect(t.spec.replicas).toBeLessThanOrEqual(brokers);
      expect(Number(t.spec.config?.['min.insync.replicas'])).toBeLessThanOrEqual(t.spec.replicas);
      expect(Number(t.spec.config?.['retention.ms'])).toBeGreaterThan(0);
    }
  });

  it('scales evaluator and tensor-merge on the lag of their work queues, at most one replica per partition', () => {
    const objects = overlay(name);
    const partitions = new Map(
      ofKind<KafkaTopic>(objects, 'KafkaTopic').map((t) => [t.spec.topicName, t.spec.partitions]),
    );
    const auths = new Set(ofKind(objects, 'TriggerAuthentication').map((a) => a.metadata.name));
    const expected = {
      evaluator: ['hm3.eval.requested', 'hm3-evaluator'],
      'tensor-merge': ['hm3.merge.requested', 'hm3-tensor-merge'],
    };
    const scaled = ofKind<ScaledObject>(objects, 'ScaledObject');
    expect(scaled.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual(Object.keys(expected).sort());
    for (const [target, [topic, group]] of Object.entries(expected)) {
      const so = scaled.find((s) => s.spec.scaleTargetRef.name === target)!;
      named(objects, 'Deployment', target);
      expect(so.spec.triggers).toHaveLength(1);
      const trigger = so.spec.triggers[0]!;
      expect(trigger.type).toBe('kafka');
      expect(trigger.metadata).toMatchObject({ topic, consumerGroup: group });
      expect(auths.has(trigger.authenticationRef?.name ?? '')).toBe(true);
      if (name === 'gpu') expect(so.spec.maxReplicaCount).toBe(partitions.get(topic));
      else expect(so.spec.maxReplicaCount).toBe(1);
      expect(so.spec.minReplicaCount).toBeLessThanOrEqual(so.spec.maxReplicaCount!);
    }
    const evaluator = scaled.find((s) => s.spec.scaleTargetRef.name === 'evaluator')!;
    expect(evaluator.spec.minReplicaCount).toBe(name === 'gpu' ? 2 : 1);
  });

  it('allows only the flows of the architecture', () => {
    const objects = overlay(name);
    const policies = ofKind<NetworkPolicy>(objects, 'NetworkPolicy');
    const podLabels = (service: string): Record<string, string> =>
      named<Workload>(objects, 'Deployment', service).spec.template.metadata.labels;
    const egressTo = (service: string, peer: Record<string, string>, port: number): boolean =>
      policies.some(
        (p) =>
          selects(p, podLabels(service)) &&
          (p.spec.egress ?? []).some(
            (rule) =>
              (rule.ports ?? []).some((pt) => pt.port === port) &&
              (rule.to ?? []).some((to) =>
                Object.entries(to.podSelector?.matchLabels ?? {}).every(([k, v]) => peer[k] === v),
              ),
          ),
      );
    const broker = { 'strimzi.io/cluster': 'hm3', 'strimzi.io/kind': 'Kafka' };
    const mongo = named<Workload>(objects, 'StatefulSet', 'mongodb').spec.template.metadata.labels;
    for (const service of SERVICES) {
      // Denied by default, in both directions.
      expect(
        policies.some(
          (p) =>
            selects(p, podLabels(service)) &&
            p.spec.policyTypes.includes('Ingress') &&
            p.spec.policyTypes.includes('Egress') &&
            p.spec.ingress === undefined &&
            p.spec.egress === undefined,
        ),
        service,
      ).toBe(true);
      expect(egressTo(service, mongo, 27017), `${service} -> mongodb`).toBe(true);
      expect(egressTo(service, broker, 9092), `${service} -> kafka`).toBe(service !== 'rl-policy');
    }
    expect(egressTo('pareto-optimizer', podLabels('rl-policy'), 50062)).toBe(true);
    for (const service of ['tensor-merge', 'evaluator'])
      expect(egressTo(service, podLabels('rl-policy'), 50062)).toBe(false);
  });
});

describe('GPUs', () => {
  it('the gpu overlay requests GPUs for tensor-merge only, on GPU nodes', () => {
    const objects = overlay('gpu');
    const withGpu = allContainers(objects).filter(
      ({ container }) => gpuQuantity(container.resources?.limits) > 0,
    );
    expect(withGpu.map((c) => c.owner)).toEqual(['Deployment/tensor-merge']);
    const pod = named<Workload>(objects, 'Deployment', 'tensor-merge').spec.template.spec;
    expect(gpuQuantity(pod.containers[0]!.resources?.limits)).toBe(1);
    expect(Object.keys(pod.nodeSelector ?? {})).toContain('nvidia.com/gpu.present');
    expect(pod.tolerations).toContainEqual({
      key: 'nvidia.com/gpu',
      operator: 'Exists',
      effect: 'NoSchedule',
    });
    expect(pod.containers[0]!.image).toMatch(/cuda/);
    for (const service of SERVICES.filter((s) => s !== 'tensor-merge')) {
      expect(
        named<Workload>(objects, 'Deployment', service).spec.template.spec.containers[0]!.image,
      ).not.toMatch(/cuda/);
    }
  });

  it('the dev overlay requests none', () => {
    const objects = overlay('dev');
    for (const { owner, container } of allContainers(objects)) {
      expect(gpuQuantity(container.resources?.limits), owner).toBe(0);
      expect(gpuQuantity(container.resources?.requests), owner).toBe(0);
    }
    for (const w of ofKind<Workload>(objects, 'Deployment')) {
      expect(w.spec.template.spec.nodeSelector, w.metadata.name).toBeUndefined();
      expect(w.spec.replicas, w.metadata.name).toBe(1);
    }
  });
});

describe('consumer groups', () => {
  /** Groups the services declare in code (`..._GROUP = 'hm3-...'` constants or a literal groupId). */
  function declaredGroups(): Map<string, string> {
    const groups = new Map<string, string>();
    const servicesDir = join(REPO_ROOT, 'services');
    for (const service of readdirSync(servicesDir)) {
      const src = join(servicesDir, service, 'src');
      let files: string[];
      try {
        files = readdirSync(src, { recursive: true }) as string[];
      } catch {
        continue;
      }
      for (const file of files) {
        if (!file.endsWith('.ts') || /\.test(-helper)?\.ts$/.test(file)) continue;
        const text = readFileSync(join(src, file), 'utf8');
        for (const m of text.matchAll(/_GROUP\s*=\s*['"]([^'"]+)['"]|groupId:\s*['"]([^'"]+)['"]/g)) {
          groups.set((m[1] ?? m[2])!, `services/${service}/src/${file}`);
        }
      }
    }
    return groups;
  }

  /** docs/deploy.md's table: | `group` | topics | scaling | */
  function documentedGroups(): Map<string, string> {
    const doc = readFileSync(join(REPO_ROOT, 'docs/deploy.md'), 'utf8');
    const rows = new Map<string, string>();
    for (const m of doc.matchAll(/^\|\s*`(hm3-[a-z0-9-]+)`\s*\|[^|\n]*\|([^|\n]*)\|/gm))
      rows.set(m[1]!, m[2]!.trim());
    return rows;
  }

  it('every consumer group of the services is in a ScaledObject, or documented as not scaled', () => {
    const declared = declaredGroups();
    // tensor-merge's is in the code today; the evaluator's and the optimizer's are fixed by the
    // architecture and checked even before their services are built.
    expect(declared.get('hm3-tensor-merge')).toMatch(/^services\/tensor-merge\//);
    const groups = new Set([...declared.keys(), 'hm3-evaluator', 'hm3-pareto-optimizer']);
    const documented = documentedGroups();
    for (const name of OVERLAYS) {
      const scaledGroups = new Set(
        ofKind<ScaledObject>(overlay(name), 'ScaledObject').flatMap((s) =>
          s.spec.triggers.map((t) => t.metadata['consumerGroup']),
        ),
      );
      for (const group of groups) {
        const row = documented.get(group);
        expect(
          row,
          `${group} (${declared.get(group) ?? 'architecture'}) is not in docs/deploy.md's consumer group table`,
        ).toBeDefined();
        if (scaledGroups.has(group)) expect(row, group).toMatch(/ScaledObject/);
        else expect(row, `${group} has no ScaledObject in ${name}`).toMatch(/^not scaled/);
      }
    }
  });
});
