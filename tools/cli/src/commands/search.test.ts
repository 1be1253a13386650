import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { modelPath } from '@hm3/fixtures';
import type { SearchResult } from '@hm3/search';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFrontCommand } from './front.js';
import { runRecommendCommand } from './recommend.js';
import { runSearchCommand, type SearchIo } from './search.js';

function captureIo(): SearchIo & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { out: (l) => lines.push(l), err: (l) => errors.push(l), tty: false, lines, errors };
}

const zooSpec = (
  overrides: { experts?: string; objectives?: string; budget?: string; extra?: string } = {},
) =>
  [
    'name: tiny',
    'base: zoo:base',
    `experts: ${overrides.experts ?? '[zoo:expert-translate, zoo:expert-math, zoo:expert-code]'}`,
    'objectives:',
    overrides.objectives ??
      ['translate', 'math', 'code']
        .map((t) => `  - { name: ${t}, dataset: "zoo:${t}", max_examples: 16 }`)
        .join('\n'),
    'preference_count: 2',
    `budget: ${overrides.budget ?? '{ max_evaluations: 9 }'}`,
    'rl: { episodes_per_iteration: 2 }',
    overrides.extra ?? '',
    '',
  ].join('\n');

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'hm3-search-cli-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function expectRefused(spec: string, field: string): Promise<void> {
  const dir = await mkdtemp(path.join(work, 'bad-'));
  const file = path.join(dir, 'spec.yaml');
  await writeFile(file, spec);
  const out = path.join(dir, 'out');
  const io = captureIo();
  const code = await runSearchCommand(file, { out }, io);
  expect(code).toBe(2);
  expect(io.errors.join('\n')).toContain(field);
  expect(existsSync(out)).toBe(false);
}

describe('hm3 search: bad input is refused with the field path, nothing written', () => {
  it('a spec naming a missing model', async () => {
    await expectRefused(
      zooSpec({ experts: '[zoo:expert-translate, ./no-such-model, zoo:expert-code]' }),
      'experts[1]',
    );
  });

  it('objectives without datasets', async () => {
    await expectRefused(
      zooSpec({ objectives: '  - { name: translate }\n  - { name: math, dataset: "zoo:math" }' }),
      'objectives[0].dataset',
    );
  });

  it('a budget of 0', async () => {
    await expectRefused(zooSpec({ budget: '{ max_evaluations: 0 }' }), 'budget.max_evaluations');
  });

  it('experts of different architectures', async () => {
    const odd = path.join(work, 'wide-expert');
    await mkdir(odd, { recursive: true });
    const config = JSON.parse(
      await readFile(path.join(modelPath('expert-math'), 'config.json'), 'utf8'),
    ) as Record<string, unknown>;
    await writeFile(path.join(odd, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 4 }));
    await copyFile(
      path.join(modelPath('expert-math'), 'model.safetensors'),
      path.join(odd, 'model.safetensors'),
    );
    await expectRefused(
      zooSpec({ experts: `[zoo:expert-translate, ${JSON.stringify(odd)}, zoo:expert-code]` }),
      'experts[1]',
    );
  });
});

describe('hm3 search -> front -> recommend on the zoo', () => {
  it('searches in one process, then plots the front and exports the recommended model', async () => {
    const dir = path.join(work, 'run');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'spec.yaml');
    await writeFile(file, zooSpec());
    const out = path.join(dir, 'out');
    const io = captureIo();
    expect(await runSearchCommand(file, { out }, io)).toBe(0);
    const result = JSON.parse(await readFile(path.join(out, 'search.json'), 'utf8')) as SearchResult;
    expect(result.evaluations).toBe(9);
    expect(new Set(result.candidates.map((c) => c.id)).size).toBe(result.candidates.length);
    // the three experts as they are, with their known search-split scores on the first 16 examples
    const experts = result.candidates.filter((c) => c.origin === 'seed');
    expect(experts.map((c) => c.label)).toEqual(['expert-translate', 'expert-math', 'expert-code']);
    expect(experts[0]!.search[0]).toBeGreaterThan(0.9);
    expect(experts[2]!.search[2]).toBeGreaterThan(0.8);
    // merged checkpoints were materialised in the search folder's artifact store
    const artifacts = (await readdir(path.join(out, 'artifacts'))).filter((f) => f.startsWith('m-'));
    expect(artifacts).toHaveLength(2);
    const front = JSON.parse(await readFile(path.join(out, 'front.json'), 'utf8')) as {
      members: { heldout: Record<string, number> }[];
    };
    expect(front.members.length).toBe(result.front.length);
    expect(front.members.every((m) => Object.keys(m.heldout).length === 3)).toBe(true);

    const fio = captureIo();
    expect(await runFrontCommand(out, { preference: '0.2,0.6,0.2' }, fio)).toBe(0);
    expect(fio.lines.some((l) => l.startsWith('*'))).toBe(true);
    const png = await readFile(path.join(out, 'front.png'));
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');

    const rio = captureIo();
    const exported = path.join(dir, 'exported');
    expect(await runRecommendCommand(out, { preference: '1,0,0', export: exported }, rio)).toBe(0);
    expect(rio.lines[0]).toContain('recommended for (1.00, 0.00, 0.00)');
    const config = JSON.parse(await readFile(path.join(exported, 'config.json'), 'utf8')) as {
      num_hidden_layers: number;
    };
    expect(config.num_hidden_layers).toBe(8);
    expect(existsSync(path.join(exported, 'tokenizer.json'))).toBe(true);

    const bad = captureIo();
    expect(await runRecommendCommand(out, { preference: '1,0' }, bad)).toBe(2);
    expect(bad.errors.join('')).toContain('--preference');
  }, 240_000);
});
