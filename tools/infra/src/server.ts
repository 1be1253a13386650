// The lifecycle of one managed server (Kafka or FerretDB): status, start, stop, restart, and the lease
// rule that lets parallel test processes share a server without stopping it under each other.
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FailedPreconditionError, UnavailableError } from '@hm3/errors';
import type { HostPort, InfraSettings, ServerName, StatePaths } from './settings.js';
import { statePaths } from './settings.js';
import { withDirLock } from './dir-lock.js';
import {
  isPidAlive,
  isPortOpen,
  logTail,
  runningPid,
  spawnDetached,
  stopPid,
  waitUntil,
} from './process-control.js';

/** What differs between Kafka and FerretDB; the lifecycle below is shared. */
export interface ServerSpec {
  readonly name: ServerName;
  readonly label: string;
  /** What clients connect to (broker list, mongodb:// URL). */
  readonly address: string;
  /** Every port the server listens on; all must be free before a start. */
  readonly ports: readonly HostPort[];
  readonly graceMs: number;
  readonly readyTimeoutMs: number;
  /** Fetches / builds the server once; a no-op when already installed. */
  install(): Promise<void>;
  /** Writes configuration and initialises an empty data folder; keeps existing data. */
  prepare(paths: StatePaths): Promise<void>;
  command(paths: StatePaths): { command: string; args: string[]; cwd: string; env?: NodeJS.ProcessEnv };
  /** A string only this instance's command line holds, so a reused pid is not taken for the server. */
  signature(paths: StatePaths): string;
  /** True when the server answers its clients (kafkajs lists topics, the mongodb driver pings). */
  probe(): Promise<boolean>;
}

export type ServerState = 'running' | 'external' | 'stopped';

export interface ServerStatus {
  readonly name: ServerName;
  readonly label: string;
  /** running: started by us (pid known); external: something else answers on the address; stopped. */
  readonly state: ServerState;
  readonly pid: number | undefined;
  readonly address: string;
  readonly logFile: string;
  readonly dataDir: string;
  /** Started by ensure() for tests: stopped when the last lease is released. */
  readonly autoStarted: boolean;
  /** Lease files whose process is still alive. */
  readonly liveLeases: number;
}

export interface StartOutcome {
  /** True when this call started the process. */
  readonly started: boolean;
  readonly state: Exclude<ServerState, 'stopped'>;
  readonly pid: number | undefined;
}

/** A hold on a server, taken by ensureX(); release it when done (vitest teardown). */
export interface InfraLease {
  readonly server: ServerName;
  readonly address: string;
  /** The lease file, `<state>/leases/<server>-<pid>-<random>`. */
  readonly file: string;
  /** True when this ensure call started the server. */
  readonly startedServer: boolean;
  /** Removes the lease; stops an auto-started server when no other live lease remains. Idempotent. */
  release(): Promise<void>;
}

/** Lock timeout: a waiter may sit behind a first-run install (mvn, go build). */
const LOCK_TIMEOUT_MS = 20 * 60_000;

export class ManagedServer {
  readonly paths: StatePaths;

  constructor(
    readonly spec: ServerSpec,
    readonly settings: InfraSettings,
  ) {
    this.paths = statePaths(settings, spec.name);
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return withDirLock(this.paths.lockDir, fn, { timeoutMs: LOCK_TIMEOUT_MS });
  }

  private pid(): number | undefined {
    return runningPid(this.paths.pidFile, this.spec.signature(this.paths));
  }

  async status(): Promise<ServerStatus> {
    const pid = this.pid();
    let state: ServerState = pid === undefined ? 'stopped' : 'running';
    if (pid === undefined && (await this.anyPortOpen()) && (await this.spec.probe())) state = 'external';
    return {
      name: this.spec.name,
      label: this.spec.label,
      state,
      pid,
      address: this.spec.address,
      logFile: this.paths.logFile,
      dataDir: this.paths.dataDir,
      autoStarted: state === 'running' && existsSync(this.paths.autoStartedMarker),
      liveLeases: this.liveLeases().length,
    };
  }

  /** Starts the server unless it runs; "already running" (ours or external) is success. */
  start(options: { autoStarted?: boolean } = {}): Promise<StartOutcome> {
    return this.locked(() => this.startUnlocked(options.autoStarted ?? false));
  }

  /** Stops the server; with removeData also deletes its data (a clean next start) and its leases. */
  stop(options: { removeData?: boolean } = {}): Promise<void> {
    return this.locked(() => this.stopUnlocked(options.removeData ?? false));
  }

  /** Stop then start with the same data, waiting until ready; keeps the auto-started marker. */
  restart(): Promise<StartOutcome> {
    return this.locked(async () => {
      const auto = existsSync(this.paths.autoStartedMarker);
      if (this.pid() === undefined && (await this.anyPortOpen())) {
        throw new FailedPreconditionError(
          `${this.spec.name}: cannot restart a server this tool did not start`,
          {
            server: this.spec.name,
            address: this.spec.address,
          },
        );
      }
      await this.stopUnlocked(false);
      return this.startUnlocked(auto);
    });
  }

  /** A server started with start() without autoStarted (infra:up) is never stopped by leases. */
  adopt(): void {
    rmSync(this.paths.autoStartedMarker, { force: true });
  }

  /** Starts the server if needed (marking it auto-started), then records a lease. */
  ensure(): Promise<InfraLease> {
    return this.locked(async () => {
      const outcome = await this.startUnlocked(true);
      const file = this.writeLease();
      return this.lease(file, outcome.started);
    });
  }

