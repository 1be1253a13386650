// @hm3/deploy-check: validates k8s/ and the Dockerfile offline (see README.md).
export { ensureValidatorBinary, validatorBinaryPath, validatorSources } from './validator-binary.js';
export { validateOverlays } from './validate.js';
export type { K8sObject, Problem, OverlayReport, ValidationRun, ValidateOptions } from './validate.js';
export { ensureHadolint, runHadolint } from './hadolint.js';
export type { HadolintRun } from './hadolint.js';
export { K8S_DIR, CRDS_DIR, OVERLAYS, DOCKERFILES, REPO_ROOT } from './paths.js';
export type { OverlayName } from './paths.js';
