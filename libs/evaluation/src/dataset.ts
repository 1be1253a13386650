/**
 * Evaluation datasets: JSONL files of examples (one JSON object per line), referenced by a
 * DatasetRef. A reference names a JSONL file, or a folder of split files (`<split>.jsonl`), either as
 * a path (inside the configured roots, when roots are given) or as `artifact://<id>` in the artifact
 * store. Datasets are registered like models: content-addressed (`dataset-<sha256>`), so every
 * evaluator replica reads the same bytes, and a reference may pin its sha256.
 *
 * Splits: a folder of split files is pre-split (split `x` reads `x.jsonl`). A single file is split by
 * a seeded permutation: `search` takes the first round(n * searchFraction) examples of the permutation,
 * `heldout` the rest, `full` everything.
 */
import { createHash } from 'node:crypto';
import { copyFile, readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactStore } from '@hm3/store';
import {
  DatasetDigestMismatchError,
  DatasetNotFoundError,
  EmptyDatasetError,
  InvalidDatasetError,
  InvalidTaskSpecError,
} from './errors.js';

/** A registered evaluation dataset (mirrors hm3.v1.DatasetRef). */
export interface DatasetRef {
  /** A JSONL file or a folder of `<split>.jsonl` files: a path, or `artifact://<id>`. */
  readonly uri: string;
  /** Hex sha256 of the dataset (see datasetDigest); when set, other bytes are refused. */
  readonly sha256?: string;
  /** Registry id, for logs. */
  readonly id?: string;
}

/** Where dataset references may resolve. */
export interface DatasetLocation {
  /** Folders a path reference must lie inside; absent: any path (library and CLI use). */
  readonly roots?: readonly string[];
  /** Where `artifact://<id>` references are read from. */
  readonly artifacts?: ArtifactStore;
}

/** One parsed JSONL line: its fields and its 1-based line number. */
export interface DatasetRow {
  readonly line: number;
  readonly fields: Readonly<Record<string, unknown>>;
}

export const ARTIFACT_SCHEME = 'artifact://';
/** The file of a registered single-file dataset inside its artifact folder. */
export const DATASET_FILE = 'data.jsonl';
/** Default share of a single-file dataset in the search split (hm3.v1.Objective.search_fraction). */
export const DEFAULT_SEARCH_FRACTION = 0.7;

/** Parses JSONL text: one JSON object per non-blank line; a bad line is reported with its number. */
export function parseJsonl(text: string, source: string): DatasetRow[] {
  const rows: DatasetRow[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new InvalidDatasetError(`malformed JSON: ${(error as Error).message}`, source, i + 1);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new InvalidDatasetError('a line must be a JSON object', source, i + 1);
    }
    rows.push({ line: i + 1, fields: value as Record<string, unknown> });
  });
  if (rows.length === 0) throw new EmptyDatasetError(source);
  return rows;
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The content digest of a dataset: a file's sha256, or for a folder the sha256 of its `*.jsonl`
 * files listed as `sha256sum` prints them (`<sha256>  <name>\n`, sorted by name).
 */
export async function datasetDigest(target: string): Promise<string> {
  if (!(await stat(target)).isDirectory()) return sha256Hex(await readFile(target));
  const names = (await readdir(target)).filter((n) => n.endsWith('.jsonl')).sort();
  let listing = '';
  for (const name of names) listing += `${sha256Hex(await readFile(path.join(target, name)))}  ${name}\n`;
  return sha256Hex(listing);
}

/** The artifact id of a dataset with this digest. */
export function datasetArtifactId(digest: string): string {
  return `dataset-${digest}`;
}

function inside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** What a reference names on disk: a file or a folder, and a lease to release once read. */
interface Resolved {
  readonly target: string;
  readonly release: () => void;
}

