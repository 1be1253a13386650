// The non-weight files of an HF folder a merge carries over (its own module: both the executor and
// the emr output use it, and they import each other).
/** Files copied from the reference model when present. */
export const TOKENIZER_FILES: readonly string[] = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
  'added_tokens.json',
  'generation_config.json',
];
