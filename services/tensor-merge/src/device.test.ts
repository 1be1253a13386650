import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '@hm3/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CUDA_PROVIDER_LIBRARIES,
  assertCudaAvailable,
  cudaProviderStatus,
  onnxruntimeBindingDir,
  parseDevice,
} from './device.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hm3-cuda-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('device cuda', () => {
  it("looks for the provider libraries beside onnxruntime-node's binding", () => {
    const bindingDir = onnxruntimeBindingDir();
    expect(bindingDir).toMatch(/onnxruntime-node[/\\]bin[/\\]napi-v6[/\\]/);
    expect(cudaProviderStatus(bindingDir).bindingDir).toBe(bindingDir);
  });

  it('fails with FAILED_PRECONDITION naming the folder and each missing library', () => {
    const status = cudaProviderStatus(dir);
    expect(status.missing).toEqual(CUDA_PROVIDER_LIBRARIES);
    const error = (() => {
      try {
        assertCudaAvailable(status);
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(FailedPreconditionError);
    expect((error as Error).message).toContain(dir);
    for (const lib of CUDA_PROVIDER_LIBRARIES) expect((error as Error).message).toContain(lib);
    expect(() => assertCudaAvailable(cudaProviderStatus(null))).toThrow(/onnxruntime-node \(not installed\)/);
  });

  it('passes once the libraries are there', async () => {
    for (const lib of CUDA_PROVIDER_LIBRARIES) await writeFile(path.join(dir, lib), '');
    expect(cudaProviderStatus(dir).missing).toEqual([]);
    expect(() => assertCudaAvailable(cudaProviderStatus(dir))).not.toThrow();
  });
});

describe('parseDevice (HM3_DEVICE, --device)', () => {
  it('reads cpu and cuda, and leaves an absent or empty setting to the default', () => {
    expect(parseDevice('cpu')).toBe('cpu');
    expect(parseDevice(' CUDA ')).toBe('cuda');
    expect(parseDevice(undefined)).toBeUndefined();
    expect(parseDevice('')).toBeUndefined();
  });

  it('refuses anything else with INVALID_ARGUMENT naming the setting', () => {
    for (const bad of ['gpu', 'cuda:0', 'tpu']) {
      const error = (() => {
        try {
          parseDevice(bad, '--device');
          return undefined;
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).status).toBe('INVALID_ARGUMENT');
      expect((error as Error).message).toBe(`--device: "${bad}" is not a device; use cpu or cuda`);
      expect((error as InvalidArgumentError).details).toMatchObject({ field: 'device', setting: '--device' });
    }
  });
});
