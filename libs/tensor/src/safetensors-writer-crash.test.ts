import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from './checkpoint.js';
import { CheckpointWriter, sweepStaleTempDirs } from './safetensors-writer.js';

const child = fileURLToPath(new URL('./writer-crash-child.test-helper.ts', import.meta.url));
const packageDir = path.dirname(path.dirname(child));

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'hm3-writer-crash-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Runs the child; resolves once it prints `half` (then calls `atHalf`) and exits. */
function runChild(
  out: string,
  pauseMs: number,
  atHalf: (pid: number) => void,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, out, String(pauseMs)], {
      cwd: packageDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('half\n') && !stdout.includes('done')) atHalf(proc.pid!);
    });
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('error', reject);
    proc.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('writer crash safety', () => {
  it('a writer that runs to the end leaves the complete folder and no temp folder', async () => {
    const parent = path.join(root, 'ok');
    const out = path.join(parent, 'merged');
    const result = await runChild(out, 0, () => undefined);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect((await readdir(out)).sort()).toEqual([
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
    expect(await readdir(parent)).toEqual(['merged']);
    const ckpt = await Checkpoint.open(out);
    expect((await ckpt.readFloats('b', 'F32', { rows: [2047, 2048] }))[1023]).toBe(1.5);
    await ckpt.close();
  }, 60_000);

  it('SIGKILL half-way leaves nothing under the output name; the next writer sweeps the temp folder', async () => {
    const parent = path.join(root, 'killed');
    const out = path.join(parent, 'merged');
    let killedPid = 0;
    const result = await runChild(out, 30_000, (pid) => {
      killedPid = pid;
      process.kill(pid, 'SIGKILL');
    });
    expect(result.signal).toBe('SIGKILL');
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    const leftovers = await readdir(parent);
    expect(leftovers).toHaveLength(1);
    expect(leftovers[0]).toMatch(new RegExp(`^\\.hm3-tmp-.*-${killedPid}-[0-9a-f]+$`));
    // the half-written first shard is in the temp folder, never under the output name
    const shard = await stat(path.join(parent, leftovers[0]!, 'model-00001-of-00002.safetensors'));
    expect(shard.size).toBeGreaterThan(8 * 1024 * 1024);

    // a live writer's temp folder is never swept; the dead one's is
    const writer = await CheckpointWriter.create(out, [{ name: 'x', dtype: 'F32', shape: [1] }]);
    expect((await readdir(parent)).filter((n) => n.startsWith('.hm3-tmp-'))).toEqual([
      path.basename(writer.tempDir),
    ]);
    expect(await sweepStaleTempDirs(parent)).toEqual([]);
    await writer.writeFloats('x', new Float32Array([7]));
    await writer.commit();
    expect(await readdir(parent)).toEqual(['merged']);
  }, 60_000);
});
