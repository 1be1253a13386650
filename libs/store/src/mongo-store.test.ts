import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnavailableError } from '@hm3/errors';
import { mongoUrl, restartFerretDb } from '@hm3/infra';
import {
  createMongoStore,
  mongoClientOptions,
  redactMongoUrl,
  type MongoStoreOptions,
} from './mongo-store.js';
import { candidateRecord, describeStoreContract, modelRecord, scoreRecord } from './store.contract.js';

const url = mongoUrl();
const target = url.replace(/^mongodb:\/\//, '').replace(/\/.*$/, '');
/** A client of our own, for dropping test databases and reading raw documents. */
let admin: MongoClient;

beforeAll(async () => {
  admin = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 });
  await admin.connect();
});

afterAll(async () => {
  await admin.close();
});

/**
 * A TCP link to the real server that the test can cut (close the listener, drop every connection) and
 * open again on the same port: a network outage between a real client and a real server.
 */
class TcpLink {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  async open(port = 0): Promise<number> {
    const server = createServer((client) => {
      const upstream = createConnection(this.port, this.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const freshDatabase = (): string => `hm3_store_test_${randomBytes(6).toString('hex')}`;

async function dropDatabase(database: string): Promise<void> {
  await admin.db(database).dropDatabase();
}

describeStoreContract(`mongodb/ferretdb @${target}`, async () => {
  const database = freshDatabase();
  const store = createMongoStore({ url, database, serverSelectionTimeoutMS: 10_000 });
  return {
    store,
    dispose: async () => {
      await store.close();
      await dropDatabase(database);
    },
  };
});

describe(`MongoStore [mongodb/ferretdb @${target}]`, () => {
  it('stores snake_case documents with Dates and a unique index per natural key', async () => {
    const database = freshDatabase();
    const store = createMongoStore({ url, database });
    await store.start();
    try {
      await store.candidates.insert(candidateRecord('c1', 's1', { artifactId: 'a1' }));
      await store.scores.insert(scoreRecord('c1', 'o1', 'search'));
      const db = admin.db(database);
      const candidate = await db.collection('candidates').findOne({ id: 'c1' });
      expect(Object.keys(candidate ?? {}).sort()).toEqual(
        [
          '_id',
          'artifact_id',
          'created_at',
          'id',
          'path',
          'recipe',
          'round',
          'search_id',
          'state',
          'updated_at',
        ].sort(),
      );
      expect(candidate?.created_at).toBeInstanceOf(Date);
      // Nested domain JSON is stored as given, not renamed.
      expect(candidate?.path).toEqual({ steps: [{ pool_index: 0, layer_index: 3 }] });
      const score = await db.collection('scores').findOne({});
      expect(score).toMatchObject({
        candidate_id: 'c1',
        objective: 'o1',
        split: 'search',
        search_id: 'search-1',
      });

      const unique = async (collection: string) =>
        (await db.collection(collection).indexes()).filter((i) => i.unique === true).map((i) => i.key);
      expect(await unique('models')).toEqual([{ id: 1 }]);
      expect(await unique('searches')).toEqual([{ id: 1 }]);
      expect(await unique('candidates')).toEqual([{ id: 1 }]);
      expect(await unique('scores')).toEqual([{ candidate_id: 1, objective: 1, split: 1 }]);
      expect(await unique('fronts')).toEqual([{ search_id: 1, round: 1 }]);
      expect(await unique('policies')).toEqual([{ id: 1 }]);
      expect(await unique('processed_events')).toEqual([{ event_id: 1 }]);
    } finally {
      await store.close();
      await dropDatabase(database);
    }
  });

  it('an unreachable server is a typed UnavailableError within serverSelectionTimeoutMS, credentials unlogged', async () => {
    const lines: string[] = [];
    const logger = {
      info: (object: object, message: string) => lines.push(JSON.stringify({ ...object, message })),
      warn: (object: object, message: string) => lines.push(JSON.stringify({ ...object, message })),
    };
    const store = createMongoStore({
      url: 'mongodb://127.0.0.1:1',
      database: 'unused',
      username: 'hm3-user',
      password: 's3cret-password',
      serverSelectionTimeoutMS: 400,
      logger,
    });
    const started = Date.now();
    const error = await store.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as UnavailableError).details).toMatchObject({ operation: 'connect' });
    expect(JSON.stringify((error as UnavailableError).details)).not.toContain('s3cret');
    expect((error as Error).message).not.toContain('s3cret');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain('s3cret');
    expect(store.target).not.toContain('s3cret');
    await store.close();
  });

  it('reconnects after restartFerretDb(): reads keep working or fail typed, data kept, writes succeed', async () => {
    const database = freshDatabase();
    // Two clients of one database: one waits out the outage, one gives up fast.
    const patient = createMongoStore({ url, database, serverSelectionTimeoutMS: 20_000 });
    const hasty = createMongoStore({ url, database, serverSelectionTimeoutMS: 150, connectTimeoutMS: 500 });
    await patient.start();
    await hasty.start();
    try {
      await patient.models.insert(modelRecord('before-restart'));
      let restarting = true;
      const restart = restartFerretDb().finally(() => {
        restarting = false;
      });
      // Keep reading through both clients while the server goes down and comes back.
      const readUntilRestarted = async (store: typeof patient) => {
        const outcome = { successes: 0, failures: [] as unknown[] };
        while (restarting) {
          try {
            expect(await store.models.get('before-restart')).toEqual(modelRecord('before-restart'));
            outcome.successes += 1;
          } catch (error) {
            outcome.failures.push(error);
          }
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        return outcome;
      };
      const [waited, gaveUp] = await Promise.all([readUntilRestarted(patient), readUntilRestarted(hasty)]);
      expect((await restart).started).toBe(true);

      // The patient client's reads wait for the server to come back; only a read in flight at the
      // moment the server dies may fail (the driver's one retry can land in the same gap), typed.
      // A restart is quick, so the hasty one may or may not have caught the gap; if it did, typed.
      expect(waited.failures.length).toBeLessThanOrEqual(1);
      for (const failure of waited.failures) expect(failure).toBeInstanceOf(UnavailableError);
      expect(waited.successes).toBeGreaterThan(0);
      for (const failure of gaveUp.failures) expect(failure).toBeInstanceOf(UnavailableError);

      // Both clients work again, reads and writes, and the data folder was kept.
      for (const store of [patient, hasty]) {
        expect(await store.models.get('before-restart')).toEqual(modelRecord('before-restart'));
      }
      await hasty.models.insert(modelRecord('after-restart'));
      expect((await patient.models.list()).map((m) => m.id)).toEqual(['after-restart', 'before-restart']);
    } finally {
      await patient.close();
      await hasty.close();
      await dropDatabase(database);
    }
  });
});

describe(`MongoStore through a link that goes down [mongodb/ferretdb @${target}]`, () => {
  it('during an outage an operation fails with UnavailableError or waits for the link, then succeeds', async () => {
    const server = new URL(url);
    const link = new TcpLink(server.hostname, Number(server.port || 27017));
    const port = await link.open();
    const database = freshDatabase();
    const viaLink = `mongodb://127.0.0.1:${port}/?directConnection=true`;
    const patient = createMongoStore({ url: viaLink, database, serverSelectionTimeoutMS: 20_000 });
    const hasty = createMongoStore({ url: viaLink, database, serverSelectionTimeoutMS: 300 });
    try {
      await patient.start();
      await hasty.start();
      await patient.models.insert(modelRecord('m1'));

      await link.cut();
      const error = await hasty.models.get('m1').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as UnavailableError).status).toBe('UNAVAILABLE');
      await expect(hasty.models.insert(modelRecord('m2'))).rejects.toBeInstanceOf(UnavailableError);

      // Started during the outage: it waits (retrying) until the link is back.
      const waiting = patient.models.get('m1').then(
        (model) => ({ model }),
        (error: unknown) => ({ error }),
      );
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await link.open(port);
      expect(await waiting).toEqual({ model: modelRecord('m1') });
      expect(await hasty.models.get('m1')).toEqual(modelRecord('m1'));
      await hasty.models.insert(modelRecord('m2'));
      expect((await patient.models.list()).map((m) => m.id)).toEqual(['m1', 'm2']);
    } finally {
      await patient.close();
      await hasty.close();
      await link.cut();
      await dropDatabase(database);
    }
  });
});

describe('MongoStore options', () => {
  it('redacts credentials from URLs', () => {
    expect(redactMongoUrl('mongodb://user:pa%40ss@db.example:27017/x')).toBe(
      'mongodb://***@db.example:27017/x',
    );
    expect(redactMongoUrl('mongodb+srv://u:p@cluster.example')).toBe('mongodb+srv://***@cluster.example');
    expect(redactMongoUrl('mongodb://127.0.0.1:27017')).toBe('mongodb://127.0.0.1:27017');
  });

  it('passes credentials and TLS material to the driver as options', () => {
    const options: MongoStoreOptions = {
      url: 'mongodb://db:27017',
      database: 'hm3',
      username: 'hm3',
      password: 'pw',
      authSource: 'admin',
      tls: { ca: 'CA-PEM', cert: 'CERT-PEM', key: 'KEY-PEM' },
      serverSelectionTimeoutMS: 1234,
    };
    expect(mongoClientOptions(options)).toMatchObject({
      auth: { username: 'hm3', password: 'pw' },
      authSource: 'admin',
      tls: true,
      ca: 'CA-PEM',
      cert: 'CERT-PEM',
      key: 'KEY-PEM',
      serverSelectionTimeoutMS: 1234,
      ignoreUndefined: true,
    });
    const plain = mongoClientOptions({ url: 'mongodb://db', database: 'hm3' });
    expect(plain).not.toHaveProperty('auth');
    expect(plain).not.toHaveProperty('tls');
    // The driver accepts them (parses without connecting).
    expect(() => new MongoClient(options.url, mongoClientOptions(options))).not.toThrow();
  });
});
