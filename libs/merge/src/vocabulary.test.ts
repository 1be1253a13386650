// The output vocabulary of tokenizer merges (mergekit's build_tokenizer on tokenizer.json files): union
// order, the tokenizers library's rules for adding a token, stripping, and the files written.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '@hm3/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_VOCAB, writeTokenizerModel, type FixtureModel } from './tokenizer-fixtures.test-helper.js';
import {
  buildVocabulary,
  InvalidTokenizerError,
  MissingTokenizerError,
  readModelTokenizer,
  stripTokenizer,
  tokenizerFiles,
  type ModelTokenizer,
} from './vocabulary.js';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hm3-vocabulary-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let n = 0;
async function tokenizer(m: Omit<FixtureModel, 'seed'>, field = 'models[0].model'): Promise<ModelTokenizer> {
  const name = `m${n++}`;
  const dir = await writeTokenizerModel(root, name, { ...m, seed: n });
  const tokens = BASE_VOCAB.length + (m.extraVocab?.length ?? 0) + (m.added?.length ?? 0);
  return readModelTokenizer(dir, field, m.vocabSize ?? tokens);
}

const byId = (v: { tokens: readonly string[] }) => [...v.tokens];

describe('reading a tokenizer', () => {
  it("get_vocab(): the model's vocabulary with the added tokens over it", async () => {
    const t = await tokenizer({ added: ['<x>', { content: '<y>', special: true }] });
    expect(t.vocab.get('a')).toBe(3);
    expect(t.vocab.get('<x>')).toBe(10);
    expect(t.vocab.get('<y>')).toBe(11);
    expect(t.added.map((a) => [a.content, a.special, a.normalized])).toEqual([
      ['<pad>', true, false],
      ['<bos>', true, false],
      ['<eos>', true, false],
      ['<x>', false, true],
      ['<y>', true, false],
    ]);
  });

  it('a model without tokenizer.json is refused naming its field', async () => {
    const dir = await writeTokenizerModel(root, 'notok', { seed: 1, noTokenizer: true });
    const error = await readModelTokenizer(dir, 'models[2].model', 10).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MissingTokenizerError);
    expect(error).toBeInstanceOf(FailedPreconditionError);
    expect((error as Error).message).toMatch(
      /^models\[2\]\.model: .*notok: the model has no tokenizer files/,
    );
  });
});

describe('stripping (get_stripped_tokenizer)', () => {
  it('drops tokens at or above vocab_size from the vocabulary and the added tokens', async () => {
    const t = await tokenizer({ added: ['<x>', '<y>'], vocabSize: 11 });
    const s = stripTokenizer(t);
    expect(s.vocab.has('<y>')).toBe(false);
    expect(s.vocab.get('<x>')).toBe(10);
    expect(s.vocab.size).toBe(11);
    const model = (s.json as { model: { vocab: Record<string, number> } }).model;
    expect(Object.keys(model.vocab)).toHaveLength(10);
    expect(stripTokenizer(await tokenizer({ added: ['<x>'] }))).toBeTypeOf('object');
  });

  it('refuses to strip a tokenizer that is not BPE, as mergekit', async () => {
    const t = await tokenizer({ extraVocab: ['h'], vocabSize: 10 });
    const wordLevel = {
      ...t,
      json: { ...t.json, model: { ...(t.json['model'] as object), type: 'WordLevel' } },
    };
    expect(() => stripTokenizer(wordLevel)).toThrow(InvalidTokenizerError);
    expect(() => stripTokenizer(wordLevel)).toThrow(/BPE tokenizers only \(this one is WordLevel\)/);
  });
});

