import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildProgram } from './main.js';

const bin = fileURLToPath(new URL('../bin/hm3.js', import.meta.url));

describe('hm3 command', () => {
  it('describes itself in --help, through the installed bin (built dist)', () => {
    const help = execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(help).toContain('Usage: hm3');
    expect(help).toContain('Pareto front');
  });

  it('rejects an unknown command with a non-zero exit code', () => {
    const program = buildProgram();
    program.configureOutput({ writeErr: () => {}, writeOut: () => {} });
    expect(() => program.parse(['node', 'hm3', 'no-such-command'])).toThrow();
  });
});

describe('hm3 demo', () => {
  it('finds a front on DTLZ2 where NSGA-II and MOEA/D beat random search, the same for the same seed', async () => {
    const { runDemo } = await import('./commands/demo.js');
    const quiet = () => {};
    const a = runDemo({ budget: 2730, seed: 7 }, quiet);
    const b = runDemo({ budget: 2730, seed: 7 }, quiet);
    expect(a).toEqual(b);
    const hv = Object.fromEntries(a.rows.map((r) => [r.optimiser, r.hypervolume]));
    expect(hv['random']).toBeDefined();
    for (const name of a.rows.map((r) => r.optimiser).filter((n) => n !== 'random')) {
      expect(hv[name]).toBeGreaterThan(hv['random'] as number);
    }
    // the single-objective preference picks a point that is best on that objective
    const [first] = a.recommendations;
    expect(first?.preference).toEqual([1, 0, 0]);
  });
});
