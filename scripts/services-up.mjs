// `npm run services:up`: the distributed HM3 on this machine. Builds what is missing, starts the real
// Kafka broker and FerretDB when they are not running (tools/infra), then the four services as
// processes (`hm3 serve <service>`), their log lines prefixed with the service's name. Ctrl-C stops
// the services (SIGTERM: each drains, then exits); Kafka and FerretDB stay up (`npm run infra:down`).
//
//   npm run services:up                      # gRPC on 127.0.0.1:50061..50064, metrics on :9461..9464
//   npm run services:up -- --no-build        # skip the build step
//   hm3 search spec.yaml --server 127.0.0.1:50064
//
// Settings (env): HM3_MODELS_ROOT (default the fixture zoo), HM3_ARTIFACT_ROOT (default ./artifacts),
// HM3_MONGO_DATABASE (default hm3), HM3_TOKEN_FILE (bearer tokens for every service; without it the
// services listen on loopback only, unauthenticated), HM3_HOST (default 127.0.0.1).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build, installIfNeeded, phase, root } from './lib.mjs';

const SERVICES = [
  { name: 'tensor-merge', port: 50061, metrics: 9461 },
  { name: 'rl-policy', port: 50062, metrics: 9462 },
  { name: 'evaluator', port: 50063, metrics: 9463 },
  { name: 'pareto-optimizer', port: 50064, metrics: 9464 },
];

const args = process.argv.slice(2);
const children = new Map();
let stopping = false;

function stopAll(code) {
  if (stopping) return;
  stopping = true;
  console.log('\nservices:up: stopping the services ...');
  for (const child of children.values()) child.kill('SIGTERM');
  const force = setTimeout(() => {
    for (const child of children.values()) child.kill('SIGKILL');
  }, 20_000);
  force.unref();
  const wait = setInterval(() => {
    if (children.size === 0) {
      clearInterval(wait);
      process.exit(code);
    }
  }, 200);
}

try {
  await phase('install', () => installIfNeeded());
  if (!args.includes('--no-build')) await phase('build', () => build());
  const infra = await import(join(root, 'tools/infra/dist/index.js'));
  await phase('infra up', async () => {
    for (const [name, start] of [
      ['Kafka', infra.startKafka],
      ['FerretDB', infra.startFerretDb],
    ]) {
      const outcome = await start();
      console.log(`${name}: ${outcome.started ? 'started' : 'already running'}`);
    }
  });
  const tokenFile = process.env.HM3_TOKEN_FILE;
  const firstToken = tokenFile
    ? readFileSync(tokenFile, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .find((l) => l !== '' && !l.startsWith('#'))
    : undefined;
  const base = {
    ...process.env,
    HM3_HOST: process.env.HM3_HOST ?? '127.0.0.1',
    HM3_STORE: infra.mongoUrl(),
    HM3_MONGO_DATABASE: process.env.HM3_MONGO_DATABASE ?? 'hm3',
    HM3_BUS: 'kafka',
    HM3_KAFKA_BROKERS: infra.kafkaBrokers().join(','),
    HM3_MODELS_ROOT: resolve(process.env.HM3_MODELS_ROOT ?? join(root, 'tools/fixtures/zoo')),
    HM3_ARTIFACT_ROOT: resolve(process.env.HM3_ARTIFACT_ROOT ?? 'artifacts'),
    HM3_POLICY_SERVICE: '127.0.0.1:50062',
    ...(tokenFile ? { HM3_TOKEN_FILE: tokenFile } : { HM3_ALLOW_UNAUTHENTICATED: 'true' }),
    ...(firstToken ? { HM3_POLICY_TOKEN: firstToken } : {}),
  };
  console.log(
    `\n== services (store ${base.HM3_STORE}/${base.HM3_MONGO_DATABASE}, Kafka ${base.HM3_KAFKA_BROKERS})`,
  );
  for (const s of SERVICES) {
    const child = spawn(process.execPath, [join(root, 'tools/cli/bin/hm3.js'), 'serve', s.name], {
      cwd: root,
      env: { ...base, HM3_PORT: String(s.port), HM3_METRICS_PORT: String(s.metrics) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.set(s.name, child);
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream.on('data', (chunk) => {
        const lines = (rest + chunk.toString()).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) console.log(`${s.name.padEnd(16)} | ${line}`);
      });
    }
    child.once('exit', (code, signal) => {
      children.delete(s.name);
      console.log(`${s.name.padEnd(16)} | exited (${signal ?? code})`);
      // One service down takes the others down: a half-started system is no use.
      if (!stopping) stopAll(code ?? 1);
    });
  }
  console.log(
    `services:up: gRPC ${SERVICES.map((s) => `${s.name} ${base.HM3_HOST}:${s.port}`).join(', ')}\n` +
      `services:up: try  node tools/cli/bin/hm3.js search <spec.yaml> --server ${base.HM3_HOST}:50064   (Ctrl-C stops)`,
  );
  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));
} catch (error) {
  console.error(`\nnpm run services:up failed: ${error.message}`);
  stopAll(error.exitCode ?? 1);
  if (children.size === 0) process.exit(error.exitCode ?? 1);
}
