// HM3 vs mergekit (PyPI, pinned in requirements.lock): runs conformance.py, which merges small random
// Llama-shaped checkpoints with both tools and compares them per tensor (see its docstring).
// Needs the built @hm3/merge (npm test builds first) and the Python tool venv (created on first use).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), 'hm3-conformance-'));

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('conformance with mergekit', () => {
  it('the deterministic methods match per tensor within 1e-5; dare_* and della* in distribution', () => {
    const [python, pythonPath] = execFileSync('bash', [path.join(here, 'ensure-mergekit.sh')], {
      encoding: 'utf8',
    })
      .trim()
      .split(' ');
    const report = path.join(work, 'report.md');
    const run = spawnSync(python!, [path.join(here, 'conformance.py'), work, report], {
      encoding: 'utf8',
      env: { ...process.env, PYTHONPATH: pythonPath },
      timeout: 900_000,
    });
    const text = readFileSync(report, 'utf8');
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    for (const recipe of [
      'linear',
      'task_arithmetic',
      'ties',
      'ties_unnormalized_rescaled',
      'breadcrumbs',
      'breadcrumbs_ties',
      'slerp',
      'nuslerp',
      'nuslerp_rows_no_base',
      'nuslerp_columns',
      'multislerp',
      'multislerp_no_base',
      'karcher',
      'model_stock',
      'model_stock_filter_wise',
      'sce',
      'sce_topk',
      'nearswap',
      'passthrough',
      'frankenmerge_passthrough',
      'frankenmerge_three_slices',
      'frankenmerge_slerp',
      'dare_linear',
      'dare_ties',
      'della_linear',
      'della',
    ]) {
      expect(text).toMatch(new RegExp(`^\\| ${recipe} \\| \\d+.* \\| pass \\|`, 'm'));
    }
    expect(text).not.toContain('FAIL');
  }, 1_000_000);
});
