// Apache Kafka, one node in KRaft mode (broker + controller in one JVM). Jars come from Maven Central
// through tools/infra/kafka/pom.xml into ~/.cache/hm3/bin/kafka-<version>/libs.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import type { InfraSettings, StatePaths } from './settings.js';
import { runCommand } from './run-command.js';
import type { ServerSpec } from './server.js';

/** Kafka 4.1.x: a produce / consume round trip with a consumer group works with kafkajs 2.2.4. */
export const KAFKA_VERSION = '4.1.2';

const POM = fileURLToPath(new URL('../kafka/pom.xml', import.meta.url));

export function kafkaLibsDir(settings: InfraSettings): string {
  return join(settings.binDir, `kafka-${KAFKA_VERSION}`, 'libs');
}

/** Copies the broker's runtime jars from Maven Central (through ~/.m2) once; a no-op afterwards. */
export async function installKafka(settings: InfraSettings): Promise<string> {
  const libs = kafkaLibsDir(settings);
  const home = join(libs, '..');
  if (existsSync(join(home, '.complete'))) return libs;
  settings.progress(`kafka: resolving Kafka ${KAFKA_VERSION} jars from Maven Central (first run)...`);
  mkdirSync(settings.binDir, { recursive: true });
  const staging = `${home}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await runCommand(
      'mvn',
      [
        '-B',
        '-q',
        '-f',
        POM,
        'dependency:copy-dependencies',
        `-Dkafka.version=${KAFKA_VERSION}`,
        '-DincludeScope=runtime',
        `-DoutputDirectory=${join(staging, 'libs')}`,
      ],
      { cwd: join(POM, '..'), what: 'kafka: mvn dependency:copy-dependencies' },
    );
    writeFileSync(join(staging, '.complete'), `${KAFKA_VERSION}\n`);
    rmSync(home, { recursive: true, force: true }); // an incomplete earlier attempt
    try {
      renameSync(staging, home);
    } catch (error) {
      if (!existsSync(join(home, '.complete'))) throw error; // else another process won the race
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  settings.progress(`kafka: jars in ${libs}`);
  return libs;
}

function serverProperties(settings: InfraSettings, paths: StatePaths): string {
  const { host, port } = settings.kafkaListen;
  const controller = `${host}:${settings.kafkaControllerPort}`;
  return [
    '# Written by @hm3/infra on every start; edit tools/infra/src/kafka.ts instead.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@${controller}`,
    `listeners=PLAINTEXT://${host}:${port},CONTROLLER://${controller}`,
    `advertised.listeners=PLAINTEXT://${host}:${port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${paths.dataDir}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=4',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'group.min.session.timeout.ms=1000',
    'auto.create.topics.enable=false',
    '',
  ].join('\n');
}

function log4j2Properties(level: 'INFO' | 'WARN'): string {
  return [
    'status = warn',
    'appender.stdout.type = Console',
    'appender.stdout.name = STDOUT',
    'appender.stdout.layout.type = PatternLayout',
    'appender.stdout.layout.pattern = [%d] %p %m (%c)%n',
    `rootLogger.level = ${level}`,
    'rootLogger.appenderRef.stdout.ref = STDOUT',
    // The config dumps and per-request chatter of a healthy broker are of no use in a test log.
    'logger.config.name = org.apache.kafka.common.config.AbstractConfig',
    'logger.config.level = WARN',
    'logger.state.name = state.change.logger',
    'logger.state.level = WARN',
    '',
  ].join('\n');
}

/** A Kafka cluster id: 16 random bytes, base64url without padding, not starting with '-'. */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

export function kafkaSpec(settings: InfraSettings): ServerSpec {
  const { host, port } = settings.kafkaListen;
  return {
    name: 'kafka',
    label: `Kafka ${KAFKA_VERSION}`,
    address: settings.kafkaBrokers,
    ports: [
      { host, port },
      { host, port: settings.kafkaControllerPort },
    ],
    graceMs: 30_000,
    readyTimeoutMs: 90_000,
    install: async () => {
      await installKafka(settings);
    },
    prepare: async (paths) => {
      const libs = kafkaLibsDir(settings);
      mkdirSync(paths.configDir, { recursive: true });
      const props = join(paths.configDir, 'server.properties');
      writeFileSync(props, serverProperties(settings, paths));
      writeFileSync(join(paths.configDir, 'log4j2.properties'), log4j2Properties('INFO'));
      writeFileSync(join(paths.configDir, 'log4j2-tool.properties'), log4j2Properties('WARN'));
      if (existsSync(join(paths.dataDir, 'meta.properties'))) return;
      rmSync(paths.dataDir, { recursive: true, force: true });
      mkdirSync(paths.dataDir, { recursive: true });
      await runCommand(
        'java',
        [
          `-Dlog4j2.configurationFile=${join(paths.configDir, 'log4j2-tool.properties')}`,
          '-cp',
          `${libs}/*`,
          'kafka.tools.StorageTool',
          'format',
          '-t',
          newClusterId(),
          '-c',
          props,
        ],
        { cwd: paths.configDir, what: 'kafka: StorageTool format' },
      );
    },
    command: (paths) => ({
      command: 'java',
      args: [
        '-Xmx512m',
        '-Xms512m',
        '-Djava.awt.headless=true',
        `-Dlog4j2.configurationFile=${join(paths.configDir, 'log4j2.properties')}`,
        '-cp',
        `${kafkaLibsDir(settings)}/*`,
        'kafka.Kafka',
        join(paths.configDir, 'server.properties'),
      ],
      cwd: paths.configDir,
    }),
    signature: (paths) => join(paths.configDir, 'server.properties'),
    probe: () => probeKafka(settings.kafkaBrokers),
  };
}

/** Ready when an admin client connects and lists topics. */
export async function probeKafka(brokers: string): Promise<boolean> {
  const kafka = new Kafka({
    clientId: 'hm3-infra-probe',
    brokers: brokers.split(',').map((b) => b.trim()),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
