import { describe, expect, it } from 'vitest';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '@hm3/errors';
import { infraSettings, parseBrokers, parseMongoUrl, statePaths } from './settings.js';

describe('infraSettings', () => {
  it('defaults to loopback Kafka 9092 (controller 9093), FerretDB 27017 and ~/.cache/hm3', () => {
    const s = infraSettings({}, {});
    expect(s.kafkaBrokers).toBe('127.0.0.1:9092');
    expect(s.kafkaListen).toEqual({ host: '127.0.0.1', port: 9092 });
    expect(s.kafkaControllerPort).toBe(9093);
    expect(s.mongoUrl).toBe('mongodb://127.0.0.1:27017');
    expect(s.mongoListen).toEqual({ host: '127.0.0.1', port: 27017 });
    expect(s.stateDir).toBe(join(homedir(), '.cache', 'hm3', 'infra'));
    expect(s.binDir).toBe(join(homedir(), '.cache', 'hm3', 'bin'));
  });

  it('reads the addresses and folders from the environment', () => {
    const s = infraSettings(
      {},
      {
        HM3_KAFKA_BROKERS: '127.0.0.1:19092, 127.0.0.1:19094',
        HM3_KAFKA_CONTROLLER_PORT: '19999',
        HM3_MONGO_URL: 'mongodb://user:pw@127.0.0.1:27117/hm3?retryWrites=false',
        HM3_INFRA_DIR: '/tmp/x-infra',
        HM3_BIN_DIR: '/tmp/x-bin',
      },
    );
    expect(s.kafkaListen).toEqual({ host: '127.0.0.1', port: 19092 });
    expect(s.kafkaControllerPort).toBe(19999);
    expect(s.mongoListen).toEqual({ host: '127.0.0.1', port: 27117 });
    expect(statePaths(s, 'kafka').logFile).toBe('/tmp/x-infra/logs/kafka.log');
    expect(statePaths(s, 'ferretdb').dataDir).toBe('/tmp/x-infra/data/ferretdb');
    expect(s.binDir).toBe('/tmp/x-bin');
  });

  it('explicit values win over the environment', () => {
    const s = infraSettings({ kafkaBrokers: 'localhost:29092' }, { HM3_KAFKA_BROKERS: '127.0.0.1:19092' });
    expect(s.kafkaListen).toEqual({ host: 'localhost', port: 29092 });
    expect(s.kafkaControllerPort).toBe(29093);
  });

  it('refuses addresses it cannot listen on, naming the variable', () => {
    expect(() => infraSettings({}, { HM3_KAFKA_BROKERS: '127.0.0.1' })).toThrow(InvalidArgumentError);
    expect(() => infraSettings({}, { HM3_KAFKA_BROKERS: '127.0.0.1:99999' })).toThrow(/HM3_KAFKA_BROKERS/);
    expect(() => infraSettings({}, { HM3_MONGO_URL: 'http://127.0.0.1:27017' })).toThrow(/HM3_MONGO_URL/);
  });

  it('parses broker lists and mongodb URLs without a port', () => {
    expect(parseBrokers('a:1,b:2')).toEqual([
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
    ]);
    expect(parseMongoUrl('mongodb://db.local/x')).toEqual({ host: 'db.local', port: 27017 });
  });
});
