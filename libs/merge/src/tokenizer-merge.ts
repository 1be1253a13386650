/**
 * Embedding and head rows for a rebuilt vocabulary, as mergekit 0.1.4 does it
 * (mergekit/tokenizer/embed.py, PermutedEmbeddings): every input of a vocabulary tensor (the base and
 * the merged models) first gets a matrix in the output vocabulary, then the merge method runs on those
 * matrices as on any tensor. Row of output token t in input i:
 *
 * - t is in i's vocabulary (below its vocab_size) and not forced: i's own row of t;
 * - else the token's default row, the same for every input:
 *   - named in `tokenizer.tokens`: its source (zero; the token's row in a model; the row of another
 *     token, by id or text, of a model);
 *   - in exactly one input: that input's row;
 *   - in none: zero;
 *   - in the base: the base's row;
 *   - else the mean of the rows of the inputs that have it.
 * - rows past the vocabulary (`pad_to_multiple_of`): the mean of the input's own rows of the vocabulary.
 *
 * The plan holds this as a RowMap per tensor (no weight is read); the executor assembles row blocks
 * from it (assembleRows), reading only the source rows a block needs.
 */
import { InvalidArgumentError } from '@hm3/errors';
import type { FloatArray } from '@hm3/tensor';
import type { TokenOverride } from './recipe.js';
import type { ModelTokenizer, OutputVocabulary } from './vocabulary.js';

/** The default row of a token: zero, or the mean of rows of inputs (one row: a copy). */
export type DefaultRow =
  | { readonly kind: 'zero' }
  | { readonly kind: 'rows'; readonly rows: readonly { readonly input: number; readonly row: number }[] };

/** How one vocabulary tensor's inputs are laid out in the output vocabulary. */
export interface RowMap {
  /** Rows that hold tokens (the vocabulary's size). */
  readonly tokenRows: number;
  /** All output rows (tokenRows padded up to pad_to_multiple_of); the rest are each input's mean row. */
  readonly rows: number;
  /** Per input: the input's row of each output token row; -1: the token's default row. */
  readonly sourceRows: readonly Int32Array[];
  /** The default row of every token row some input takes it for. */
  readonly defaults: ReadonlyMap<number, DefaultRow>;
  /** Tokens no input has (and no override names): their rows are zero. */
  readonly noRow: readonly string[];
}

/** A token named in `tokenizer.tokens` whose row cannot be found (a token absent from the named model, an id out of range). */
export class TokenRowError extends InvalidArgumentError {
  constructor(field: string, reason: string, details: Record<string, unknown> = {}) {
    super(`${field}: ${reason}`, { field, ...details });
  }
}

/** One input of a vocabulary tensor: its model key, tokenizer and the rows its tensor has. */
export interface RowMapInput {
  readonly key: string;
  readonly tokenizer: ModelTokenizer;
  readonly tensorRows: number;
}

/** Output rows after padding to a multiple of `multiple` (null: none). */
export function paddedRows(tokenRows: number, multiple: number | null): number {
  if (multiple === null || multiple <= 1 || tokenRows % multiple === 0) return tokenRows;
  return (Math.floor(tokenRows / multiple) + 1) * multiple;
}

/** The permutation of one model: its row of each output token, -1 where it lacks the token. */
export function permutation(vocab: OutputVocabulary, tok: ModelTokenizer): Int32Array {
  const p = new Int32Array(vocab.tokens.length).fill(-1);
  vocab.tokens.forEach((token, id) => {
    const row = tok.vocab.get(token);
    if (row !== undefined && row < tok.vocabSize) p[id] = row;
  });
  return p;
}

/**
 * The RowMap of one vocabulary tensor over `inputs` (the base first when the tensor has one);
 * `baseIndex` is the recipe's base among them (null: none). Throws TokenRowError for an override whose
 * row does not exist, naming its field.
 */