async function resolveRef(ref: DatasetRef, location: DatasetLocation): Promise<Resolved> {
  const { uri } = ref;
  if (uri === '') throw new InvalidTaskSpecError('dataset.uri', 'empty dataset reference');
  if (uri.includes('\0')) throw new InvalidTaskSpecError('dataset.uri', 'contains NUL');
  if (uri.startsWith(ARTIFACT_SCHEME)) {
    const id = uri.slice(ARTIFACT_SCHEME.length);
    if (!location.artifacts) {
      throw new InvalidTaskSpecError('dataset.uri', `"${uri}": no artifact store is configured`, { uri });
    }
    if (!(await location.artifacts.has(id))) throw new DatasetNotFoundError(uri, { artifactId: id });
    const lease = await location.artifacts.open(id);
    return { target: lease.path, release: () => lease.release() };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    throw new InvalidTaskSpecError(
      'dataset.uri',
      `"${uri}": only paths and artifact:// references are accepted`,
      {
        uri,
      },
    );
  }
  const roots = location.roots;
  let target: string;
  try {
    if (roots === undefined) {
      target = await realpath(path.resolve(uri));
    } else {
      target = await resolveInRoots(uri, roots);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new DatasetNotFoundError(uri, {}, error);
    throw error;
  }
  return { target, release: () => undefined };
}

async function resolveInRoots(uri: string, roots: readonly string[]): Promise<string> {
  let found: string | undefined;
  for (const root of roots) {
    const realRoot = await realpath(root);
    const lexical = path.isAbsolute(uri) ? path.resolve(uri) : path.resolve(realRoot, uri);
    const lexicalRoot = path.resolve(root);
    const candidate = inside(lexicalRoot, lexical)
      ? path.resolve(realRoot, path.relative(lexicalRoot, lexical))
      : lexical;
    if (!inside(realRoot, candidate)) continue;
    let real: string;
    try {
      real = await realpath(candidate);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        found ??= candidate;
        continue;
      }
      throw error;
    }
    if (!inside(realRoot, real)) {
      throw new InvalidTaskSpecError(
        'dataset.uri',
        `"${uri}" resolves (through a symlink) outside the dataset roots`,
        {
          uri,
        },
      );
    }
    return real;
  }
  if (found !== undefined) throw Object.assign(new Error(`no such file ${found}`), { code: 'ENOENT' });
  throw new InvalidTaskSpecError('dataset.uri', `"${uri}" is outside the dataset roots`, { uri });
}

/** The examples of one split of a dataset, with where they came from. */
export interface LoadedSplit {
  readonly rows: readonly DatasetRow[];
  /** The file read (for messages), e.g. `/data/math/search.jsonl`. */
  readonly source: string;
  /** Digest of the whole dataset (see datasetDigest). */
  readonly sha256: string;
  /** True when the split is its own file; false when it was cut from one file by the seeded permutation. */
  readonly presplit: boolean;
}

export interface SplitOptions {
  /** 'search' | 'heldout' | 'full', or the name of a split file of a folder dataset; default 'full'. */
  readonly split?: string;
  readonly searchFraction?: number;
  readonly seed?: number;
}

