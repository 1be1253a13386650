// FerretDB v1 (MongoDB wire protocol over SQLite), built with `go build` from the wrapper module in
// tools/infra/ferretdb into ~/.cache/hm3/bin/ferretdb-<version>-<hash of the wrapper sources>.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import type { InfraSettings } from './settings.js';
import { runCommand } from './run-command.js';
import type { ServerSpec } from './server.js';

/** Must match the require line of tools/infra/ferretdb/go.mod (a test checks it). */
export const FERRETDB_VERSION = 'v1.24.2';

export const FERRETDB_MODULE_DIR = fileURLToPath(new URL('../ferretdb/', import.meta.url));

/** The cached binary; its name changes when the wrapper's sources change, so a stale build is not reused. */
export function ferretDbBinary(settings: InfraSettings): string {
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'main.go'])
    hash.update(readFileSync(join(FERRETDB_MODULE_DIR, file)));
  return join(settings.binDir, `ferretdb-${FERRETDB_VERSION}-${hash.digest('hex').slice(0, 8)}`);
}

/** Builds the binary once (downloads modules through the Go proxy on a first run); a no-op afterwards. */
export async function installFerretDb(settings: InfraSettings): Promise<string> {
  const binary = ferretDbBinary(settings);
  if (existsSync(binary)) return binary;
  settings.progress(
    `ferretdb: building FerretDB ${FERRETDB_VERSION} with go build (first run, a few minutes)...`,
  );
  mkdirSync(settings.binDir, { recursive: true });
  const staging = `${binary}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await runCommand('go', ['build', '-trimpath', '-o', staging, '.'], {
      cwd: FERRETDB_MODULE_DIR,
      env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly -buildvcs=false' },
      what: 'ferretdb: go build',
    });
    renameSync(staging, binary);
  } finally {
    rmSync(staging, { force: true });
  }
  settings.progress(`ferretdb: built ${binary}`);
  return binary;
}

export function ferretDbSpec(settings: InfraSettings): ServerSpec {
  const { host, port } = settings.mongoListen;
  return {
    name: 'ferretdb',
    label: `FerretDB ${FERRETDB_VERSION}`,
    address: settings.mongoUrl,
    ports: [{ host, port }],
    graceMs: 10_000,
    readyTimeoutMs: 30_000,
    install: async () => {
      await installFerretDb(settings);
    },
    prepare: async (paths) => {
      mkdirSync(paths.dataDir, { recursive: true });
    },
    command: (paths) => ({
      command: ferretDbBinary(settings),
      args: ['-listen', `${host}:${port}`, '-data', paths.dataDir, '-log-level', 'warn'],
      cwd: paths.dataDir,
    }),
    signature: (paths) => paths.dataDir,
    probe: () => probeMongo(settings.mongoUrl),
  };
}

/** Ready when the official driver connects and `ping` answers ok. */
export async function probeMongo(url: string): Promise<boolean> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 1000, connectTimeoutMS: 1000 });
  try {
    await client.connect();
    const reply = await client.db('admin').command({ ping: 1 });
    return reply['ok'] === 1;
  } catch {
    return false;
  } finally {
    await client.close().catch(() => undefined);
  }
}
