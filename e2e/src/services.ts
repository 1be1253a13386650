/**
 * The four services as child processes (`node tools/cli/bin/hm3.js serve <service>`), each with its
 * own free ports, against the real Kafka broker and FerretDB from tools/infra, one MongoDB database
 * per run. Logs go to `<work>/logs/<service>.log` (pino JSON lines), so tests can read them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const HM3_BIN = path.join(REPO_ROOT, 'tools/cli/bin/hm3.js');
export const ZOO_ROOT = path.join(REPO_ROOT, 'tools/fixtures/zoo');

export const SERVICE_NAMES = ['tensor-merge', 'rl-policy', 'evaluator', 'pareto-optimizer'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface ClusterOptions {
  /** Folder for artifacts and logs. */
  readonly work: string;
  readonly kafkaBrokers: string;
  readonly mongoUrl: string;
  /** One database per run keeps runs apart. */
  readonly database: string;
  /** Extra env for every service. */
  readonly env?: Record<string, string>;
}

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly log: WriteStream;
}

/** The four services of one run; start, SIGKILL and restart them one by one. */
export class Cluster {
  readonly ports = new Map<ServiceName, number>();
  /** The optimizer's /metrics port. */
  metricsPort = 0;
  private readonly running = new Map<ServiceName, Running>();

  constructor(readonly options: ClusterOptions) {}

  get optimizerAddress(): string {
    return `127.0.0.1:${this.ports.get('pareto-optimizer')!}`;
  }

  logFile(name: ServiceName): string {
    return path.join(this.options.work, 'logs', `${name}.log`);
  }

  async startAll(): Promise<void> {
    for (const name of SERVICE_NAMES) this.ports.set(name, await freePort());
    this.metricsPort = await freePort();
    // rl-policy first: the optimizer's policy client needs its address only.
    await Promise.all(SERVICE_NAMES.map((name) => this.start(name)));
  }

  env(name: ServiceName): NodeJS.ProcessEnv {
    return {
      ...process.env,
      HM3_HOST: '127.0.0.1',
      HM3_PORT: String(this.ports.get(name)),
      HM3_METRICS_PORT: name === 'pareto-optimizer' ? String(this.metricsPort) : 'off',
      HM3_ALLOW_UNAUTHENTICATED: 'true',
      HM3_LOG_LEVEL: 'info',
      HM3_STORE: this.options.mongoUrl,
      HM3_MONGO_DATABASE: this.options.database,
      HM3_BUS: 'kafka',
      HM3_KAFKA_BROKERS: this.options.kafkaBrokers,
      HM3_MODELS_ROOT: ZOO_ROOT,
      HM3_ARTIFACT_ROOT: path.join(this.options.work, 'artifacts'),
      HM3_POLICY_SERVICE: `127.0.0.1:${this.ports.get('rl-policy')}`,
      HM3_THREADS: '1',
      ...this.options.env,
    };
  }

  /** Starts a service and waits for its "serving" log line. */
  async start(name: ServiceName): Promise<void> {
    await mkdir(path.join(this.options.work, 'logs'), { recursive: true });
    const log = createWriteStream(this.logFile(name), { flags: 'a' });
    const child = spawn(process.execPath, [HM3_BIN, 'serve', name], {
      cwd: REPO_ROOT,
      env: this.env(name),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let buffered = '';
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name} did not report serving within 120 s`)),
        120_000,
      );
      child.stdout!.on('data', (chunk: Buffer) => {
        log.write(chunk);
        buffered += chunk.toString();
        if (buffered.includes(`"${name} serving"`)) {
          clearTimeout(timer);
          resolve();
        }
        if (buffered.length > 1_000_000) buffered = buffered.slice(-10_000);
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        log.write(chunk);
        buffered += chunk.toString();
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited with ${code} before serving:\n${buffered.slice(-3000)}`));
      });
    });
    this.running.set(name, { child, exited, log });
    await ready;
  }

  /** SIGKILL: no shutdown hook runs, nothing is committed or flushed. */
  async kill(name: ServiceName): Promise<void> {
    const r = this.running.get(name);
    if (!r) return;
    r.child.kill('SIGKILL');
    await r.exited;
    r.log.end();
    this.running.delete(name);
  }

  /** SIGTERM every service and wait (SIGKILL after 20 s). */
  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.running.entries()].map(async ([name, r]) => {
        r.child.kill('SIGTERM');
        const timer = setTimeout(() => r.child.kill('SIGKILL'), 20_000);
        await r.exited;
        clearTimeout(timer);
        r.log.end();
        this.running.delete(name);
      }),
    );
  }

  async logLines(name: ServiceName): Promise<Record<string, unknown>[]> {
    const text = await readFile(this.logFile(name), 'utf8').catch(() => '');
    const out: Record<string, unknown>[] = [];
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line cut by SIGKILL
      }
    }
    return out;
  }
}