export function planRowMap(
  vocab: OutputVocabulary,
  inputs: readonly RowMapInput[],
  baseIndex: number | null,
  overrides: readonly TokenOverride[],
  padToMultipleOf: number | null,
): RowMap {
  const tokenRows = vocab.tokens.length;
  const perms = inputs.map((i) => permutation(vocab, i.tokenizer));
  const inputOf = (key: string, field: string): number => {
    const i = inputs.findIndex((x) => x.key === key);
    if (i < 0)
      throw new TokenRowError(field, `model ${key} is not an input of this tensor's merge`, { model: key });
    return i;
  };
  const overrideRow = new Map<number, { row: DefaultRow; force: boolean }>();
  for (const o of overrides) {
    const id = vocab.vocab.get(o.token);
    if (id === undefined) continue; // every key is added to the vocabulary; kept for safety
    const field = `tokenizer.tokens[${JSON.stringify(o.token)}].source`;
    let row: DefaultRow;
    const s = o.source;
    if (s.kind === 'zero') row = { kind: 'zero' };
    else if (s.kind === 'model') {
      const i = inputOf(keyOf(s.model), field);
      const r = perms[i]![id]!;
      if (r < 0)
        throw new TokenRowError(
          field,
          `token ${JSON.stringify(o.token)} is not in the vocabulary of ${inputs[i]!.key}`,
          {
            token: o.token,
            model: inputs[i]!.key,
          },
        );
      row = { kind: 'rows', rows: [{ input: i, row: r }] };
    } else {
      const i = inputOf(keyOf(s.model), `${field}.model`);
      let r: number;
      if (s.tokenId !== null) {
        r = s.tokenId;
        if (r >= inputs[i]!.tensorRows)
          throw new TokenRowError(
            `${field}.token_id`,
            `token id ${r} is out of range for ${inputs[i]!.key} (${inputs[i]!.tensorRows} rows)`,
            {
              model: inputs[i]!.key,
            },
          );
      } else {
        const found = inputs[i]!.tokenizer.vocab.get(s.token!);
        if (found === undefined)
          throw new TokenRowError(
            `${field}.token`,
            `token ${JSON.stringify(s.token)} is not in the vocabulary of ${inputs[i]!.key}`,
            {
              token: s.token,
              model: inputs[i]!.key,
            },
          );
        if (found >= inputs[i]!.tensorRows)
          throw new TokenRowError(
            `${field}.token`,
            `token ${JSON.stringify(s.token)} has id ${found}, out of range for ${inputs[i]!.key} (${inputs[i]!.tensorRows} rows)`,
            {
              model: inputs[i]!.key,
            },
          );
        r = found;
      }
      row = { kind: 'rows', rows: [{ input: i, row: r }] };
    }
    overrideRow.set(id, { row, force: o.force });
  }

  const sourceRows = perms.map((p) => Int32Array.from(p));
  const defaults = new Map<number, DefaultRow>();
  const noRow: string[] = [];
  for (let id = 0; id < tokenRows; id++) {
    const o = overrideRow.get(id);
    const missing = sourceRows.some((p) => p[id]! < 0);
    if (!missing && (o === undefined || !o.force)) continue;
    if (o !== undefined) {
      if (o.force) for (const p of sourceRows) p[id] = -1;
      defaults.set(id, o.row);
      continue;
    }
    const present = perms.map((p, i) => ({ input: i, row: p[id]! })).filter((x) => x.row >= 0);
    if (present.length === 0) {
      defaults.set(id, { kind: 'zero' });
      noRow.push(vocab.tokens[id]!);
    } else if (present.length === 1) defaults.set(id, { kind: 'rows', rows: present });
    else if (baseIndex !== null && perms[baseIndex]![id]! >= 0)
      defaults.set(id, { kind: 'rows', rows: [{ input: baseIndex, row: perms[baseIndex]![id]! }] });
    else defaults.set(id, { kind: 'rows', rows: present });
  }
  return { tokenRows, rows: paddedRows(tokenRows, padToMultipleOf), sourceRows, defaults, noRow };
}

function keyOf(ref: { uri: string; modelId: string }): string {
  return ref.modelId !== '' ? ref.modelId : ref.uri;
}

/** Reads rows [start, end) of input `input`'s tensor, decoded to the compute dtype. */
export type ReadRows = (input: number, start: number, end: number) => Promise<FloatArray>;

/**
 * Writes output rows [r0, r1) of input `input` into `out` (row-major, `cols` per row): its own rows read
 * in runs of consecutive rows, default rows from `defaultRows` (computeDefaults), padding rows from
 * `paddingRow` (the input's mean token row; required when the block reaches past tokenRows).
 */
export async function assembleRows(
  map: RowMap,
  input: number,
  r0: number,
  r1: number,
  cols: number,
  read: ReadRows,
  defaultRows: ReadonlyMap<number, FloatArray>,
  paddingRow: FloatArray | null,
  out: FloatArray,
): Promise<void> {
  const p = map.sourceRows[input]!;
  const end = Math.min(r1, map.tokenRows);
  let r = r0;
  while (r < end) {
    const src = p[r]!;
    if (src < 0) {
      const d = defaultRows.get(r);
      if (d === undefined) throw new Error(`no default row for output row ${r}`);
      out.set(d, (r - r0) * cols);
      r++;
      continue;
    }
    let n = 1;
    while (r + n < end && p[r + n] === src + n) n++;
    out.set(await read(input, src, src + n), (r - r0) * cols);
    r += n;
  }
  for (let q = Math.max(r0, map.tokenRows); q < r1; q++) {
    if (paddingRow === null) throw new Error('padding rows need the mean row');
    out.set(paddingRow, (q - r0) * cols);
  }
}

/**
 * The default rows some input takes within output rows [r0, r1): zero, or the mean (accumulated in f64)
 * of the source rows, in the compute dtype.
 */
export async function computeDefaults(
  map: RowMap,
  r0: number,
  r1: number,
  cols: number,
  read: ReadRows,
  f64: boolean,
): Promise<Map<number, FloatArray>> {
  const out = new Map<number, FloatArray>();
  for (let r = r0; r < Math.min(r1, map.tokenRows); r++) {
    const d = map.defaults.get(r);
    if (d === undefined) continue;
    const row = f64 ? new Float64Array(cols) : new Float32Array(cols);
    if (d.kind === 'rows') {
      if (d.rows.length === 1) row.set(await read(d.rows[0]!.input, d.rows[0]!.row, d.rows[0]!.row + 1));
      else {
        const sum = new Float64Array(cols);
        for (const s of d.rows) {
          const x = await read(s.input, s.row, s.row + 1);
          for (let c = 0; c < cols; c++) sum[c] = sum[c]! + x[c]!;
        }
        for (let c = 0; c < cols; c++) row[c] = sum[c]! / d.rows.length;
      }
    }
    out.set(r, row);
  }
  return out;
}
