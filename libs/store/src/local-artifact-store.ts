import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError } from '@hm3/errors';
import type { StoreLogger } from './store-logger.js';
import type { ArtifactLease, ArtifactStore, ArtifactWriteResult } from './ports.js';

export interface LocalArtifactStoreOptions {
  /** `.tmp` entries older than this are swept on start (default 6 hours: no live writer takes that long). */
  staleTempAfterMs?: number;
  logger?: StoreLogger;
}

const TEMP = '.tmp';
const DEFAULT_STALE_TEMP_AFTER_MS = 6 * 60 * 60 * 1000;
const MAX_ID_LENGTH = 200;

/**
 * A content id is one path segment: not empty, at most 200 characters, no '/' or '\\', no NUL,
 * no '..', no leading dot (dot names are the store's own, like `.tmp`).
 */
export function validateArtifactId(id: unknown): string {
  const bad = (why: string): InvalidArgumentError =>
    new InvalidArgumentError(`invalid artifact id ${JSON.stringify(id)}: ${why}`, { id });
  if (typeof id !== 'string' || id.length === 0) throw bad('must be a non-empty string');
  if (id.length > MAX_ID_LENGTH) throw bad(`longer than ${MAX_ID_LENGTH} characters`);
  if (/[/\\\0]/.test(id)) throw bad('contains a path separator or NUL');
  if (id.includes('..')) throw bad("contains '..'");
  if (id.startsWith('.')) throw bad('starts with a dot');
  return id;
}

/**
 * ArtifactStore over a local (or mounted) folder. A writer fills `<root>/.tmp/<random>`, every file
 * and folder is fsynced, then the folder is renamed to `<root>/<id>` (atomic on one volume) and the
 * root is fsynced. An existing `<root>/<id>` is the same content, so the new copy is discarded.
 * Deletion renames the artifact into `.tmp` first, so a reader never sees half a folder.
 *
 * Leases are held in this process: delete refuses while this process has the artifact open. Readers in
 * other processes sharing the volume are not seen (the retention policy runs beside the readers).
 */
export class LocalArtifactStore implements ArtifactStore {
  private readonly leases = new Map<string, number>();
  private readonly deleting = new Map<string, Promise<void>>();
  private started: Promise<void> | undefined;
  private readonly staleTempAfterMs: number;

  constructor(
    readonly root: string,
    private readonly options: LocalArtifactStoreOptions = {},
  ) {
    this.staleTempAfterMs = options.staleTempAfterMs ?? DEFAULT_STALE_TEMP_AFTER_MS;
  }

  /** Creates the folders and sweeps stale `.tmp` entries; idempotent, and run by the first operation. */
  start(): Promise<void> {
    this.started ??= this.prepare().catch((error: unknown) => {
      this.started = undefined;
      throw error;
    });
    return this.started;
  }

  async write(id: string, fill: (tempDir: string) => Promise<void>): Promise<ArtifactWriteResult> {
    validateArtifactId(id);
    await this.start();
    const target = join(this.root, id);
    if (await isDirectory(target)) return { id, path: target, created: false };

    const temp = join(this.root, TEMP, randomUUID());
    await mkdir(temp);
    try {
      await fill(temp);
      await fsyncTree(temp);
    } catch (error) {
      await rm(temp, { recursive: true, force: true });
      throw error;
    }
    try {
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { recursive: true, force: true });
      const code = (error as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await isDirectory(target))) {
        return { id, path: target, created: false };
      }
      throw error;
    }
    await fsyncPath(this.root);
    this.options.logger?.info({ artifactId: id }, 'artifact written');
    return { id, path: target, created: true };
  }

  async has(id: string): Promise<boolean> {
    validateArtifactId(id);
    await this.start();
    return isDirectory(join(this.root, id));
  }

  async open(id: string): Promise<ArtifactLease> {
    validateArtifactId(id);
    await this.start();
    // Taken before any await below, so a delete that starts now sees the lease and refuses.
    this.leases.set(id, (this.leases.get(id) ?? 0) + 1);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const n = (this.leases.get(id) ?? 1) - 1;
      if (n > 0) this.leases.set(id, n);
      else this.leases.delete(id);
    };
    try {
      await this.deleting.get(id);
      const path = join(this.root, id);
      if (!(await isDirectory(path))) throw new NotFoundError(`artifact ${id} not found`, { id });
      return { id, path, release };
    } catch (error) {
      release();
      throw error;
    }
  }

  async delete(id: string): Promise<boolean> {
    validateArtifactId(id);
    await this.start();
    if ((this.leases.get(id) ?? 0) > 0) return false;
    const pending = this.deleting.get(id);
    if (pending !== undefined) {
      await pending;
      return true;
    }
    const removal = this.remove(id).finally(() => this.deleting.delete(id));
    this.deleting.set(id, removal);
    await removal;
    this.options.logger?.info({ artifactId: id }, 'artifact deleted');
    return true;
  }

  async list(): Promise<string[]> {
    await this.start();
    const entries = await readdir(this.root, { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
  }

  private async remove(id: string): Promise<void> {
    const graveyard = join(this.root, TEMP, `deleted-${randomUUID()}`);
    try {
      await rename(join(this.root, id), graveyard);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    await fsyncPath(this.root);
    await rm(graveyard, { recursive: true, force: true });
  }

  private async prepare(): Promise<void> {
    const temp = join(this.root, TEMP);
    await mkdir(temp, { recursive: true });
    const cutoff = Date.now() - this.staleTempAfterMs;
    for (const name of await readdir(temp)) {
      const path = join(temp, name);
      const info = await lstat(path).catch(() => undefined);
      if (info !== undefined && info.mtimeMs < cutoff) {
        await rm(path, { recursive: true, force: true });
        this.options.logger?.info({ path }, 'stale artifact temp swept');
      }
    }
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsyncs every regular file and folder under `dir`, children before their folder, then `dir` itself. */
async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(path);
    else if (entry.isFile()) await fsyncPath(path);
  }
  await fsyncPath(dir);
}
