import { Writable } from 'node:stream';
import { logLevel } from 'kafkajs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { pinoLogCreator, scrubSecrets } from './kafka-logger.js';

describe('kafka logger', () => {
  it('redacts credential keys and the configured secrets anywhere in an entry', () => {
    const error = new Error('auth failed for s3cr3t');
    const scrubbed = scrubSecrets(
      {
        sasl: { mechanism: 'plain', password: 's3cr3t' },
        nested: { password: 'x', note: 'pw=s3cr3t;' },
        error,
        broker: 'b:9092',
      },
      ['s3cr3t'],
    );
    const text = JSON.stringify(scrubbed);
    expect(text).not.toContain('s3cr3t');
    expect(scrubbed).toMatchObject({
      sasl: '[REDACTED]',
      nested: { password: '[REDACTED]', note: 'pw=[REDACTED];' },
      broker: 'b:9092',
    });
  });

  it('writes kafkajs entries through pino with the matching level and namespace', () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    });
    const log = pinoLogCreator(pino({ level: 'debug' }, sink), ['hunter2'])(logLevel.DEBUG);
    log({
      namespace: 'Connection',
      level: logLevel.ERROR,
      label: 'ERROR',
      log: { timestamp: 'now', message: 'bad hunter2', broker: 'b:1' },
    });
    log({
      namespace: 'Runner',
      level: logLevel.WARN,
      label: 'WARN',
      log: { timestamp: 'now', message: 'slow' },
    });
    log({
      namespace: 'Runner',
      level: logLevel.INFO,
      label: 'INFO',
      log: { timestamp: 'now', message: 'joined' },
    });
    expect(lines.map((l) => [l.level, l.kafka, l.msg])).toEqual([
      [50, 'Connection', 'bad [REDACTED]'],
      [40, 'Runner', 'slow'],
      [30, 'Runner', 'joined'],
    ]);
    expect(lines[0]!.broker).toBe('b:1');
  });
});
