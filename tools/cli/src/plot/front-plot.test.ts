import { InvalidArgumentError } from '@hm3/errors';
import { describe, expect, it } from 'vitest';
import { FRONT_PLOT_PNG_SCALE, renderFrontPlot, type FrontPlotInput } from './front-plot.js';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** 25 deterministic points in [0, 1]^k. */
function points(k: number, n = 25): number[][] {
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: k }, (_, j) => Math.round(1000 * (0.5 + 0.45 * Math.sin(1.7 * i + 2.3 * j))) / 1000),
  );
}

function input(k: number, extra: Partial<FrontPlotInput> = {}): FrontPlotInput {
  const pts = points(k);
  return {
    objectives: ['translate bleu', 'math accuracy', 'code pass@1', 'length penalty'].slice(0, k),
    points: pts,
    frontIndices: [2, 5, 11, 17],
    recommendedIndex: 5,
    title: 'search s-1: round 3',
    labels: pts.map((_, i) => `cand-${i}`),
    ...extra,
  };
}

/** The point marks (scatter symbols, not legend symbols) of each panel, as their fill colours. */
function panels(svg: string): string[][] {
  const groups = svg.split('<g class="mark-symbol role-mark ').slice(1);
  return groups.map((g) => {
    const body = g.slice(0, g.indexOf('</g>'));
    return [...body.matchAll(/<path [^>]*aria-roledescription="point"[^>]*fill="(#[0-9a-f]{6})"/g)].map(
      (m) => m[1]!,
    );
  });
}

function pngSize(png: Buffer): { width: number; height: number } {
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

function svgSize(svg: string): { width: number; height: number } {
  const m = /^<svg [^>]*width="(\d+(?:\.\d+)?)" height="(\d+(?:\.\d+)?)"/.exec(svg)!;
  return { width: Number(m[1]), height: Number(m[2]) };
}

describe('renderFrontPlot', () => {
  it('two objectives: one scatter, a mark per point, the front highlighted, the recommended point marked and labelled', async () => {
    const { svg, png } = await renderFrontPlot(input(2));
    const marks = panels(svg);
    expect(marks).toHaveLength(1);
    expect(marks[0]).toHaveLength(25);
    const count = (c: string) => marks[0]!.filter((x) => x === c).length;
    expect(count('#b0b0b0')).toBe(21); // grey: not on the front
    expect(count('#1f6fb4')).toBe(3); // front members other than the recommended one
    expect(count('#d62728')).toBe(1); // the recommended one
    expect(svg).toContain('>recommended: cand-5</text>');
    expect(svg).toContain('translate bleu (higher is better)');
    expect(svg).toContain('math accuracy (higher is better)');
    expect(svg).toContain('higher is better on every objective');
    expect(svg).toContain('search s-1: round 3');
    expect(svg).toContain('Pareto front (4 of 25)');
    expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    const size = svgSize(svg);
    expect(pngSize(png)).toEqual({
      width: Math.round(size.width * FRONT_PLOT_PNG_SCALE),
      height: Math.round(size.height * FRONT_PLOT_PNG_SCALE),
    });
  });

  for (const [k, pairs] of [
    [3, 3],
    [4, 6],
  ] as const) {
    it(`${k} objectives: the pairwise scatter matrix (${pairs} panels), every point in every panel`, async () => {
      const { svg, png } = await renderFrontPlot(input(k));
      const marks = panels(svg);
      expect(marks).toHaveLength(pairs);
      for (const panel of marks) {
        expect(panel).toHaveLength(25);
        expect(panel.filter((c) => c === '#d62728')).toHaveLength(1);
      }
      expect(svg.split('>recommended: cand-5</text>')).toHaveLength(pairs + 1);
      for (const name of input(k).objectives) expect(svg).toContain(`${name} (higher is better)`);
      expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
      const size = svgSize(svg);
      expect(pngSize(png).width).toBe(Math.round(size.width * FRONT_PLOT_PNG_SCALE));
    });
  }

  it('without a recommendation or labels: no caption, the front still highlighted; the same input gives the same SVG', async () => {
    const plain = input(2, { recommendedIndex: undefined, labels: undefined, title: undefined });
    const { svg } = await renderFrontPlot(plain);
    expect(svg).not.toContain('recommended:');
    expect(svg).toContain('Pareto front');
    expect(panels(svg)[0]!.filter((c) => c === '#1f6fb4')).toHaveLength(4);
    expect((await renderFrontPlot(plain)).svg).toBe(svg);
  });

  it('a long recommended label is cut with an ellipsis instead of widening the plot', async () => {
    const render = (label: string) =>
      renderFrontPlot(input(2, { labels: points(2).map((_, i) => (i === 5 ? label : `cand-${i}`)) }));
    const long = 'merge(task_arithmetic, expert-math 0.41, expert-code 0.33) then layers 0-11 of expert-code';
    const longer = `${long} ${long} ${long}`;
    const a = await render(long);
    const b = await render(longer);
    expect(pngSize(b.png)).toEqual(pngSize(a.png));
    const caption = /role="graphics-symbol" aria-roledescription="text mark"[^>]*>([^<]*)<\/text>/.exec(
      b.svg,
    )?.[1];
    expect(caption).toMatch(/^recommended: merge\(task_.*\u2026$/);
    expect(caption!.length).toBeLessThan(40);
  });

  it('escapes labels in the SVG', async () => {
    const labels = input(2).labels!.map((l, i) => (i === 5 ? 'a<b & "c"' : l));
    const { svg } = await renderFrontPlot(input(2, { labels }));
    expect(svg).toContain('recommended: a&lt;b &amp; "c"</text>');
  });

  const bad: [string, Partial<FrontPlotInput> | ((i: FrontPlotInput) => FrontPlotInput), string][] = [
    [
      'one objective',
      { objectives: ['a'], points: [[1]], frontIndices: [], recommendedIndex: undefined, labels: undefined },
      'objectives',
    ],
    ['a repeated objective', { objectives: ['a', 'a'] }, 'objectives'],
    ['no points', { points: [], frontIndices: [], recommendedIndex: undefined, labels: undefined }, 'points'],
    [
      'a point of the wrong length',
      (i) => ({ ...i, points: i.points.map((p, j) => (j === 3 ? [...p, 1] : p)) }),
      'points[3]',
    ],
    [
      'a NaN value',
      (i) => ({ ...i, points: i.points.map((p, j) => (j === 7 ? [p[0]!, NaN] : p)) }),
      'points[7][1]',
    ],
    [
      'an infinite value',
      (i) => ({ ...i, points: i.points.map((p, j) => (j === 0 ? [Infinity, p[1]!] : p)) }),
      'points[0][0]',
    ],
    ['a front index out of range', { frontIndices: [1, 25] }, 'frontIndices[1]'],
    ['a fractional front index', { frontIndices: [0.5] }, 'frontIndices[0]'],
    ['a recommended index out of range', { recommendedIndex: -1 }, 'recommendedIndex'],
    ['labels of the wrong length', { labels: ['x'] }, 'labels'],
  ];
  for (const [what, change, field] of bad) {
    it(`refuses ${what} with an InvalidArgumentError naming ${field}`, async () => {
      const base = input(2);
      const error = await renderFrontPlot(
        typeof change === 'function' ? change(base) : { ...base, ...change },
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).details['field']).toBe(field);
      expect((error as Error).message).toContain(field);
    });
  }
});
