/**
 * Per-example metrics on strings. exact_match and loglikelihood_accuracy are decided from logits in
 * evaluator.ts; chrF is a pure function of two strings.
 */

/** Character n-gram order and recall weight of chrF (sacrebleu's defaults: chrF2, n = 6). */
export const CHRF_ORDER = 6;
export const CHRF_BETA = 2;

function charNgrams(s: string, n: number): Map<string, number> {
  const counts = new Map<string, number>();
  const chars = Array.from(s);
  for (let i = 0; i + n <= chars.length; i++) {
    const g = chars.slice(i, i + n).join('');
    counts.set(g, (counts.get(g) ?? 0) + 1);
  }
  return counts;
}

/**
 * Sentence chrF in [0, 1], as sacrebleu's CHRF(char_order=6, word_order=0, beta=2,
 * whitespace=False).sentence_score / 100: whitespace removed, precision and recall averaged over the
 * n-gram orders both strings have, then the F-beta of the two averages.
 */
export function chrf(hypothesis: string, reference: string, order = CHRF_ORDER, beta = CHRF_BETA): number {
  const hyp = hypothesis.replace(/\s+/g, '');
  const ref = reference.replace(/\s+/g, '');
  let precision = 0;
  let recall = 0;
  let effective = 0;
  for (let n = 1; n <= order; n++) {
    const h = charNgrams(hyp, n);
    const r = charNgrams(ref, n);
    let hypCount = 0;
    let refCount = 0;
    let common = 0;
    for (const c of h.values()) hypCount += c;
    for (const [g, c] of r) {
      refCount += c;
      common += Math.min(c, h.get(g) ?? 0);
    }
    if (hypCount > 0 && refCount > 0) {
      precision += common / hypCount;
      recall += common / refCount;
      effective++;
    }
  }
  if (effective === 0) return 0;
  precision /= effective;
  recall /= effective;
  if (precision + recall === 0) return 0;
  const b2 = beta * beta;
  return ((1 + b2) * precision * recall) / (b2 * precision + recall);
}

/** The largest and second largest entries of logits[offset, offset + v): the argmax and the gap. */
export function topTwo(
  logits: Float32Array,
  offset: number,
  v: number,
): { top: number; topLogit: number; second: number; secondLogit: number } {
  let top = 0;
  let topLogit = -Infinity;
  let second = -1;
  let secondLogit = -Infinity;
  for (let k = 0; k < v; k++) {
    const x = logits[offset + k]!;
    if (x > topLogit) {
      second = top;
      secondLogit = topLogit;
      top = k;
      topLogit = x;
    } else if (x > secondLogit) {
      second = k;
      secondLogit = x;
    }
  }
  return { top, topLogit, second, secondLogit };
}
