// Where the servers listen and where their state lives. Read from the environment once per call, so a
// test can build its own isolated settings (other ports, another state folder) with `infraSettings()`.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '@hm3/errors';

export const DEFAULT_KAFKA_BROKERS = '127.0.0.1:9092';
export const DEFAULT_MONGO_URL = 'mongodb://127.0.0.1:27017';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface InfraSettings {
  /** pid files, markers, leases, locks, logs, data: ~/.cache/hm3/infra (HM3_INFRA_DIR). */
  readonly stateDir: string;
  /** Installed binaries shared by every state folder: ~/.cache/hm3/bin (HM3_BIN_DIR). */
  readonly binDir: string;
  /** What clients use: HM3_KAFKA_BROKERS (comma separated); the broker listens on the first. */
  readonly kafkaBrokers: string;
  readonly kafkaListen: HostPort;
  /** The KRaft controller listener (HM3_KAFKA_CONTROLLER_PORT, default broker port + 1). */
  readonly kafkaControllerPort: number;
  /** What clients use: HM3_MONGO_URL; FerretDB listens on its first host. */
  readonly mongoUrl: string;
  readonly mongoListen: HostPort;
  /** Progress lines ("kafka: resolving jars ..."); silent by default in the programmatic API. */
  readonly progress: (line: string) => void;
}

export interface InfraSettingsInput {
  stateDir?: string;
  binDir?: string;
  kafkaBrokers?: string;
  kafkaControllerPort?: number;
  mongoUrl?: string;
  progress?: (line: string) => void;
}

/** Settings from explicit values, then the environment, then the defaults. */
export function infraSettings(
  input: InfraSettingsInput = {},
  env: NodeJS.ProcessEnv = process.env,
): InfraSettings {
  const cacheRoot = join(homedir(), '.cache', 'hm3');
  const kafkaBrokers = input.kafkaBrokers ?? nonEmpty(env['HM3_KAFKA_BROKERS']) ?? DEFAULT_KAFKA_BROKERS;
  const mongoUrl = input.mongoUrl ?? nonEmpty(env['HM3_MONGO_URL']) ?? DEFAULT_MONGO_URL;
  const kafkaListen = parseBrokers(kafkaBrokers)[0];
  if (kafkaListen === undefined) {
    throw new InvalidArgumentError('HM3_KAFKA_BROKERS names no broker', {
      field: 'HM3_KAFKA_BROKERS',
      value: kafkaBrokers,
    });
  }
  const controllerEnv = nonEmpty(env['HM3_KAFKA_CONTROLLER_PORT']);
  const kafkaControllerPort =
    input.kafkaControllerPort ??
    (controllerEnv === undefined
      ? kafkaListen.port + 1
      : parsePort(controllerEnv, 'HM3_KAFKA_CONTROLLER_PORT'));
  return {
    stateDir: input.stateDir ?? nonEmpty(env['HM3_INFRA_DIR']) ?? join(cacheRoot, 'infra'),
    binDir: input.binDir ?? nonEmpty(env['HM3_BIN_DIR']) ?? join(cacheRoot, 'bin'),
    kafkaBrokers,
    kafkaListen,
    kafkaControllerPort,
    mongoUrl,
    mongoListen: parseMongoUrl(mongoUrl),
    progress: input.progress ?? (() => undefined),
  };
}

/** "h1:9092,h2:9092" -> [{host, port}, ...] */
export function parseBrokers(brokers: string): HostPort[] {
  return brokers
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => parseHostPort(s, 'HM3_KAFKA_BROKERS'));
}

/** The first host of a mongodb:// URL (default port 27017). */
export function parseMongoUrl(url: string): HostPort {
  const match = /^mongodb:\/\/(?:[^@/]*@)?([^/?,]+)/.exec(url);
  if (match?.[1] === undefined) {
    throw new InvalidArgumentError(`HM3_MONGO_URL is not a mongodb:// URL: ${url}`, {
      field: 'HM3_MONGO_URL',
      value: url,
    });
  }
  const hostPort = match[1];
  return hostPort.includes(':') && !hostPort.endsWith(']')
    ? parseHostPort(hostPort, 'HM3_MONGO_URL')
    : { host: hostPort, port: 27017 };
}

function parseHostPort(value: string, field: string): HostPort {
  const at = value.lastIndexOf(':');
  if (at <= 0)
    throw new InvalidArgumentError(`${field}: expected host:port, got "${value}"`, { field, value });
  const host = value.slice(0, at).replace(/^\[|\]$/g, '');
  return { host, port: parsePort(value.slice(at + 1), field) };
}

function parsePort(value: string, field: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`${field}: "${value}" is not a TCP port`, { field, value });
  }
  return port;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** The state layout, one place. */
export function statePaths(settings: InfraSettings, server: ServerName) {
  const { stateDir } = settings;
  return {
    pidFile: join(stateDir, 'run', `${server}.pid`),
    autoStartedMarker: join(stateDir, 'run', `${server}.auto-started`),
    logFile: join(stateDir, 'logs', `${server}.log`),
    dataDir: join(stateDir, 'data', server),
    configDir: join(stateDir, 'config', server),
    leasesDir: join(stateDir, 'leases'),
    lockDir: join(stateDir, 'locks', `${server}.lock`),
  };
}

export type ServerName = 'kafka' | 'ferretdb';
export type StatePaths = ReturnType<typeof statePaths>;
