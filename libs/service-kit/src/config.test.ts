import { InvalidArgumentError } from '@hm3/errors';
import { describe, expect, it } from 'vitest';
import { envName, flagName, loadServiceConfig } from './config.js';

function failure(run: () => unknown): InvalidArgumentError {
  try {
    run();
  } catch (error) {
    if (error instanceof InvalidArgumentError) return error;
    throw error;
  }
  throw new Error('expected an InvalidArgumentError');
}

describe('loadServiceConfig', () => {
  it('applies built-in defaults, then the service defaults, then env, then flags', () => {
    const config = loadServiceConfig({
      defaults: { port: 6000, metricsPort: 6001, tokenFile: '/etc/hm3/tokens' },
      env: { HM3_PORT: '7000', HM3_LOG_LEVEL: 'debug', HM3_MTLS: 'false', OTHER: 'x' },
      argv: [
        'serve',
        '--port',
        '8000',
        '--max-send-message-bytes=1024',
        '--unknown-flag',
        'v',
        '--no-allow-unauthenticated',
      ],
    });
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 8000,
      metricsPort: 6001,
      tokenFile: '/etc/hm3/tokens',
      logLevel: 'debug',
      maxSendMessageBytes: 1024,
      maxReceiveMessageBytes: 4 * 1024 * 1024,
      allowUnauthenticated: false,
      mtls: false,
      shutdownGraceMs: 10_000,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('parses boolean flags and env values and turns metrics off', () => {
    const config = loadServiceConfig({
      env: { HM3_ALLOW_UNAUTHENTICATED: 'yes', HM3_METRICS_PORT: 'off' },
      argv: ['--tls-cert-file', 'c.pem', '--tls-key-file', 'k.pem', '--tls-ca-file=ca.pem', '--mtls'],
    });
    expect(config).toMatchObject({
      allowUnauthenticated: true,
      metricsPort: null,
      mtls: true,
      tlsCaFile: 'ca.pem',
    });
  });

  it('names the field and its source when a value is invalid', () => {
    const port = failure(() => loadServiceConfig({ env: { HM3_PORT: 'eighty', HM3_TOKEN_FILE: 't' } }));
    expect(port.message).toContain('port (env HM3_PORT)');
    expect(port.details.field).toBe('port');
    const range = failure(() =>
      loadServiceConfig({ env: { HM3_TOKEN_FILE: 't' }, argv: ['--metrics-port', '70000'] }),
    );
    expect(range.message).toContain('metricsPort (flag --metrics-port)');
    const level = failure(() => loadServiceConfig({ env: { HM3_TOKEN_FILE: 't', HM3_LOG_LEVEL: 'loud' } }));
    expect(level.message).toContain('logLevel (env HM3_LOG_LEVEL)');
    const grace = failure(() => loadServiceConfig({ defaults: { tokenFile: 't', shutdownGraceMs: -5 } }));
    expect(grace.message).toContain('shutdownGraceMs (defaults)');
    const unknown = failure(() =>
      loadServiceConfig({ defaults: { tokenFile: 't', colour: 'red' } as never }),
    );
    expect(unknown.message).toContain('colour');
  });

  it('requires a token file unless auth is explicitly off, and complete TLS settings', () => {
    expect(failure(() => loadServiceConfig({})).details.field).toBe('tokenFile');
    const half = failure(() =>
      loadServiceConfig({ env: { HM3_TOKEN_FILE: 't', HM3_TLS_CERT_FILE: 'c.pem' } }),
    );
    expect(half.details.field).toBe('tlsKeyFile');
    const mtls = failure(() =>
      loadServiceConfig({
        env: { HM3_TOKEN_FILE: 't', HM3_TLS_CERT_FILE: 'c', HM3_TLS_KEY_FILE: 'k' },
        argv: ['--mtls'],
      }),
    );
    expect(mtls.details.field).toBe('tlsCaFile');
  });

  it('derives env and flag names from field names', () => {
    expect(envName('maxReceiveMessageBytes')).toBe('HM3_MAX_RECEIVE_MESSAGE_BYTES');
    expect(envName('port', 'MERGE_')).toBe('MERGE_PORT');
    expect(flagName('tlsCaFile')).toBe('--tls-ca-file');
  });
});
