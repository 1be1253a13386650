// k8s/crds holds copies of the CRDs in ../shared/k8s-crds (the clone may run without ../shared, so
// the copies are committed with their sha256s in k8s/crds/SHA256SUMS, taken from ../shared). The
// copies must match those sums always, and ../shared/k8s-crds too wherever that folder exists.
import { createHash } from 'node:crypto';
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

  it('match the sha256s recorded from ../shared/k8s-crds, and ../shared/k8s-crds itself where it exists', () => {
    const recorded = new Map(
      readFileSync(join(CRDS_DIR, 'SHA256SUMS'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => line.split(/\s+/) as [string, string])
        .map(([sum, file]) => [file, sum]),
    );
    const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
    expect([...recorded.keys()].sort()).toEqual(yamlFiles(CRDS_DIR));
    for (const [file, sum] of recorded) expect(sha256(join(CRDS_DIR, file)), file).toBe(sum);
    if (existsSync(SHARED)) {
      expect(yamlFiles(SHARED)).toEqual(yamlFiles(CRDS_DIR));
      for (const [file, sum] of recorded) expect(sha256(join(SHARED, file)), `../shared: ${file}`).toBe(sum);
    }
  });
});
