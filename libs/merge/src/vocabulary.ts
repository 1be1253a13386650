/**
 * Vocabularies of a merge (`tokenizer_source: base | union | <model>`, the `tokenizer:` block), as
 * mergekit 0.1.4 builds them (mergekit/tokenizer/build.py) on Hugging Face `tokenizer.json` files:
 *
 * - a model's vocabulary is transformers' `get_vocab()`: the tokenizer model's vocabulary with the added
 *   tokens over it; a token whose id is at or above the model's config `vocab_size` has no embedding row
 *   in that model (it is absent from it);
 * - `base`: the base model's tokenizer (the first model's without a base), stripped of tokens at or above
 *   its `vocab_size` (BPE only, as mergekit);
 * - `union`: the stripped base tokenizer, then every other model's plain tokens it lacks (added as
 *   normalized, non-special added tokens), then every model's added tokens (the first model listing a
 *   token gives its settings), models in recipe order (mergekit iterates a Python set there, so its order
 *   of new tokens changes from run to run; HM3's is fixed);
 * - `<model>`: that model's tokenizer, unstripped;
 * - the keys of `tokenizer.tokens` are added last, as plain added tokens.
 *
 * Adding a token follows the tokenizers library (AddedVocabulary::add_tokens): a token already added is
 * ignored; one in the model's vocabulary keeps its id and becomes an added token; a new one gets the next
 * id (the model's vocabulary size, or one past the largest added id).
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '@hm3/errors';

/** An added token of a tokenizer.json (transformers' AddedToken) with its id. */
export interface AddedToken {
  readonly id: number;
  readonly content: string;
  readonly singleWord: boolean;
  readonly lstrip: boolean;
  readonly rstrip: boolean;
  readonly normalized: boolean;
  readonly special: boolean;
}

/** A model's tokenizer as a merge sees it (from its tokenizer.json). */
export interface ModelTokenizer {
  /** The model folder and the recipe field naming the model (`models[1].model`). */
  readonly dir: string;
  readonly field: string;
  /** The parsed tokenizer.json. */
  readonly json: Readonly<Record<string, unknown>>;
  /** The tokenizer model's own vocabulary (token -> id), without the added tokens. */
  readonly modelVocab: ReadonlyMap<string, number>;
  /** The added tokens, by id. */
  readonly added: readonly AddedToken[];
  /** transformers' get_vocab(): every token with its id. */
  readonly vocab: ReadonlyMap<string, number>;
  /** Rows of the model's embeddings (config vocab_size): tokens at or above have no row. */
  readonly vocabSize: number;
}

/** A model whose folder has no tokenizer.json, where the merge builds a vocabulary from it. */
export class MissingTokenizerError extends FailedPreconditionError {
  constructor(dir: string, field: string, reason: string) {
    super(`${field}: ${dir}: ${reason}`, { path: dir, field });
  }
}

/** A tokenizer.json the merge cannot read, or cannot rebuild (e.g. stripping a non-BPE vocabulary). */
export class InvalidTokenizerError extends InvalidArgumentError {
  constructor(file: string, field: string, reason: string) {
    super(`${field}: ${file}: ${reason}`, { file, field });
  }
}

function bool(v: unknown, fallback: boolean): boolean {
  return typeof v === 'boolean' ? v : fallback;
}

function addedFromJson(e: Record<string, unknown>): AddedToken {
  return {
    id: Number(e['id']),
    content: String(e['content']),
    singleWord: bool(e['single_word'], false),
    lstrip: bool(e['lstrip'], false),
    rstrip: bool(e['rstrip'], false),
    normalized: bool(e['normalized'], !bool(e['special'], false)),
    special: bool(e['special'], false),
  };
}

function addedToJson(t: AddedToken): Record<string, unknown> {
  return {
    id: t.id,
    content: t.content,
    single_word: t.singleWord,
    lstrip: t.lstrip,
    rstrip: t.rstrip,
    normalized: t.normalized,
    special: t.special,
  };
}

/** The model part's vocabulary: an object (BPE, WordPiece, WordLevel) or a list of [token, score] (Unigram). */
function modelVocabOf(json: Record<string, unknown>, file: string, field: string): Map<string, number> {
  const model = json['model'] as Record<string, unknown> | undefined;
  const vocab = model?.['vocab'];
  if (Array.isArray(vocab)) {
    return new Map(vocab.map((entry, i) => [String((entry as unknown[])[0]), i]));
  }
  if (vocab !== null && typeof vocab === 'object') {
    return new Map(Object.entries(vocab as Record<string, number>).map(([k, v]) => [k, Number(v)]));
  }
  throw new InvalidTokenizerError(file, field, 'tokenizer.json has no model.vocab');
}

