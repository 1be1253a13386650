/**
 * The servers of the e2e run (vitest globalSetup). FerretDB is tools/infra's shared one: each
 * scenario has its own database. Kafka is a broker of the run's own, started by tools/infra in a
 * private state folder on free ports and removed at the end, so that nothing else on the machine
 * that produces or consumes the hm3.* topics (a benchmark, another run, events left by earlier runs)
 * exchanges events with the scenarios' services: the topic names are the contract's, the same for
 * everyone on one broker. HM3_E2E_KAFKA_BROKERS=host:port runs against a broker already running instead.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureFerretDb, Infra, mongoUrl } from '@hm3/infra';
import { TOPIC_NAMES } from '@hm3/proto';
import { Kafka, logLevel } from 'kafkajs';
import { freePort } from './services.js';

/** Partitions per topic: the services' default (HM3_KAFKA_PARTITIONS). */
const TOPIC_PARTITIONS = 6;

/**
 * The platform's topics, declared before any service starts (as a cluster's operator declares them):
 * four services starting at once on an empty broker race to create them, and the loser of a race
 * may read a topic's metadata before its partitions have leaders and exit.
 */
async function createTopics(brokers: string): Promise<void> {
  const admin = new Kafka({
    clientId: 'hm3-e2e-setup',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: TOPIC_NAMES.map((topic) => ({ topic, numPartitions: TOPIC_PARTITIONS })),
    });
  } finally {
    await admin.disconnect();
  }
}

export default async function setup(): Promise<() => Promise<void>> {
  const ferretdb = await ensureFerretDb();
  process.env['HM3_MONGO_URL'] = mongoUrl();
  const given = process.env['HM3_E2E_KAFKA_BROKERS'];
  if (given !== undefined && given !== '') {
    process.env['HM3_KAFKA_BROKERS'] = given;
    return () => ferretdb.release();
  }
  const stateDir = await mkdtemp(path.join(tmpdir(), 'hm3-e2e-kafka-'));
  const kafka = new Infra({
    stateDir,
    kafkaBrokers: `127.0.0.1:${await freePort()}`,
    kafkaControllerPort: await freePort(),
  }).kafka;
  const stop = async (): Promise<void> => {
    await kafka.stop({ removeData: true }).catch(() => undefined);
    await rm(stateDir, { recursive: true, force: true });
  };
  try {
    await kafka.start();
  } catch (error) {
    await stop();
    await ferretdb.release();
    throw error;
  }
  process.env['HM3_KAFKA_BROKERS'] = kafka.settings.kafkaBrokers;
  try {
    await createTopics(kafka.settings.kafkaBrokers);
  } catch (error) {
    await stop();
    await ferretdb.release();
    throw error;
  }
  return async () => {
    await stop();
    await ferretdb.release();
  };
}