/** Reads one split of a dataset: resolves the reference, checks the pinned digest, parses, splits. */
export async function loadDatasetSplit(
  ref: DatasetRef,
  options: SplitOptions = {},
  location: DatasetLocation = {},
): Promise<LoadedSplit> {
  const split = options.split ?? 'full';
  const resolved = await resolveRef(ref, location);
  try {
    const digest = await datasetDigest(resolved.target);
    if (ref.sha256 !== undefined && ref.sha256 !== '' && ref.sha256.toLowerCase() !== digest) {
      throw new DatasetDigestMismatchError(ref.uri, ref.sha256, digest);
    }
    const isFolder = (await stat(resolved.target)).isDirectory();
    if (isFolder) {
      const names = (await readdir(resolved.target)).filter((n) => n.endsWith('.jsonl'));
      if (names.includes(`${split}.jsonl`)) {
        const file = path.join(resolved.target, `${split}.jsonl`);
        return {
          rows: parseJsonl(await readFile(file, 'utf8'), file),
          source: file,
          sha256: digest,
          presplit: true,
        };
      }
      if (names.includes(DATASET_FILE)) {
        const file = path.join(resolved.target, DATASET_FILE);
        const rows = parseJsonl(await readFile(file, 'utf8'), file);
        return { rows: splitRows(rows, split, options, file), source: file, sha256: digest, presplit: false };
      }
      throw new DatasetNotFoundError(ref.uri, {
        split,
        reason: `the folder has neither ${split}.jsonl nor ${DATASET_FILE}`,
        files: names.sort(),
      });
    }
    const rows = parseJsonl(await readFile(resolved.target, 'utf8'), resolved.target);
    return {
      rows: splitRows(rows, split, options, resolved.target),
      source: resolved.target,
      sha256: digest,
      presplit: false,
    };
  } finally {
    resolved.release();
  }
}

/** A seeded permutation of 0..n-1 (Fisher-Yates over mulberry32): the same seed, the same order. */
export function seededPermutation(n: number, seed: number): number[] {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** Cuts the search or held-out part out of a single-file dataset (rows keep their file order). */
export function splitRows(
  rows: readonly DatasetRow[],
  split: string,
  options: SplitOptions,
  source: string,
): DatasetRow[] {
  if (split === 'full') return [...rows];
  if (split !== 'search' && split !== 'heldout') {
    throw new InvalidTaskSpecError(
      'split',
      `"${split}" needs a folder dataset holding ${split}.jsonl; a single file has the splits search, heldout and full`,
      { split, source },
    );
  }
  const fraction = options.searchFraction ?? DEFAULT_SEARCH_FRACTION;
  if (!(fraction > 0 && fraction < 1)) {
    throw new InvalidTaskSpecError('searchFraction', `must lie in (0, 1), got ${fraction}`);
  }
  const order = seededPermutation(rows.length, options.seed ?? 0);
  const cut = Math.round(rows.length * fraction);
  const chosen = split === 'search' ? order.slice(0, cut) : order.slice(cut);
  const picked = chosen.sort((a, b) => a - b).map((i) => rows[i]!);
  if (picked.length === 0) throw new EmptyDatasetError(source, `its ${split} split is empty`);
  return picked;
}

/**
 * Registers a dataset (a JSONL file, or a folder of `<split>.jsonl` files) in the artifact store
 * under its content id; every file is parsed first, so a malformed dataset is refused. Registering
 * the same bytes twice returns the same reference.
 */
export async function registerDataset(
  artifacts: ArtifactStore,
  source: string,
): Promise<Required<DatasetRef> & { created: boolean }> {
  let isFolder: boolean;
  try {
    isFolder = (await stat(source)).isDirectory();
  } catch (error) {
    throw new DatasetNotFoundError(source, {}, error);
  }
  const files = isFolder
    ? (await readdir(source))
        .filter((n) => n.endsWith('.jsonl'))
        .sort()
        .map((n) => ({ from: path.join(source, n), name: n }))
    : [{ from: source, name: DATASET_FILE }];
  if (files.length === 0) throw new EmptyDatasetError(source, 'the folder holds no .jsonl file');
  for (const f of files) parseJsonl(await readFile(f.from, 'utf8'), f.from);
  // The artifact's own digest: a single file is stored as data.jsonl, so it is digested as a folder.
  let listing = '';
  for (const f of files) listing += `${sha256Hex(await readFile(f.from))}  ${f.name}\n`;
  const digest = sha256Hex(listing);
  const id = datasetArtifactId(digest);
  const written = await artifacts.write(id, async (dir) => {
    for (const f of files) await copyFile(f.from, path.join(dir, f.name));
  });
  return { id, uri: `${ARTIFACT_SCHEME}${id}`, sha256: digest, created: written.created };
}
