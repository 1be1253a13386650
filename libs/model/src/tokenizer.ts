/**
 * Tokenisation from a model folder's tokenizer.json (+ tokenizer_config.json when present) with
 * @huggingface/tokenizers, the pure-JS implementation of HF tokenizers.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { MissingTokenizerError } from './errors.js';

export interface TextTokenizer {
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** Special tokens are skipped by default, as HF tokenizers' `Tokenizer.decode` does. */
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  tokenToId(token: string): number | undefined;
}

/** Loads the tokenizer of the model folder `dir`; MissingTokenizerError when it has no tokenizer.json. */
export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  const folder = path.resolve(dir);
  const file = path.join(folder, 'tokenizer.json');
  const json = await readJson(file);
  if (json === undefined) throw new MissingTokenizerError(file);
  const config = (await readJson(path.join(folder, 'tokenizer_config.json'))) ?? {};
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json as object, config as object);
  } catch (error) {
    throw new MissingTokenizerError(file, `tokenizer.json cannot be loaded: ${(error as Error).message}`);
  }
  return {
    encode: (text, options = {}) =>
      tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids,
    decode: (ids, options = {}) =>
      tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? true }),
    tokenToId: (token) => tokenizer.token_to_id(token),
  };
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new MissingTokenizerError(file, `is not valid JSON: ${(error as Error).message}`);
  }
}
