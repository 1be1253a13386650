/**
 * Bearer-token auth: a set of accepted tokens read from a file (one per line, `#` comment lines and
 * blank lines ignored), re-read when the file changes so tokens rotate without a restart.
 * Comparison is constant-time: every stored token's SHA-256 is compared with timingSafeEqual.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import type { Metadata } from '@grpc/grpc-js';
import { FailedPreconditionError } from '@hm3/errors';
import type { Logger } from 'pino';

export function parseTokenFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** The token of `authorization: Bearer <token>`, or undefined when absent or another scheme. */
export function bearerToken(metadata: Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export class TokenStore {
  private digests: Buffer[] = [];
  private readonly onChange = (current: Stats, previous: Stats): void => {
    if (
      current.mtimeMs === previous.mtimeMs &&
      current.ino === previous.ino &&
      current.size === previous.size
    )
      return;
    if (current.nlink === 0) {
      this.logger.warn({ tokenFile: this.file }, 'token file disappeared; keeping the previous tokens');
      return;
    }
    this.reload();
  };

  /** Reads the file now (throws when it is unreadable or holds no token) and watches it. */
  constructor(
    readonly file: string,
    private readonly logger: Logger,
    reloadIntervalMs = 1000,
  ) {
    let tokens: string[];
    try {
      tokens = parseTokenFile(readFileSync(file, 'utf8'));
    } catch (cause) {
      throw new FailedPreconditionError(`cannot read token file ${file}`, { tokenFile: file }, cause);
    }
    if (tokens.length === 0) {
      throw new FailedPreconditionError(`token file ${file} holds no token`, { tokenFile: file });
    }
    this.digests = tokens.map(digest);
    watchFile(file, { interval: reloadIntervalMs, persistent: false }, this.onChange);
  }

  get size(): number {
    return this.digests.length;
  }

  /** Re-reads the file; on a read error the previous tokens stay in force. */
  reload(): void {
    try {
      const tokens = parseTokenFile(readFileSync(this.file, 'utf8'));
      this.digests = tokens.map(digest);
      if (tokens.length === 0)
        this.logger.warn({ tokenFile: this.file }, 'token file is empty; every call is refused');
      else this.logger.info({ tokenFile: this.file, tokens: tokens.length }, 'token file reloaded');
    } catch (error) {
      this.logger.warn(
        { tokenFile: this.file, err: error },
        'token file unreadable; keeping the previous tokens',
      );
    }
  }

  verify(token: string | undefined): boolean {
    if (token === undefined) return false;
    const candidate = digest(token);
    let matched = 0;
    for (const known of this.digests) matched |= Number(timingSafeEqual(candidate, known));
    return matched === 1;
  }

  close(): void {
    unwatchFile(this.file, this.onChange);
  }
}
