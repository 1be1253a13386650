// k8s/crds holds copies of the CRDs in ../shared/k8s-crds (the clone may run without ../shared, so
// the copies are committed). Where ../shared/k8s-crds exists, the copies must equal it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CRDS_DIR, REPO_ROOT } from './paths.js';

const SHARED = join(REPO_ROOT, '..', 'shared', 'k8s-crds');
const yamlFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();

describe('k8s/crds', () => {
  it('holds the Strimzi and KEDA CRDs the manifests use, and says where they came from', () => {
    expect(yamlFiles(CRDS_DIR)).toEqual([
      'keda-keda.sh_scaledobjects.yaml',
      'keda-keda.sh_triggerauthentications.yaml',
      'strimzi-040-Crd-kafka.yaml',
      'strimzi-043-Crd-kafkatopic.yaml',
      'strimzi-044-Crd-kafkauser.yaml',
      'strimzi-045-Crd-kafkanodepool.yaml',
    ]);
    expect(readFileSync(join(CRDS_DIR, 'README.md'), 'utf8')).toMatch(/shared\/k8s-crds/);
  });

  it.runIf(existsSync(SHARED))('equals ../shared/k8s-crds byte for byte (when that folder exists)', () => {
    expect(yamlFiles(CRDS_DIR)).toEqual(yamlFiles(SHARED));
    for (const file of yamlFiles(SHARED)) {
      expect(readFileSync(join(CRDS_DIR, file)).equals(readFileSync(join(SHARED, file))), file).toBe(true);
    }
  });
});
