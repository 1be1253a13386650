/**
 * Child process of flush-denormals.test.ts (FTZ/DAZ, once set, stays on the thread: kept out of the
 * test worker). argv: MODEL_DIR flush|plain. Prints JSON: the scoring logits of the model's own path
 * with flushDenormals on or off, and a float32 subnormal read back in JavaScript before and after.
 */
import { readModelConfig } from './config.js';
import { seededPrompts } from './fixtures.test-helper.js';
import { sequenceLogits } from './inference.js';
import { ownPath } from './inference-path.js';
import { ModelRuntime } from './runtime.js';

const [dir, mode] = process.argv.slice(2) as [string, string];
const arch = await readModelConfig(dir);
const subnormal = () => new Float32Array([1e-40])[0]!;
const before = subnormal();
const runtime = new ModelRuntime({ flushDenormals: mode === 'flush' });
const logits = await sequenceLogits(
  await runtime.path(ownPath(dir, arch.numLayers)),
  seededPrompts(12, arch.vocabSize, 11),
  6,
);
await runtime.close();
console.log(JSON.stringify({ before, after: subnormal(), logits: logits.map((row) => Array.from(row)) }));
