// Real servers, on ports of their own and in a temporary state folder, so this test neither disturbs nor
// depends on the shared servers of `npm run infra:up` (the binaries in ~/.cache/hm3/bin are shared).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { FailedPreconditionError, UnavailableError } from '@hm3/errors';
import { Infra } from './infra.js';
import type { InfraLease } from './server.js';
import { installFerretDb } from './ferretdb.js';
import { installKafka } from './kafka.js';
import { isPortOpen } from './process-control.js';

const stateDir = mkdtempSync(join(tmpdir(), 'hm3-infra-test-'));
let infra: Infra;
let kafkaPort: number;
let mongoPort: number;
const children: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function kafkaClient(brokers: string): Kafka {
  return new Kafka({ clientId: 'hm3-infra-test', brokers: [brokers], logLevel: logLevel.NOTHING });
}

async function roundTrip(brokers: string, topic: string): Promise<string[]> {
  const kafka = kafkaClient(brokers);
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic,
    messages: [
      { key: 'a', value: 'one' },
      { key: 'b', value: 'two' },
    ],
  });
  await producer.disconnect();
  const consumer = kafka.consumer({
    groupId: `${topic}-group`,
    sessionTimeout: 6000,
    heartbeatInterval: 500,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed only ${got.length} of 2 messages`)), 30_000);
    void consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message.value?.toString() ?? '');
        if (got.length === 2) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return got.sort();
}

async function topics(brokers: string): Promise<string[]> {
  const admin = kafkaClient(brokers).admin();
  await admin.connect();
  try {
    return await admin.listTopics();
  } finally {
    await admin.disconnect();
  }
}

async function withMongo<T>(url: string, fn: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** A live process that is not this one, to hold a lease "from another test process". */
function otherProcess(): ChildProcess {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  children.push(child);
  return child;
}

function foreignLease(server: 'kafka' | 'ferretdb', pid: number): string {
  const file = join(stateDir, 'leases', `${server}-${pid}-abcdef012345`);
  writeFileSync(file, 'test\n');
  return file;
}

beforeAll(async () => {
  kafkaPort = await freePort();
  mongoPort = await freePort();
  let controllerPort = await freePort();
  while (controllerPort === kafkaPort || controllerPort === mongoPort) controllerPort = await freePort();
  infra = new Infra({
    stateDir,
    kafkaBrokers: `127.0.0.1:${kafkaPort}`,
    kafkaControllerPort: controllerPort,
    mongoUrl: `mongodb://127.0.0.1:${mongoPort}`,
  });
  // A first run on a bare machine fetches the jars and builds FerretDB here.
  await Promise.all([installKafka(infra.settings), installFerretDb(infra.settings)]);
}, 20 * 60_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await infra?.down();
  rmSync(stateDir, { recursive: true, force: true });
}, 120_000);

