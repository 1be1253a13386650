// @hm3/infra: installs and starts the real Kafka broker and the MongoDB-compatible server (FerretDB)
// for tests and local runs. Test setups use ensureKafka() / ensureFerretDb() (or the ready-made
// vitest globalSetup, `@hm3/infra/vitest-setup`); `npm run infra:up|down|status` drives the same code.
export {
  Infra,
  infra,
  kafkaBrokers,
  mongoUrl,
  ensureKafka,
  ensureFerretDb,
  startKafka,
  startFerretDb,
  stopKafka,
  stopFerretDb,
  restartKafka,
  restartFerretDb,
} from './infra.js';
export type { InfraLease, ServerStatus, ServerState, StartOutcome } from './server.js';
export type { InfraSettings, InfraSettingsInput } from './settings.js';
export { infraSettings, DEFAULT_KAFKA_BROKERS, DEFAULT_MONGO_URL } from './settings.js';
export { KAFKA_VERSION } from './kafka.js';
export { FERRETDB_VERSION } from './ferretdb.js';
