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