describe('Infra (real Kafka and FerretDB)', () => {
  const leases: InfraLease[] = [];

  it('reports both servers stopped before any start', async () => {
    const [kafka, ferretdb] = await infra.status();
    expect(kafka.state).toBe('stopped');
    expect(ferretdb.state).toBe('stopped');
    expect(kafka.logFile).toBe(join(stateDir, 'logs', 'kafka.log'));
    expect(ferretdb.logFile).toBe(join(stateDir, 'logs', 'ferretdb.log'));
  });

  it('ensure starts both, concurrent ensures start each once, and they serve real clients', async () => {
    const got = await Promise.all([
      infra.kafka.ensure(),
      infra.kafka.ensure(),
      infra.ferretdb.ensure(),
      infra.ferretdb.ensure(),
    ]);
    leases.push(...got);
    expect(got.filter((l) => l.server === 'kafka' && l.startedServer)).toHaveLength(1);
    expect(got.filter((l) => l.server === 'ferretdb' && l.startedServer)).toHaveLength(1);
    const [kafka, ferretdb] = await infra.status();
    expect(kafka).toMatchObject({ state: 'running', autoStarted: true, liveLeases: 2 });
    expect(ferretdb).toMatchObject({ state: 'running', autoStarted: true, liveLeases: 2 });

    expect(await roundTrip(infra.settings.kafkaBrokers, 'infra-test-roundtrip')).toEqual(['one', 'two']);
    const doc = await withMongo(infra.settings.mongoUrl, async (client) => {
      const col = client.db('infra_test').collection<{ _id: string; v: number }>('things');
      await col.insertOne({ _id: 'a', v: 1 });
      return col.findOne({ _id: 'a' });
    });
    expect(doc).toEqual({ _id: 'a', v: 1 });
  }, 180_000);

  it('a second start is idempotent: same process, nothing restarted', async () => {
    const before = await infra.status();
    const [k, f] = await Promise.all([infra.kafka.start(), infra.ferretdb.start()]);
    expect(k).toEqual({ started: false, state: 'running', pid: before[0].pid });
    expect(f).toEqual({ started: false, state: 'running', pid: before[1].pid });
    const after = await infra.status();
    expect(after[0].autoStarted && after[1].autoStarted).toBe(true);
  });

  it('`infra:status` prints state, address and log path of each server', async () => {
    const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));
    const tsx = fileURLToPath(new URL('../../../node_modules/.bin/tsx', import.meta.url));
    const { stdout } = await promisify(execFile)(tsx, [cli, 'status'], {
      env: {
        ...process.env,
        HM3_INFRA_DIR: stateDir,
        HM3_KAFKA_BROKERS: infra.settings.kafkaBrokers,
        HM3_KAFKA_CONTROLLER_PORT: String(infra.settings.kafkaControllerPort),
        HM3_MONGO_URL: infra.settings.mongoUrl,
      },
    });
    expect(stdout).toMatch(
      /kafka\s+Kafka 4\.1\.\d+\s+running \(pid \d+, auto-started by tests, 2 live leases\)/,
    );
    expect(stdout).toMatch(/ferretdb\s+FerretDB v1\.24\.\d+\s+running/);
    expect(stdout).toContain(join(stateDir, 'logs', 'kafka.log'));
    expect(stdout).toContain(join(stateDir, 'logs', 'ferretdb.log'));
  }, 60_000);

  it('restart stops and starts with the same data and resolves once ready', async () => {
    const before = await infra.status();
    const [k, f] = await Promise.all([infra.kafka.restart(), infra.ferretdb.restart()]);
    expect(k.started && f.started).toBe(true);
    expect(k.pid).not.toBe(before[0].pid);
    expect(f.pid).not.toBe(before[1].pid);
    expect(await topics(infra.settings.kafkaBrokers)).toContain('infra-test-roundtrip');
    const doc = await withMongo(infra.settings.mongoUrl, (c) =>
      c
        .db('infra_test')
        .collection('things')
        .findOne({ _id: 'a' as never }),
    );
    expect(doc).toEqual({ _id: 'a', v: 1 });
    expect((await infra.status()).every((s) => s.autoStarted)).toBe(true);
  }, 180_000);

  it('lease rule: an auto-started server outlives its releaser while another live process holds a lease, and stops with the last one', async () => {
    const other = otherProcess();
    const dead = spawn('true');
    await new Promise((resolve) => dead.once('exit', resolve));
    foreignLease('ferretdb', other.pid!);
    foreignLease('ferretdb', dead.pid!); // a dead process's lease is ignored
    for (const lease of leases.filter((l) => l.server === 'ferretdb')) await lease.release();
    expect((await infra.ferretdb.status()).state).toBe('running');

    other.kill('SIGKILL');
    await new Promise((resolve) => other.once('exit', resolve));
    const last = await infra.ferretdb.ensure();
    expect(last.startedServer).toBe(false);
    await last.release();
    await last.release(); // idempotent
    const status = await infra.ferretdb.status();
    expect(status.state).toBe('stopped');
    expect(await isPortOpen('127.0.0.1', mongoPort)).toBe(false);
    expect(existsSync(status.dataDir)).toBe(false); // an auto-started server leaves nothing behind

    for (const lease of leases.filter((l) => l.server === 'kafka')) await lease.release();
    expect((await infra.kafka.status()).state).toBe('stopped');
    expect(await isPortOpen('127.0.0.1', kafkaPort)).toBe(false);
  }, 120_000);

  it('up() starts both as permanent servers (adopting an auto-started one) that no lease stops; down() stops both and removes their data', async () => {
    const auto = await infra.ferretdb.ensure();
    expect(auto.startedServer).toBe(true);
    const [k, f] = await infra.up();
    expect(k.started).toBe(true);
    expect(f.started).toBe(false); // already running: adopted, not restarted
    const held = await Promise.all([infra.kafka.ensure(), infra.ferretdb.ensure()]);
    expect(held.some((l) => l.startedServer)).toBe(false);
    for (const lease of [auto, ...held]) await lease.release();
    const [kafka, ferretdb] = await infra.status();
    expect(kafka).toMatchObject({ state: 'running', autoStarted: false, pid: k.pid });
    expect(ferretdb).toMatchObject({ state: 'running', autoStarted: false, pid: f.pid });

    await infra.down();
    for (const s of await infra.status()) {
      expect(s.state).toBe('stopped');
      expect(existsSync(s.dataDir)).toBe(false);
    }
    expect(await isPortOpen('127.0.0.1', kafkaPort)).toBe(false);
    expect(await isPortOpen('127.0.0.1', mongoPort)).toBe(false);
    expect(readFileSync(kafka.logFile, 'utf8')).toContain('Kafka Server started');
    expect(readFileSync(ferretdb.logFile, 'utf8')).toContain('-listen');
  }, 120_000);

  it('refuses a port another program holds, naming it', async () => {
    const squatter: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(mongoPort, '127.0.0.1', resolve));
    try {
      const error = await infra.ferretdb.start().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FailedPreconditionError);
      expect(String(error)).toContain(`127.0.0.1:${mongoPort} is in use`);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  }, 30_000);

  it('a server that cannot start fails with the tail of its log', async () => {
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: FerretDB cannot bind it and exits.
    const broken = new Infra({ stateDir: join(stateDir, 'broken'), mongoUrl: 'mongodb://192.0.2.1:27017' });
    const error = await broken.ferretdb.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect(String(error)).toMatch(/exited during start[\s\S]*cannot assign requested address/);
    expect((await broken.ferretdb.status()).state).toBe('stopped');
  }, 30_000);
});