function vocabOf(modelVocab: ReadonlyMap<string, number>, added: readonly AddedToken[]): Map<string, number> {
  const vocab = new Map(modelVocab);
  for (const t of added) vocab.set(t.content, t.id);
  return vocab;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Reads a model's tokenizer.json; `vocabSize` is its config's vocab_size (its embedding rows). */
export async function readModelTokenizer(
  dir: string,
  field: string,
  vocabSize: number,
): Promise<ModelTokenizer> {
  const file = path.join(dir, 'tokenizer.json');
  if (!(await isFile(file))) {
    const slow =
      (await isFile(path.join(dir, 'tokenizer.model'))) || (await isFile(path.join(dir, 'vocab.json')));
    throw new MissingTokenizerError(
      dir,
      field,
      slow
        ? 'the model has no tokenizer.json (only slow tokenizer files); building a vocabulary needs the fast tokenizer file'
        : 'the model has no tokenizer files (tokenizer.json); a tokenizer merge needs one in every model',
    );
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new InvalidTokenizerError(file, field, `not JSON (${(error as Error).message})`);
  }
  if (json === null || typeof json !== 'object')
    throw new InvalidTokenizerError(file, field, 'not a JSON object');
  const modelVocab = modelVocabOf(json, file, field);
  const rawAdded = Array.isArray(json['added_tokens'])
    ? (json['added_tokens'] as Record<string, unknown>[])
    : [];
  const added = rawAdded.map(addedFromJson).sort((a, b) => a.id - b.id);
  return { dir, field, json, modelVocab, added, vocab: vocabOf(modelVocab, added), vocabSize };
}

/**
 * mergekit's get_stripped_tokenizer: the tokenizer without the tokens whose id is at or above the model's
 * vocab_size (added tokens, vocabulary entries and the BPE merges that use them). Only BPE is supported.
 */
export function stripTokenizer(tok: ModelTokenizer): ModelTokenizer {
  const unused = new Set([...tok.vocab].filter(([, id]) => id >= tok.vocabSize).map(([t]) => t));
  if (unused.size === 0) return tok;
  const file = path.join(tok.dir, 'tokenizer.json');
  const model = tok.json['model'] as Record<string, unknown>;
  if (model['type'] !== 'BPE') {
    throw new InvalidTokenizerError(
      file,
      tok.field,
      `${unused.size} token(s) have ids at or above vocab_size ${tok.vocabSize}; stripping them is supported for BPE tokenizers only (this one is ${String(model['type'])})`,
    );
  }
  const vocab = Object.fromEntries(
    Object.entries(model['vocab'] as Record<string, number>).filter(([t]) => !unused.has(t)),
  );
  const merges = ((model['merges'] as unknown[] | undefined) ?? []).filter((m) => {
    const parts = typeof m === 'string' ? m.split(' ') : (m as string[]);
    return !parts.some((p) => unused.has(p));
  });
  const added = tok.added.filter((t) => t.id < tok.vocabSize);
  const json = { ...tok.json, added_tokens: added.map(addedToJson), model: { ...model, vocab, merges } };
  const modelVocab = new Map(Object.entries(vocab).map(([k, v]) => [k, Number(v)]));
  return { ...tok, json, modelVocab, added, vocab: vocabOf(modelVocab, added) };
}

type TokenSettings = Omit<AddedToken, 'id'>;

/** A plain token added by name (transformers' add_tokens(str)): normalized, not special. */
export function plainToken(content: string): TokenSettings {
  return { content, singleWord: false, lstrip: false, rstrip: false, normalized: true, special: false };
}

/** The output tokenizer under construction: a tokenizer model's vocabulary and the added tokens over it. */
class TokenizerBuilder {
  private readonly added = new Map<string, AddedToken>();
  constructor(
    private readonly modelVocab: ReadonlyMap<string, number>,
    added: readonly AddedToken[],
  ) {
    for (const t of added) this.added.set(t.content, t);
  }

  /** AddedVocabulary::add_tokens for one token. */
  add(token: TokenSettings): void {
    if (token.content === '' || this.added.has(token.content)) return;
    let id = this.modelVocab.get(token.content);
    if (id === undefined) {
      const size = this.modelVocab.size;
      let max = -1;
      for (const t of this.added.values()) max = Math.max(max, t.id);
      id = max < 0 ? size : max >= size || size === 0 ? max + 1 : size;
    }
    for (const [content, t] of this.added) if (t.id === id) this.added.delete(content);
    this.added.set(token.content, { ...token, id });
  }

  addedTokens(): AddedToken[] {
    return [...this.added.values()].sort((a, b) => a.id - b.id);
  }
}

/** Where the output vocabulary comes from. */
export type VocabularySource =
  { readonly kind: 'base' } | { readonly kind: 'union' } | { readonly kind: 'model'; readonly key: string };

/** The merged model's vocabulary and the tokenizer files that describe it. */
export interface OutputVocabulary {
  readonly source: VocabularySource;
  /** The model whose tokenizer files the output's are built from. */
  readonly from: ModelTokenizer;
  /** token -> id (get_vocab() of the written tokenizer). */
  readonly vocab: ReadonlyMap<string, number>;
  /** Tokens by id (ids are 0..size-1). */
  readonly tokens: readonly string[];
  readonly added: readonly AddedToken[];
  /** The written tokenizer.json. */
  readonly json: Readonly<Record<string, unknown>>;
  /** The tokenizer files equal the source model's (nothing stripped or added): they are copied as they are. */
  readonly unchanged: boolean;
}

/**
 * The output vocabulary (mergekit's build_tokenizer): `tokenizers` holds every model of the merge, the
 * tokenizer base (the recipe's base, else its first model) first, the others in recipe order, keyed by
 * model key; `addTokens` are the keys of the `tokenizer.tokens` block.
 */
export function buildVocabulary(
  source: VocabularySource,
  tokenizers: ReadonlyMap<string, ModelTokenizer>,
  addTokens: readonly string[],
): OutputVocabulary {
  const [baseKey, baseRaw] = [...tokenizers][0]!;
  const base = stripTokenizer(baseRaw);
  let from: ModelTokenizer;
  const builder = (t: ModelTokenizer) => new TokenizerBuilder(t.modelVocab, t.added);
  let b: TokenizerBuilder;
  if (source.kind === 'model') {
    from = tokenizers.get(source.key)!;
    b = builder(from);
  } else {
    from = base;
    b = builder(base);
  }
  if (source.kind === 'union') {
    const plain: string[] = [];
    const seen = new Set<string>();
    const addedInfo = new Map<string, TokenSettings>();
    for (const [key, tok] of tokenizers) {
      const t = key === baseKey ? base : tok;
      for (const [token, id] of [...t.vocab].sort((x, y) => x[1] - y[1])) {
        if (id >= t.vocabSize) continue;
        if (!seen.has(token)) plain.push(token);
        seen.add(token);
      }
      for (const a of t.added) {
        if (a.id >= t.vocabSize || addedInfo.has(a.content)) continue;
        const { id: _id, ...settings } = a;
        addedInfo.set(a.content, settings);
      }
    }
    for (const token of plain) {
      if (addedInfo.has(token) || base.vocab.has(token)) continue;
      b.add(plainToken(token));
    }
    for (const settings of addedInfo.values()) b.add(settings);
  }
  for (const token of addTokens) b.add(plainToken(token));

  const added = b.addedTokens();
  const vocab = vocabOf(from.modelVocab, added);
  const tokens: string[] = [];
  for (const [token, id] of vocab) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab.size || tokens[id] !== undefined) {
      throw new InvalidTokenizerError(
        path.join(from.dir, 'tokenizer.json'),
        from.field,
        `token ids are not 0..${vocab.size - 1} (token ${JSON.stringify(token)} has id ${id}); its vocabulary cannot index embedding rows`,
      );
    }
    tokens[id] = token;
  }
  const raw = source.kind === 'model' ? from : baseRaw;
  const unchanged =
    from === raw && added.length === from.added.length && added.every((t, i) => sameToken(t, from.added[i]!));
  const json = { ...from.json, added_tokens: added.map(addedToJson) };
  return { source, from, vocab, tokens, added, json, unchanged };
}