  private lease(file: string, startedServer: boolean): InfraLease {
    let released = false;
    return {
      server: this.spec.name,
      address: this.spec.address,
      file,
      startedServer,
      release: async () => {
        if (released) return;
        released = true;
        await this.locked(async () => {
          rmSync(file, { force: true });
          if (!existsSync(this.paths.autoStartedMarker)) return;
          if (this.liveLeases().length > 0) return;
          await this.stopUnlocked(true);
        });
      },
    };
  }

  private writeLease(): string {
    mkdirSync(this.paths.leasesDir, { recursive: true });
    const file = join(
      this.paths.leasesDir,
      `${this.spec.name}-${process.pid}-${randomBytes(6).toString('hex')}`,
    );
    writeFileSync(file, `${new Date().toISOString()}\n`);
    return file;
  }

  /** Lease files of live processes; those of dead processes are removed on the way. */
  liveLeases(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.paths.leasesDir);
    } catch {
      return [];
    }
    const live: string[] = [];
    for (const name of names) {
      const match = new RegExp(`^${this.spec.name}-(\\d+)-[0-9a-f]+$`).exec(name);
      if (match?.[1] === undefined) continue;
      const file = join(this.paths.leasesDir, name);
      if (isPidAlive(Number(match[1]))) live.push(file);
      else rmSync(file, { force: true });
    }
    return live;
  }

  private async anyPortOpen(): Promise<boolean> {
    const open = await Promise.all(this.spec.ports.map((p) => isPortOpen(p.host, p.port)));
    return open.some(Boolean);
  }

  private async startUnlocked(autoStarted: boolean): Promise<StartOutcome> {
    const { spec, paths } = this;
    const existing = this.pid();
    if (existing !== undefined) {
      // Ours and alive: a start that died half-way would leave it not ready, so wait for it.
      await this.waitReady(existing, false);
      this.settings.progress(`${spec.name}: already running on ${spec.address} (pid ${existing})`);
      return { started: false, state: 'running', pid: existing };
    }
    rmSync(paths.autoStartedMarker, { force: true });
    rmSync(paths.pidFile, { force: true });
    const busy: string[] = [];
    for (const p of spec.ports) if (await isPortOpen(p.host, p.port)) busy.push(`${p.host}:${p.port}`);
    if (busy.length > 0) {
      if (await spec.probe()) {
        this.settings.progress(
          `${spec.name}: ${spec.address} answers, but this tool did not start it; using it`,
        );
        return { started: false, state: 'external', pid: undefined };
      }
      throw new FailedPreconditionError(
        `${spec.name}: port ${busy.join(', ')} is in use by another process (not a ${spec.label} this tool started); ` +
          `free it or point ${spec.name === 'kafka' ? 'HM3_KAFKA_BROKERS' : 'HM3_MONGO_URL'} elsewhere`,
        { server: spec.name, ports: busy },
      );
    }
    await spec.install();
    const fresh = !existsSync(paths.dataDir);
    await spec.prepare(paths);
    const cmd = spec.command(paths);
    this.settings.progress(`${spec.name}: starting ${spec.label} on ${spec.address} (log: ${paths.logFile})`);
    const pid = spawnDetached({ ...cmd, logFile: paths.logFile, pidFile: paths.pidFile, truncateLog: fresh });
    if (autoStarted) writeFileSync(paths.autoStartedMarker, `${pid}\n`);
    await this.waitReady(pid, true);
    this.settings.progress(`${spec.name}: ready on ${spec.address} (pid ${pid})`);
    return { started: true, state: 'running', pid };
  }

  /** Waits until the probe answers; on failure stops what we started and throws with the log tail. */
  private async waitReady(pid: number, stopOnFailure: boolean): Promise<void> {
    const { spec, paths } = this;
    let exited = false;
    const ready = await waitUntil(
      async () => {
        if (!isPidAlive(pid)) {
          exited = true;
          return true;
        }
        return spec.probe();
      },
      spec.readyTimeoutMs,
      250,
    );
    if (ready && !exited) return;
    if (stopOnFailure) {
      await stopPid(pid, 5_000, paths.pidFile);
      rmSync(paths.autoStartedMarker, { force: true });
    }
    const why = exited ? 'exited during start' : `was not ready after ${spec.readyTimeoutMs} ms`;
    throw new UnavailableError(
      `${spec.name}: ${spec.label} ${why} (pid ${pid}); last lines of ${paths.logFile}:\n${await logTail(paths.logFile)}`,
      { server: spec.name, pid, logFile: paths.logFile },
    );
  }

  private async stopUnlocked(removeData: boolean): Promise<void> {
    const { spec, paths } = this;
    const pid = this.pid();
    if (pid !== undefined) {
      const how = await stopPid(pid, spec.graceMs, paths.pidFile);
      this.settings.progress(
        `${spec.name}: ${how === 'killed' ? 'killed (did not stop in time)' : 'stopped'} (pid ${pid})`,
      );
    }
    rmSync(paths.pidFile, { force: true });
    rmSync(paths.autoStartedMarker, { force: true });
    if (removeData) {
      rmSync(paths.dataDir, { recursive: true, force: true });
      rmSync(paths.configDir, { recursive: true, force: true });
      for (const name of safeReaddir(paths.leasesDir)) {
        if (name.startsWith(`${spec.name}-`)) rmSync(join(paths.leasesDir, name), { force: true });
      }
    }
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
