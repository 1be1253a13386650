/**
 * The child process of the Kafka crash test: `node --import tsx kafka-crash-child.test-helper.ts`.
 * It consumes with the idempotent consumer over the real broker, writes effects and markers to the
 * real MongoDB-compatible server through @hm3/store's Mongo adapter (the counter through the driver:
 * the store has no counter repository), and reports progress as JSON lines on stdout. Its fault hooks
 * SIGKILL it; SIGTERM stops it gracefully.
 */
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { createMongoStore } from '@hm3/store';
import type { CrashConsumerProgress, CrashConsumerSpec } from './event-bus.contract.js';
import { startCrashConsumer } from './crash-consumer.test-helper.js';
import { KafkaEventBus } from './kafka-event-bus.js';
import { CRASH_DB, mongoEffects } from './mongo-crash-effects.test-helper.js';

async function main(): Promise<void> {
  const spec = JSON.parse(process.env.HM3_CRASH_SPEC ?? '') as CrashConsumerSpec;
  const mongoUrl = process.env.HM3_MONGO_URL ?? 'mongodb://127.0.0.1:27017';
  const report = (type: string, progress?: CrashConsumerProgress) =>
    process.stdout.write(`${JSON.stringify({ type, ...progress })}\n`);
  const store = createMongoStore({ url: mongoUrl, database: CRASH_DB });
  await store.start();
  const client = await new MongoClient(mongoUrl).connect();
  const bus = new KafkaEventBus({
    brokers: (process.env.HM3_KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
    clientId: `crash-child-${process.pid}`,
    consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500 },
    logger: pino({ level: 'warn' }, pino.destination(2)),
    kafkaLogLevel: 'error',
  });
  await bus.start();
  let progress: () => CrashConsumerProgress = () => ({
    handled: 0,
    applied: 0,
    reapplied: 0,
    redeliveries: 0,
  });
  const die = async () => {
    report('progress', progress());
    report('dying');
    process.kill(process.pid, 'SIGKILL');
    await new Promise<never>(() => undefined);
  };
  const consumer = await startCrashConsumer(
    bus,
    store.processedEvents,
    mongoEffects(client, store),
    spec,
    die,
  );
  progress = consumer.progress;
  report('ready');
  let last = '';
  const timer = setInterval(() => {
    const now = JSON.stringify(progress());
    if (now !== last) {
      last = now;
      report('progress', progress());
    }
  }, 50);
  process.once('SIGTERM', () => {
    void (async () => {
      clearInterval(timer);
      await consumer.subscription.stop();
      report('progress', progress());
      await bus.close();
      await client.close();
      await store.close();
      report('stopped', progress());
      process.exit(0);
    })();
  });
}

main().catch((error) => {
  process.stderr.write(`crash child failed: ${String(error?.stack ?? error)}\n`);
  process.exit(1);
});
