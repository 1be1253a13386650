// `npm run deploy:check` (nx run @hm3/deploy-check:check): renders and validates every overlay,
// lints the Dockerfile; exits non-zero on any problem. The same checks run in the test suite.
import { join } from 'node:path';
import { ensureHadolint, runHadolint } from './hadolint.js';
import { DOCKERFILES, K8S_DIR, OVERLAYS } from './paths.js';
import { validateOverlays } from './validate.js';
import { ensureValidatorBinary } from './validator-binary.js';

const binary = ensureValidatorBinary({ progress: (line) => console.log(line) });
const run = validateOverlays({ binary, overlays: OVERLAYS.map((o) => join(K8S_DIR, 'overlays', o)) });
process.stdout.write(run.output);
const lint = runHadolint(ensureHadolint(), DOCKERFILES);
console.log(lint.status === 0 ? `hadolint: ${DOCKERFILES.length} Dockerfile(s) clean` : lint.output);
process.exitCode = run.status !== 0 || lint.status !== 0 ? 1 : 0;
