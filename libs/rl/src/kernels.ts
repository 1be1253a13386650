/** Plain Float64Array kernels for the no-tape inference path (ProposePaths). */

/**
 * out[n, m] += a[n, k] x b[k, m], row-major. Zero entries of `a` (one-hot inputs) are skipped in
 * pairs.
 */
export function matmulAccumulate(
  out: Float64Array,
  a: Float64Array,
  n: number,
  k: number,
  b: Float64Array,
  m: number,
): void {
  let i = 0;
  // Two rows of `out` per pass: each loaded entry of `b` is used twice.
  for (; i + 1 < n; i += 2) {
    const o0 = i * m;
    const o1 = o0 + m;
    const a0 = i * k;
    const a1 = a0 + k;
    let p = 0;
    for (; p + 1 < k; p += 2) {
      const x00 = a[a0 + p] as number;
      const x01 = a[a0 + p + 1] as number;
      const x10 = a[a1 + p] as number;
      const x11 = a[a1 + p + 1] as number;
      if (x00 === 0 && x01 === 0 && x10 === 0 && x11 === 0) continue;
      const b0 = p * m;
      const b1 = b0 + m;
      for (let j = 0; j < m; j++) {
        const u = b[b0 + j] as number;
        const v = b[b1 + j] as number;
        out[o0 + j] = (out[o0 + j] as number) + x00 * u + x01 * v;
        out[o1 + j] = (out[o1 + j] as number) + x10 * u + x11 * v;
      }
    }
    for (; p < k; p++) {
      const x0 = a[a0 + p] as number;
      const x1 = a[a1 + p] as number;
      if (x0 === 0 && x1 === 0) continue;
      const bp = p * m;
      for (let j = 0; j < m; j++) {
        const u = b[bp + j] as number;
        out[o0 + j] = (out[o0 + j] as number) + x0 * u;
        out[o1 + j] = (out[o1 + j] as number) + x1 * u;
      }
    }
  }
  for (; i < n; i++) {
    const oi = i * m;
    const ai = i * k;
    for (let p = 0; p < k; p++) {
      const av = a[ai + p] as number;
      if (av === 0) continue;
      const bp = p * m;
      for (let j = 0; j < m; j++) out[oi + j] = (out[oi + j] as number) + av * (b[bp + j] as number);
    }
  }
}

/** Row r of a [rows, m] matrix added into `out` at `offset`. */
export function addRow(out: Float64Array, offset: number, table: Float64Array, r: number, m: number): void {
  const t0 = r * m;
  for (let j = 0; j < m; j++) out[offset + j] = (out[offset + j] as number) + (table[t0 + j] as number);
}
