import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { randomModels } from './fixtures.test-helper.js';

const here = path.dirname(fileURLToPath(import.meta.url));

interface ChildResult {
  before: number;
  after: number;
  logits: number[][];
}

/** One scoring run in a child process: FTZ/DAZ, once set, would stay on in this test worker. */
async function child(model: string, mode: 'flush' | 'plain'): Promise<ChildResult> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', path.join(here, 'flush-denormals.test-helper.ts'), model, mode],
    { maxBuffer: 1 << 26 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildResult;
}

describe('flushDenormals', () => {
  it('scores within 1e-6 of the default and flushes float32 subnormals of the main thread', async () => {
    const models = await randomModels();
    const [plain, flushed] = await Promise.all([child(models.base, 'plain'), child(models.base, 'flush')]);
    expect(flushed.logits.length).toBe(12);
    let maxDiff = 0;
    plain.logits.forEach((row, i) => {
      expect(row.length).toBe(flushed.logits[i]!.length);
      row.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - flushed.logits[i]![j]!))));
    });
    expect(maxDiff).toBeLessThanOrEqual(1e-6);
    // a float32 subnormal survives by default, and reads as 0 once a flushing session exists (the caveat)
    expect([plain.before, plain.after, flushed.before]).toEqual([
      9.99994610111476e-41, 9.99994610111476e-41, 9.99994610111476e-41,
    ]);
    expect(flushed.after).toBe(0);
  }, 600_000);
});
