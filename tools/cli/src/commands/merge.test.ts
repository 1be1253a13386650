// `hm3 merge` through the built bin (a child process): list, validate, merge, bad input exit codes,
// and the crash test: SIGKILL half-way through a ~500 MB merge leaves nothing under the output name.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointWriter, Checkpoint, type DType } from '@hm3/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/hm3.js', import.meta.url));

function config(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 16,
    intermediate_size: 24,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: 2,
    vocab_size: 40,
    torch_dtype: 'float32',
    ...over,
  };
}

/** The tensors of a Llama config (names and shapes), without importing the merge lib's internals. */
function llamaTensors(c: Record<string, number>): { name: string; shape: number[] }[] {
  const h = c['hidden_size']!;
  const i = c['intermediate_size']!;
  const kv = (c['num_key_value_heads']! * h) / c['num_attention_heads']!;
  const out = [{ name: 'model.embed_tokens.weight', shape: [c['vocab_size']!, h] }];
  for (let l = 0; l < c['num_hidden_layers']!; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      { name: `${p}input_layernorm.weight`, shape: [h] },
      { name: `${p}self_attn.q_proj.weight`, shape: [h, h] },
      { name: `${p}self_attn.k_proj.weight`, shape: [kv, h] },
      { name: `${p}self_attn.v_proj.weight`, shape: [kv, h] },
      { name: `${p}self_attn.o_proj.weight`, shape: [h, h] },
      { name: `${p}post_attention_layernorm.weight`, shape: [h] },
      { name: `${p}mlp.gate_proj.weight`, shape: [i, h] },
      { name: `${p}mlp.up_proj.weight`, shape: [i, h] },
      { name: `${p}mlp.down_proj.weight`, shape: [h, i] },
    );
  }
  out.push(
    { name: 'model.norm.weight', shape: [h] },
    { name: 'lm_head.weight', shape: [c['vocab_size']!, h] },
  );
  return out;
}

/** A random model; `noise` is a shared block of random values, offset per model so models differ. */
async function writeModel(
  dir: string,
  cfg: Record<string, unknown>,
  noise: Float32Array,
  offset: number,
  dtype: DType = 'F32',
): Promise<void> {
  const specs = llamaTensors(cfg as Record<string, number>).map((t) => ({ ...t, dtype }));
  const writer = await CheckpointWriter.create(dir, specs);
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    for (let done = 0; done < n;) {
      const start = (offset + done * 7) % (noise.length - 1);
      const len = Math.min(n - done, noise.length - start);
      values.set(noise.subarray(start, start + len), done);
      done += len;
    }
    await writer.writeFloats(s.name, values);
  }
  await writer.writeFile('config.json', JSON.stringify(cfg));
  await writer.writeFile('tokenizer.json', '{"version": "1.0"}');
  await writer.commit();
}

function noiseBlock(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * 0.2;
  }
  return out;
}

