// The Dockerfile: hadolint finds nothing, and the image keeps the deployment's invariants.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureHadolint, runHadolint } from './hadolint.js';
import { DOCKERFILES, REPO_ROOT } from './paths.js';

const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
let hadolint: string;
beforeAll(() => {
  hadolint = ensureHadolint();
});

/** The instructions of one stage, from its FROM line to the next. */
function stage(name: string): string {
  const match = new RegExp(`^FROM \\S+ AS ${name}\\n([\\s\\S]*?)(?=^FROM |(?![\\s\\S]))`, 'm').exec(
    dockerfile,
  );
  if (match === null) throw new Error(`no stage ${name}`);
  return match[1]!;
}

describe('Dockerfile', () => {
  it('passes hadolint', () => {
    const run = runHadolint(hadolint, DOCKERFILES);
    expect(run.output).toBe('');
    expect(run.status).toBe(0);
  });

  it('hadolint does flag a bad Dockerfile (so a clean run means something)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hm3-hadolint-'));
    try {
      const bad = join(dir, 'Dockerfile');
      writeFileSync(bad, 'FROM node\nRUN apt-get install curl\nCMD node app.js\n');
      const run = runHadolint(hadolint, [bad]);
      expect(run.status).not.toBe(0);
      expect(run.output).toContain('DL3006'); // untagged image
      expect(run.output).toContain('DL3025'); // CMD not in exec form
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('builds from Node 20 slim and runs both final images as the non-root user 10001', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20[.\d]*-\w+-slim$/m);
    for (const name of ['cpu', 'gpu']) {
      const body = stage(name);
      expect(body, name).toMatch(/^USER 10001:10001$/m);
      expect(body, name).toMatch(/^ENTRYPOINT \["node", "\/app\/tools\/cli\/bin\/hm3.js"\]$/m);
      expect(body, name).toContain('COPY --from=build /out/ /app/');
    }
    // Production dependencies only: dev dependencies are pruned before /out is assembled.
    expect(stage('build')).toMatch(/npm prune --omit=dev/);
  });

  it('adds to the GPU image the CUDA provider libraries of the installed onnxruntime-node version', () => {
    const require = createRequire(join(REPO_ROOT, 'services/tensor-merge/package.json'));
    const installed = (require('onnxruntime-node/package.json') as { version: string }).version;
    expect(dockerfile).toMatch(new RegExp(`^ARG ORT_VERSION=${installed.replace(/\./g, '\\.')}$`, 'm'));
    expect(stage('ort-cuda')).toContain('onnxruntime-gpu==${ORT_VERSION}');
    expect(stage('gpu')).toContain('/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/');
    expect(dockerfile).toMatch(/^FROM \$\{CUDA_IMAGE\} AS gpu$/m);
    expect(stage('gpu')).toMatch(/^COPY --from=ort-cuda /m);
    expect(dockerfile).toMatch(/^ARG CUDA_IMAGE=nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/m);
  });
});
