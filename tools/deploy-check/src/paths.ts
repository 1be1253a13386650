// Where the manifests, the CRDs and the validator's sources are, from this package's folder.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** tools/deploy-check (this file is in src/ or dist/). */
export const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
export const REPO_ROOT = join(PACKAGE_DIR, '..', '..');
export const K8S_DIR = join(REPO_ROOT, 'k8s');
/** The CRDs the custom resources are validated against (copies of ../shared/k8s-crds). */
export const CRDS_DIR = join(K8S_DIR, 'crds');
/** The overlays CI renders and validates. */
export const OVERLAYS = ['dev', 'gpu'] as const;
export type OverlayName = (typeof OVERLAYS)[number];
export const VALIDATOR_DIR = join(PACKAGE_DIR, 'validator');
export const HADOLINT_LOCK = join(PACKAGE_DIR, 'requirements.lock');
export const DOCKERFILES = [join(REPO_ROOT, 'Dockerfile')];

/** ~/.cache/hm3 (HM3_CACHE_DIR overrides), as tools/infra and tools/python use. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env['HM3_CACHE_DIR'];
  return dir !== undefined && dir !== '' ? dir : join(homedir(), '.cache', 'hm3');
}
