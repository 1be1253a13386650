import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { FailedPreconditionError } from '@hm3/errors';
import { describe, expect, it } from 'vitest';
import { bearerToken, parseTokenFile, TokenStore } from './auth.js';
import { tempDir } from './echo-service.test-helper.js';
import { createLogger } from './logging.js';

const logger = createLogger({ level: 'silent' });

describe('token file', () => {
  it('keeps one token per line and skips blank and comment lines', () => {
    expect(parseTokenFile('# ci tokens\nalpha\n\n  beta  \r\n   # old: gamma\n')).toEqual(['alpha', 'beta']);
  });

  it('reads the bearer token of the authorization header only', () => {
    const metadata = new Metadata();
    expect(bearerToken(metadata)).toBeUndefined();
    metadata.set('authorization', 'Basic abc');
    expect(bearerToken(metadata)).toBeUndefined();
    metadata.set('authorization', 'bearer   s3cret');
    expect(bearerToken(metadata)).toBe('s3cret');
  });

  it('verifies against the set, reloads it, and keeps it when the file becomes unreadable', () => {
    const dir = tempDir();
    const file = join(dir, 'tokens');
    writeFileSync(file, 'one\ntwo\n');
    const store = new TokenStore(file, logger, 60_000);
    try {
      expect([
        store.verify('one'),
        store.verify('two'),
        store.verify('three'),
        store.verify(undefined),
        store.verify(''),
      ]).toEqual([true, true, false, false, false]);
      writeFileSync(file, 'three\n');
      store.reload();
      expect([store.verify('one'), store.verify('three')]).toEqual([false, true]);
      writeFileSync(file, '# everything revoked\n');
      store.reload();
      expect(store.size).toBe(0);
      expect(store.verify('three')).toBe(false);
    } finally {
      store.close();
    }
  });

  it('refuses to start on a missing or empty token file, naming it', () => {
    const dir = tempDir();
    expect(() => new TokenStore(join(dir, 'absent'), logger)).toThrow(FailedPreconditionError);
    writeFileSync(join(dir, 'empty'), '# nothing yet\n');
    expect(() => new TokenStore(join(dir, 'empty'), logger)).toThrow(/empty.*holds no token/);
  });
});