describe('the output vocabulary', () => {
  it('base: the base tokenizer as it is (unchanged: its files are copied)', async () => {
    const base = await tokenizer({ added: ['<t>'] });
    const a = await tokenizer({ added: ['<a>'] });
    const v = buildVocabulary(
      { kind: 'base' },
      new Map([
        ['base', base],
        ['a', a],
      ]),
      [],
    );
    expect(byId(v)).toEqual([...BASE_VOCAB, '<t>']);
    expect(v.unchanged).toBe(true);
  });

  it('union: the base, then plain tokens it lacks, then added tokens, models in recipe order', async () => {
    const base = await tokenizer({ added: [{ content: '<t>', special: true }] });
    const a = await tokenizer({
      extraVocab: ['h'],
      added: [{ content: '<t>', special: true }, { content: '<a>', special: true }, '<s>'],
    });
    const b = await tokenizer({ added: [{ content: '<s>', special: true }, '<b>'] });
    const v = buildVocabulary(
      { kind: 'union' },
      new Map([
        ['base', base],
        ['a', a],
        ['b', b],
      ]),
      [],
    );
    expect(byId(v)).toEqual([...BASE_VOCAB, '<t>', 'h', '<a>', '<s>', '<b>']);
    // a plain token of another model becomes a normalized, non-special added token
    const h = v.added.find((t) => t.content === 'h')!;
    expect([h.id, h.special, h.normalized]).toEqual([11, false, true]);
    // the first model listing an added token gives its settings (a's <s> is not special, b's is)
    expect(v.added.find((t) => t.content === '<s>')!.special).toBe(false);
    expect(v.unchanged).toBe(false);
    // the order follows the recipe: b before a gives b's tokens first
    const w = buildVocabulary(
      { kind: 'union' },
      new Map([
        ['base', base],
        ['b', b],
        ['a', a],
      ]),
      [],
    );
    expect(byId(w)).toEqual([...BASE_VOCAB, '<t>', 'h', '<s>', '<b>', '<a>']);
    expect(w.added.find((t) => t.content === '<s>')!.special).toBe(true);
  });

  it('union skips tokens a model has no embedding row for (id >= its vocab_size)', async () => {
    const base = await tokenizer({});
    const a = await tokenizer({ added: ['<a>', '<unused>'], vocabSize: 11 });
    const v = buildVocabulary(
      { kind: 'union' },
      new Map([
        ['base', base],
        ['a', a],
      ]),
      [],
    );
    expect(byId(v)).toEqual([...BASE_VOCAB, '<a>']);
  });

  it('<model>: that tokenizer, unstripped; tokens: keys are added last as plain tokens', async () => {
    const base = await tokenizer({});
    const a = await tokenizer({ added: ['<a>', '<b>'], vocabSize: 11 });
    const v = buildVocabulary(
      { kind: 'model', key: 'a' },
      new Map([
        ['base', base],
        ['a', a],
      ]),
      ['<new>', '<a>', 'c'],
    );
    // <a> is already there (ignored); "c" is in the model vocabulary: it keeps id 5 and becomes an added token
    expect(byId(v)).toEqual([...BASE_VOCAB, '<a>', '<b>', '<new>']);
    const c = v.added.find((t) => t.content === 'c')!;
    expect([c.id, c.normalized, c.special]).toEqual([5, true, false]);
    expect(v.added.map((t) => t.id)).toEqual([...v.added.map((t) => t.id)].sort((x, y) => x - y));
  });

  it('a new token takes one past the largest id (the tokenizers library rule)', async () => {
    const base = await tokenizer({ added: ['<x>'] });
    const v = buildVocabulary({ kind: 'base' }, new Map([['base', base]]), ['<y>', '<z>']);
    expect(v.vocab.get('<y>')).toBe(11);
    expect(v.vocab.get('<z>')).toBe(12);
  });

  it('writes tokenizer.json and tokenizer_config.json that agree on the added tokens', async () => {
    const base = await tokenizer({ added: ['<x>'] });
    const v = buildVocabulary({ kind: 'base' }, new Map([['base', base]]), ['<y>']);
    const files = Object.fromEntries(
      (await tokenizerFiles(v)).map((f) => [f.name, JSON.parse(f.data) as unknown]),
    );
    expect(Object.keys(files).sort()).toEqual([
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const json = files['tokenizer.json'] as { added_tokens: { id: number; content: string }[] };
    expect(json.added_tokens.map((t) => [t.id, t.content])).toEqual([
      [0, '<pad>'],
      [1, '<bos>'],
      [2, '<eos>'],
      [10, '<x>'],
      [11, '<y>'],
    ]);
    const config = files['tokenizer_config.json'] as {
      added_tokens_decoder: Record<string, { content: string }>;
      bos_token: string;
    };
    expect(config.added_tokens_decoder['11']!.content).toBe('<y>');
    expect(config.bos_token).toBe('<bos>');
  });

  it('refuses a vocabulary whose ids have holes (they cannot index rows)', async () => {
    const base = await tokenizer({});
    const holed = { ...base, vocab: new Map([...base.vocab].map(([t, id]) => [t, id === 9 ? 12 : id])) };
    expect(() =>
      buildVocabulary(
        { kind: 'model', key: 'h' },
        new Map([
          ['base', base],
          ['h', { ...holed, modelVocab: holed.vocab }],
        ]),
        [],
      ),
    ).toThrow(InvalidArgumentError);
  });
});
