// One Infra per settings (state folder + addresses); the module-level functions use the default one,
// configured by HM3_KAFKA_BROKERS, HM3_MONGO_URL, HM3_INFRA_DIR and HM3_BIN_DIR.
import type { InfraSettings, InfraSettingsInput } from './settings.js';
import { infraSettings } from './settings.js';
import { ManagedServer } from './server.js';
import type { InfraLease, ServerStatus, StartOutcome } from './server.js';
import { kafkaSpec } from './kafka.js';
import { ferretDbSpec } from './ferretdb.js';

export class Infra {
  readonly settings: InfraSettings;
  readonly kafka: ManagedServer;
  readonly ferretdb: ManagedServer;

  constructor(input: InfraSettingsInput | InfraSettings = {}) {
    this.settings = 'kafkaListen' in input ? input : infraSettings(input);
    this.kafka = new ManagedServer(kafkaSpec(this.settings), this.settings);
    this.ferretdb = new ManagedServer(ferretDbSpec(this.settings), this.settings);
  }

  /** `infra:up`: start both (in parallel), as permanent servers that no lease stops. */
  async up(): Promise<[StartOutcome, StartOutcome]> {
    const outcomes = await Promise.all([this.kafka.start(), this.ferretdb.start()]);
    this.kafka.adopt();
    this.ferretdb.adopt();
    return outcomes;
  }

  /** `infra:down`: stop both and remove their data, so the next start is clean. */
  async down(): Promise<void> {
    await Promise.all([this.kafka.stop({ removeData: true }), this.ferretdb.stop({ removeData: true })]);
  }

  async status(): Promise<[ServerStatus, ServerStatus]> {
    return Promise.all([this.kafka.status(), this.ferretdb.status()]);
  }
}

let defaultInfra: Infra | undefined;

/** The Infra of the environment's settings (created on first use). */
export function infra(): Infra {
  defaultInfra ??= new Infra();
  return defaultInfra;
}

/** Broker list for kafkajs: HM3_KAFKA_BROKERS or 127.0.0.1:9092. */
export function kafkaBrokers(): string[] {
  return infra()
    .settings.kafkaBrokers.split(',')
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
}

/** HM3_MONGO_URL or mongodb://127.0.0.1:27017. */
export function mongoUrl(): string {
  return infra().settings.mongoUrl;
}

/** Starts Kafka unless it runs (then marks it auto-started) and takes a lease on it. */
export function ensureKafka(): Promise<InfraLease> {
  return infra().kafka.ensure();
}

export function ensureFerretDb(): Promise<InfraLease> {
  return infra().ferretdb.ensure();
}

/** Starts Kafka unless it runs; a server started this way is never stopped by a lease. */
export async function startKafka(): Promise<StartOutcome> {
  return infra().kafka.start();
}

export async function startFerretDb(): Promise<StartOutcome> {
  return infra().ferretdb.start();
}

/** Stops Kafka, keeping its data (restart with startKafka()). */
export function stopKafka(options: { removeData?: boolean } = {}): Promise<void> {
  return infra().kafka.stop(options);
}

export function stopFerretDb(options: { removeData?: boolean } = {}): Promise<void> {
  return infra().ferretdb.stop(options);
}

/** Stop then start Kafka with the same data, resolving once it is ready (reconnect tests). */
export function restartKafka(): Promise<StartOutcome> {
  return infra().kafka.restart();
}

export function restartFerretDb(): Promise<StartOutcome> {
  return infra().ferretdb.restart();
}
