/**
 * The Pareto-front plot of `hm3 front` / `hm3 recommend` / `hm3 demo`: every scored candidate grey,
 * the front members highlighted, the recommended one marked and labelled. Two objectives give one
 * scatter; three or more the pairwise scatter matrix (the lower triangle: one panel per pair of
 * objectives, row r plotting objective r against each earlier objective, columns aligned).
 *
 * Drawn by Vega-Lite (compiled to a Vega spec, rendered to SVG by a headless vega View: no canvas) and
 * rasterised by resvg (@resvg/resvg-js, prebuilt native binaries). Every objective is higher-is-better,
 * as the optimizer stores them; the axis titles and the subtitle say so.
 */
import { InvalidArgumentError } from '@hm3/errors';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface FrontPlotInput {
  /** Objective names, in the order of each point's values (two or more). */
  readonly objectives: readonly string[];
  /** One value per objective for every candidate (higher is better). */
  readonly points: readonly (readonly number[])[];
  /** Indices into `points` of the front members. */
  readonly frontIndices: readonly number[];
  /** Index into `points` of the recommended candidate, marked and labelled. */
  readonly recommendedIndex?: number | undefined;
  readonly title?: string | undefined;
  /** One label per point (e.g. candidate ids); the recommended point's label is drawn beside it. */
  readonly labels?: readonly string[] | undefined;
}

export interface FrontPlot {
  readonly svg: string;
  /** The SVG rasterised at FRONT_PLOT_PNG_SCALE times its size. */
  readonly png: Buffer;
}

/**
 * Widest caption beside the recommended point (px, as vega estimates text without a canvas: 0.8 x the
 * font size per character); longer ones end in an ellipsis instead of widening the panel.
 */
const CAPTION_LIMIT = 240;
/** The PNG is the SVG's width and height times this. */
export const FRONT_PLOT_PNG_SCALE = 2;
/** Side of one scatter panel, in SVG pixels. */
const PANEL = 220;
const COLORS = { candidate: '#b0b0b0', front: '#1f6fb4', recommended: '#d62728' } as const;
type Kind = keyof typeof COLORS;
const KINDS = Object.keys(COLORS) as Kind[];

interface Row {
  readonly index: number;
  readonly kind: Kind;
  readonly label: string;
  readonly [field: `o${number}`]: number;
}

/** Renders the front plot as SVG and PNG. Bad input is an InvalidArgumentError naming the field. */
export async function renderFrontPlot(input: FrontPlotInput): Promise<FrontPlot> {
  validate(input);
  const spec = frontPlotSpec(input);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none', logLevel: vega.Error });
  try {
    const svg = await view.toSVG();
    const png = new Resvg(svg, {
      fitTo: { mode: 'zoom', value: FRONT_PLOT_PNG_SCALE },
      font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
    })
      .render()
      .asPng();
    return { svg, png };
  } finally {
    view.finalize();
  }
}