function sameToken(a: AddedToken, b: AddedToken): boolean {
  return (
    a.id === b.id &&
    a.content === b.content &&
    a.singleWord === b.singleWord &&
    a.lstrip === b.lstrip &&
    a.rstrip === b.rstrip &&
    a.normalized === b.normalized &&
    a.special === b.special
  );
}

/**
 * The tokenizer files of the output: tokenizer.json as built, tokenizer_config.json of the source
 * model with its added_tokens_decoder following the added tokens, special_tokens_map.json as it is.
 * Slow-tokenizer files (tokenizer.model, vocab.json, merges.txt, added_tokens.json) would contradict a
 * rebuilt vocabulary and are left out.
 */
export async function tokenizerFiles(vocab: OutputVocabulary): Promise<{ name: string; data: string }[]> {
  const dir = vocab.from.dir;
  const files: { name: string; data: string }[] = [
    { name: 'tokenizer.json', data: JSON.stringify(vocab.json, null, 2) + '\n' },
  ];
  const configPath = path.join(dir, 'tokenizer_config.json');
  let config: Record<string, unknown> = { tokenizer_class: 'PreTrainedTokenizerFast' };
  if (await isFile(configPath)) {
    try {
      config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new InvalidTokenizerError(configPath, vocab.from.field, `not JSON (${(error as Error).message})`);
    }
  }
  config['added_tokens_decoder'] = Object.fromEntries(
    vocab.added.map((t) => [
      String(t.id),
      {
        content: t.content,
        lstrip: t.lstrip,
        normalized: t.normalized,
        rstrip: t.rstrip,
        single_word: t.singleWord,
        special: t.special,
      },
    ]),
  );
  files.push({ name: 'tokenizer_config.json', data: JSON.stringify(config, null, 2) + '\n' });
  const mapPath = path.join(dir, 'special_tokens_map.json');
  if (await isFile(mapPath))
    files.push({ name: 'special_tokens_map.json', data: await readFile(mapPath, 'utf8') });
  return files;
}
