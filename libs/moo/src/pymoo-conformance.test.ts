import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hypervolume } from './hypervolume.js';
import { nonDominatedSort } from './non-dominated-sort.js';
import { Rng } from './prng.js';

// The reference is pymoo, run from the tool venv (tools/python/ensure-venv.sh creates it on first
// use: minutes, a few GB with the other tools' packages, hence the long timeout).
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const VENV_TIMEOUT_MS = 45 * 60 * 1000;
const CASES_PER_DIMENSION = 200;
const MAX_POINTS: Record<number, number> = { 2: 80, 3: 80, 4: 40, 5: 30 };

interface Case {
  dimension: number;
  points: number[][];
  reference: number[];
}

/** Seeded fronts: uniform clouds, points near the positive unit sphere (mostly non-dominated), and grid clouds (ties, duplicates). */
function generateCases(seed: number): Case[] {
  const rng = new Rng(seed);
  const cases: Case[] = [];
  for (const d of [2, 3, 4, 5]) {
    for (let c = 0; c < CASES_PER_DIMENSION; c++) {
      const n = 1 + rng.int(MAX_POINTS[d]!);
      const kind = c % 3;
      const points = Array.from({ length: n }, () => {
        if (kind === 0) return Array.from({ length: d }, () => rng.next());
        if (kind === 1) {
          const v = Array.from({ length: d }, () => Math.abs(rng.normal()));
          const r = Math.hypot(...v) || 1;
          const shrink = 1 - 0.05 * rng.next();
          return v.map((x) => (shrink * x) / r);
        }
        return Array.from({ length: d }, () => rng.int(6) / 5);
      });
      cases.push({ dimension: d, points, reference: new Array<number>(d).fill(-0.1) });
    }
  }
  return cases;
}

describe('conformance with pymoo 0.6.2: non-dominated sorting and exact hypervolume', () => {
  const cases = generateCases(20261128);
  let dir = '';
  let reference: { pymoo: string; cases: { fronts: number[][]; hv: number }[] };

  beforeAll(
    () => {
      const venv = execFileSync('bash', [join(root, 'tools/python/ensure-venv.sh')], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        timeout: VENV_TIMEOUT_MS,
      }).trim();
      dir = mkdtempSync(join(tmpdir(), 'hm3-moo-conformance-'));
      writeFileSync(
        join(dir, 'in.json'),
        JSON.stringify({ cases: cases.map(({ points, reference }) => ({ points, reference })) }),
      );
      execFileSync(
        join(venv, 'bin/python'),
        [join(root, 'tools/conformance/pymoo_conformance.py'), join(dir, 'in.json'), join(dir, 'out.json')],
        {
          stdio: 'inherit',
          timeout: 10 * 60 * 1000,
        },
      );
      reference = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as typeof reference;
    },
    VENV_TIMEOUT_MS + 10 * 60 * 1000,
  );

  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('ran pymoo 0.6.2 on every case', () => {
    expect(reference.pymoo).toBe('0.6.2');
    expect(reference.cases).toHaveLength(4 * CASES_PER_DIMENSION);
  });

  it.each([2, 3, 4, 5])('sorts %i-objective fronts identically', (d) => {
    let checked = 0;
    cases.forEach((c, i) => {
      if (c.dimension !== d) return;
      expect(nonDominatedSort(c.points), `case ${i}`).toEqual(reference.cases[i]!.fronts);
      checked++;
    });
    expect(checked).toBe(CASES_PER_DIMENSION);
  });

  it.each([2, 3, 4, 5])('computes %i-objective hypervolume within 1e-9 relative', (d) => {
    let checked = 0;
    cases.forEach((c, i) => {
      if (c.dimension !== d) return;
      const ours = hypervolume(c.points, { reference: c.reference });
      const theirs = reference.cases[i]!.hv;
      expect(Math.abs(ours - theirs), `case ${i}: ours ${ours}, pymoo ${theirs}`).toBeLessThanOrEqual(
        1e-9 * Math.max(Math.abs(theirs), 1e-300),
      );
      checked++;
    });
    expect(checked).toBe(CASES_PER_DIMENSION);
  });
});
