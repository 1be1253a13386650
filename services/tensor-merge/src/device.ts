/**
 * `device: cuda`: the merge kernels on onnxruntime-node's CUDA execution provider. Its provider
 * libraries are not in the npm package (the onnxruntime-gpu wheel of the same version carries them,
 * installed into the GPU image beside the binding); without them a CUDA merge fails with
 * FAILED_PRECONDITION naming the folder and the missing files, never falling back silently.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '@hm3/errors';

export type Device = 'cpu' | 'cuda';

export const DEVICES: readonly Device[] = ['cpu', 'cuda'];

/**
 * A device setting (`--device`, HM3_DEVICE): `cpu` or `cuda` (case and surrounding blanks ignored);
 * undefined or empty: undefined (the service's own default, cpu). Anything else is an
 * InvalidArgumentError naming the setting -- a typo in a GPU overlay must not start a CPU service.
 */
export function parseDevice(text: string | undefined, setting = 'HM3_DEVICE'): Device | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const device = text.trim().toLowerCase();
  if ((DEVICES as readonly string[]).includes(device)) return device as Device;
  throw new InvalidArgumentError(`${setting}: "${text}" is not a device; use ${DEVICES.join(' or ')}`, {
    field: 'device',
    setting,
  });
}

/** The provider libraries onnxruntime loads for its CUDA execution provider. */
export const CUDA_PROVIDER_LIBRARIES: readonly string[] = [
  'libonnxruntime_providers_shared.so',
  'libonnxruntime_providers_cuda.so',
];

export interface CudaProviderStatus {
  /** The folder of onnxruntime-node's native binding, where the provider libraries must lie; null if not found. */
  readonly bindingDir: string | null;
  readonly missing: readonly string[];
}

/** The folder holding onnxruntime_binding.node for this platform, or null when onnxruntime-node is absent. */
export function onnxruntimeBindingDir(): string | null {
  try {
    const main = createRequire(import.meta.url).resolve('onnxruntime-node');
    let dir = path.dirname(main);
    while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    return path.join(dir, 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return null;
  }
}

/** Which CUDA provider libraries are missing from `bindingDir` (default: onnxruntime-node's). */
export function cudaProviderStatus(bindingDir: string | null = onnxruntimeBindingDir()): CudaProviderStatus {
  if (bindingDir === null) return { bindingDir, missing: ['onnxruntime-node', ...CUDA_PROVIDER_LIBRARIES] };
  return {
    bindingDir,
    missing: CUDA_PROVIDER_LIBRARIES.filter((f) => !existsSync(path.join(bindingDir, f))),
  };
}

/** Throws FailedPreconditionError naming what is missing when the CUDA provider cannot load. */
export function assertCudaAvailable(status: CudaProviderStatus = cudaProviderStatus()): void {
  if (process.platform !== 'linux') {
    throw new FailedPreconditionError(
      `device cuda: onnxruntime's CUDA execution provider needs Linux, this is ${process.platform}`,
      {
        field: 'device',
      },
    );
  }
  if (status.missing.length === 0) return;
  const where = status.bindingDir ?? 'onnxruntime-node (not installed)';
  throw new FailedPreconditionError(
    `device cuda: onnxruntime CUDA provider libraries missing in ${where}: ${status.missing.join(', ')} ` +
      '(install the onnxruntime-gpu wheel of the same version as onnxruntime-node and copy its ' +
      'capi/libonnxruntime_providers_*.so there, or use device cpu)',
    { field: 'device', bindingDir: status.bindingDir, missing: status.missing },
  );
}
