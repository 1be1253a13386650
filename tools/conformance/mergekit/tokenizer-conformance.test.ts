// HM3 vs mergekit (PyPI, pinned in requirements.lock) on tokenizer merges: runs tokenizer_conformance.py,
// which merges random Llama checkpoints whose tokenizers differ in their added tokens with both tools
// (tokenizer_source union / base / <model>, tied embeddings, slices, the tokenizer: block with token overrides
// and pad_to_multiple_of) and compares vocabularies, added tokens, vocab_size and rows per token.
// Needs the built @hm3/merge (npm test builds first) and the Python tool venv (created on first use).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), 'hm3-tokenizer-conformance-'));

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('conformance with mergekit: tokenizer merges', () => {
  it('union, base and <model> vocabularies, overrides and padding give the same tokens and rows', () => {
    const [python, pythonPath] = execFileSync('bash', [path.join(here, 'ensure-mergekit.sh')], {
      encoding: 'utf8',
    })
      .trim()
      .split(' ');
    const report = path.join(work, 'report.md');
    const run = spawnSync(python!, [path.join(here, 'tokenizer_conformance.py'), work, report], {
      encoding: 'utf8',
      env: { ...process.env, PYTHONPATH: pythonPath },
      timeout: 600_000,
    });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    const text = readFileSync(report, 'utf8');
    for (const recipe of [
      'tokenizer_union',
      'tokenizer_union_tied',
      'tokenizer_base',
      'tokenizer_model',
      'tokenizer_slices',
      'tokenizer_block',
    ]) {
      expect(text).toMatch(
        new RegExp(`^\\| ${recipe} \\| \\d+ \\(\\d+ tokens, \\d+ rows\\) \\| pass \\|`, 'm'),
      );
    }
    // the padded case really pads: 53 tokens in 56 rows
    expect(text).toMatch(/^\| tokenizer_block \| \d+ \(53 tokens, 56 rows\) \| pass \|/m);
    expect(text).not.toContain('FAIL');
  }, 700_000);
});