/** The Vega-Lite spec of the plot (exported for tests and for users who render it elsewhere). */
export function frontPlotSpec(input: FrontPlotInput): TopLevelSpec {
  const { objectives, points, frontIndices, recommendedIndex } = input;
  const front = new Set(frontIndices);
  const kindOf = (i: number): Kind =>
    i === recommendedIndex ? 'recommended' : front.has(i) ? 'front' : 'candidate';
  const rows: Row[] = points.map((p, index) => ({
    index,
    kind: kindOf(index),
    label: input.labels?.[index] ?? `#${index}`,
    ...Object.fromEntries(p.map((v, j) => [`o${j}`, v])),
  }));
  // drawn in data order: grey first, the front over it, the recommended point on top
  rows.sort((a, b) => KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind) || a.index - b.index);

  // legend labels with counts (the subtitle stays short: without a canvas vega estimates text widths generously)
  const names: Record<Kind, string> = {
    candidate: `other candidates (${rows.filter((r) => r.kind === 'candidate').length})`,
    front: `Pareto front (${front.size} of ${points.length})`,
    recommended: 'recommended',
  };
  const legend = KINDS.reduceRight(
    (rest, k) => `datum.value === ${JSON.stringify(k)} ? ${JSON.stringify(names[k])} : ${rest}`,
    'datum.label',
  );
  const axisTitle = (j: number) => `${objectives[j]!} (higher is better)`;
  const panel = (x: number, y: number) => ({
    width: PANEL,
    height: PANEL,
    layer: [
      {
        mark: { type: 'point' as const, filled: true, opacity: 0.9 },
        encoding: {
          x: { field: `o${x}`, type: 'quantitative' as const, scale: { zero: false }, title: axisTitle(x) },
          y: { field: `o${y}`, type: 'quantitative' as const, scale: { zero: false }, title: axisTitle(y) },
          color: kindChannel(
            legend,
            KINDS.map((k) => COLORS[k]),
          ),
          shape: kindChannel(legend, ['circle', 'circle', 'diamond']),
          size: kindChannel(legend, [30, 60, 160], 'ordinal'),
        },
      },
      ...(recommendedIndex === undefined
        ? []
        : [
            {
              transform: [
                { filter: "datum.kind === 'recommended'" },
                { calculate: "'recommended: ' + datum.label", as: 'caption' },
              ],
              mark: {
                type: 'text' as const,
                align: 'left' as const,
                dx: 8,
                dy: -8,
                fontWeight: 'bold' as const,
                // A long label (a path's description) would widen the panel: vega sizes it to the text.
                limit: CAPTION_LIMIT,
              },
              encoding: {
                x: { field: `o${x}`, type: 'quantitative' as const },
                y: { field: `o${y}`, type: 'quantitative' as const },
                text: { field: 'caption', type: 'nominal' as const },
                color: { value: COLORS.recommended },
              },
            },
          ]),
    ],
  });

  const k = objectives.length;
  const body =
    k === 2
      ? panel(0, 1)
      : {
          vconcat: Array.from({ length: k - 1 }, (_, r) => ({
            hconcat: Array.from({ length: r + 1 }, (_, c) => panel(c, r + 1)),
          })),
        };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: input.title ?? 'Pareto front',
      subtitle: 'higher is better on every objective',
      anchor: 'start',
    },
    background: 'white',
    padding: 12,
    data: { values: rows },
    ...body,
  } as TopLevelSpec;
}

/** One legend for colour, shape and size of the point kinds (vega-lite merges equal legends). */
function kindChannel(
  labelExpr: string,
  range: readonly (string | number)[],
  type: 'nominal' | 'ordinal' = 'nominal',
) {
  return {
    field: 'kind',
    type,
    sort: KINDS,
    title: null,
    scale: { domain: KINDS, range: [...range] },
    legend: { labelExpr, labelLimit: 0 },
  };
}

function validate(input: FrontPlotInput): void {
  const bad = (field: string, message: string): never => {
    throw new InvalidArgumentError(`front plot: ${field} ${message}`, { field });
  };
  const { objectives, points, frontIndices, recommendedIndex, labels } = input;
  if (!Array.isArray(objectives) || objectives.length < 2)
    bad('objectives', `must name at least two objectives, got ${JSON.stringify(objectives)}`);
  objectives.forEach((o, j) => {
    if (typeof o !== 'string' || o.trim() === '') bad(`objectives[${j}]`, 'must be a non-empty string');
  });
  if (new Set(objectives).size !== objectives.length) bad('objectives', 'must not repeat a name');
  if (!Array.isArray(points) || points.length === 0) bad('points', 'must hold at least one point');
  points.forEach((p: readonly number[], i) => {
    if (!Array.isArray(p) || p.length !== objectives.length)
      bad(
        `points[${i}]`,
        `must have ${objectives.length} values (one per objective), got ${Array.isArray(p) ? p.length : typeof p}`,
      );
    p.forEach((v: number, j: number) => {
      if (typeof v !== 'number' || !Number.isFinite(v))
        bad(`points[${i}][${j}]`, `must be a finite number, got ${String(v)}`);
    });
  });
  const index = (field: string, v: unknown) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= points.length)
      bad(field, `must be an index into points [0, ${points.length}), got ${String(v)}`);
  };
  if (!Array.isArray(frontIndices)) bad('frontIndices', 'must be a list of indices');
  frontIndices.forEach((v, k) => index(`frontIndices[${k}]`, v));
  if (recommendedIndex !== undefined) index('recommendedIndex', recommendedIndex);
  if (labels !== undefined) {
    if (!Array.isArray(labels) || labels.length !== points.length)
      bad(
        'labels',
        `must hold one label per point (${points.length}), got ${Array.isArray(labels) ? labels.length : typeof labels}`,
      );
    labels.forEach((l, i) => {
      if (typeof l !== 'string') bad(`labels[${i}]`, 'must be a string');
    });
  }
}