function hm3(args: string[], cwd: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hm3-cli-merge-'));
  const noise = noiseBlock(100_003, 9);
  await writeModel(path.join(root, 'base'), config(), noise, 0);
  await writeModel(path.join(root, 'a'), config(), noise, 1000, 'BF16');
  await writeModel(path.join(root, 'b'), config(), noise, 2000);
  await writeFile(
    path.join(root, 'ties.yaml'),
    'merge_method: ties\nbase_model: base\nmodels:\n  - model: a\n    parameters: {weight: [1, 0.5], density: 0.5}\n  - model: b\n    parameters: {weight: 0.7, density: 0.6}\nout_dtype: bfloat16\n',
  );
  await writeFile(
    path.join(root, 'emr.yaml'),
    'merge_method: emr\nbase_model: base\nmodels:\n  - model: a\n  - model: b\n',
  );
  await writeFile(
    path.join(root, 'typo.yaml'),
    'merge_method: tis\nbase_model: base\nmodels:\n  - model: a\n    parameters: {weight: 1}\n',
  );
  await writeFile(
    path.join(root, 'nowhere.yaml'),
    'merge_method: ties\nbase_model: base\nmodels:\n  - model: nowhere\n    parameters: {weight: 1}\n',
  );
}, 60_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('hm3 merge', () => {
  it('--list-methods prints every method with its parameters and defaults', () => {
    const r = hm3(['merge', '--list-methods'], root);
    expect(r.code).toBe(0);
    for (const m of [
      'linear',
      'task_arithmetic',
      'ties',
      'dare_linear',
      'dare_ties',
      'breadcrumbs',
      'breadcrumbs_ties',
      'slerp',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^${m} `, 'm'));
    }
    expect(r.stdout).toMatch(/density \(per model, number in \[0, 1\], default 1\)/);
  });

  it("--help gives the default thread count: the machine's cores, at most 8", () => {
    const r = hm3(['merge', '--help'], root);
    expect(r.code).toBe(0);
    expect(r.stdout.replace(/\s+/g, ' ')).toMatch(
      /--threads <n> .*default: the machine's cores, at most 8: \d+ here/,
    );
  });

  it('--validate prints the plan and writes nothing', () => {
    const r = hm3(['merge', 'ties.yaml', 'out-validate', '--validate', '--max-memory', '1GB'], root);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/method +ties/);
    expect(r.stdout).toMatch(/tensors +21 \(21 merged, 0 copied\)/);
    expect(r.stdout).toMatch(/peak memory/);
    expect(existsSync(path.join(root, 'out-validate'))).toBe(false);
  });

  it('merges into a complete folder (exit 0), relative model paths resolved from the working directory', async () => {
    const r = hm3(['merge', 'ties.yaml', 'out-ties', '--threads', '1', '--out-shard-size', '2KB'], root);
    expect(r.stderr).toMatch(/merge 100\.0% +tensors 21\/21/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/merged 21 tensors/);
    const files = await readdir(path.join(root, 'out-ties'));
    expect(files).toEqual(
      expect.arrayContaining(['config.json', 'tokenizer.json', 'README.md', 'model.safetensors.index.json']),
    );
    const ck = await Checkpoint.open(path.join(root, 'out-ties'));
    try {
      expect(ck.sharded).toBe(true);
      expect(ck.info('model.layers.1.mlp.up_proj.weight').dtype).toBe('BF16');
    } finally {
      await ck.close();
    }
  });

  it.each([
    [
      'an unknown method',
      'typo.yaml',
      /typo\.yaml: .*merge_method: unknown merge method "tis"; did you mean "ties"/,
    ],
    ['a missing model folder', 'nowhere.yaml', /models\[0\]\.model: .*nowhere: no such model folder/],
    ['a missing recipe', 'absent.yaml', /absent\.yaml: cannot read the recipe/],
  ])('exits 2 on %s, naming the field or file, leaving no folder', async (_what, recipe, message) => {
    const r = hm3(['merge', recipe, 'out-bad'], root);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect((await readdir(root)).filter((f) => f === 'out-bad' || f.startsWith('.hm3-tmp'))).toEqual([]);
  });

  it('emr: reports mask sizes, and --task materialises one task from the output folder or straight from the recipe', async () => {
    const merged = hm3(['merge', 'emr.yaml', 'out-emr', '--no-progress'], root);
    expect(merged.stderr).toBe('');
    expect(merged.code).toBe(0);
    expect(merged.stdout).toMatch(/emr task a \(a\): masks \d+(\.\d+)? (B|KB)/);
    expect(merged.stdout).toMatch(/emr task b \(b\): masks/);
    expect(await readdir(path.join(root, 'out-emr', 'tasks'))).toEqual(['a', 'b']);
    const fromFolder = hm3(['merge', 'out-emr', 'out-task-b', '--task', 'b'], root);
    expect(fromFolder.code).toBe(0);
    expect(fromFolder.stdout).toMatch(/materialised task b/);
    const fromRecipe = hm3(['merge', 'emr.yaml', 'out-task-b2', '--task', 'b', '--no-progress'], root);
    expect(fromRecipe.code).toBe(0);
    const a = await Checkpoint.open(path.join(root, 'out-task-b'));
    const b = await Checkpoint.open(path.join(root, 'out-task-b2'));
    try {
      expect(a.names().length).toBe(21);
      for (const name of a.names()) expect(await b.readBytes(name)).toEqual(await a.readBytes(name));
    } finally {
      await a.close();
      await b.close();
    }
    expect((await readdir(root)).filter((f) => f.includes('.emr-'))).toEqual([]);
    const missing = hm3(['merge', 'out-emr', 'out-task-x', '--task', 'nope'], root);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no task "nope"/);
  }, 120_000);

  it('exits 2 on a bad --max-memory', () => {
    const r = hm3(['merge', 'ties.yaml', 'out-x', '--max-memory', 'lots'], root);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/max_memory: "lots" is not a size/);
  });
});

describe('hm3 merge crash safety', () => {
  it('SIGKILLed half-way through a ~500 MB merge leaves no folder under the output name', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'hm3-crash-'));
    try {
      // 3 models x ~170 MB of f32: hidden 1024, intermediate 2816, 2 layers, vocabulary 8192.
      const big = config({
        hidden_size: 1024,
        intermediate_size: 2816,
        num_attention_heads: 16,
        num_key_value_heads: 16,
        vocab_size: 8192,
      });
      const noise = noiseBlock(1 << 20, 3);
      for (const [name, offset] of [
        ['base', 0],
        ['x', 11],
        ['y', 23],
      ] as const)
        await writeModel(path.join(dir, name), big, noise, offset);
      await writeFile(
        path.join(dir, 'r.yaml'),
        'merge_method: ties\nbase_model: base\nmodels:\n  - model: x\n    parameters: {weight: 1, density: 0.5}\n  - model: y\n    parameters: {weight: 0.5, density: 0.5}\n',
      );
      const child = spawn(process.execPath, [bin, 'merge', 'r.yaml', 'out', '--threads', '1'], {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      let killedAt: number | null = null;
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.on('exit', (_code, signal) => resolve(signal)),
      );
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        for (const m of stderr.matchAll(/merge (\d+\.\d)%/g)) {
          const pct = Number(m[1]);
          if (killedAt === null && pct >= 30 && pct < 90) {
            killedAt = pct;
            child.kill('SIGKILL');
          }
        }
      });
      const signal = await exited;
      expect(stderr).not.toMatch(/hm3 merge:/); // no error before the kill
      expect(signal).toBe('SIGKILL');
      expect(killedAt).not.toBeNull();
      expect(stdout).not.toMatch(/merged/);
      expect(existsSync(path.join(dir, 'out'))).toBe(false);
      // at most the temporary folder beside it, which the next writer sweeps
      expect(
        (await readdir(dir))
          .filter((f) => !['base', 'x', 'y', 'r.yaml'].includes(f))
          .every((f) => f.startsWith('.hm3-tmp-')),
      ).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
