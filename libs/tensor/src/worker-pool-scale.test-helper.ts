// A second module, imported by worker-pool-kernels.test-helper.ts with a NodeNext `.js` specifier.
export function scaleInPlace(a: Float32Array, factor: number, start: number, end: number): void {
  for (let i = start; i < end; i++) a[i] = a[i]! * factor;
}
