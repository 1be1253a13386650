/**
 * Structured logs with pino: one JSON line per event. The server logs one line per RPC carrying the
 * request id and the trace id, so a candidate can be followed from request to score.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export interface CreateLoggerOptions {
  /** pino level name; `silent` turns logging off. */
  level?: string;
  /** Service name, added to every line as `service`. */
  name?: string;
  /** Where lines go; default stdout. Tests pass a stream to read the lines back. */
  destination?: DestinationStream;
}

export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const base = options.name === undefined ? {} : { service: options.name };
  return pino(
    {
      level: options.level ?? 'info',
      base,
      timestamp: pino.stdTimeFunctions.isoTime,
      // Never log credentials, whatever a caller passes in a log object.
      redact: { paths: ['authorization', '*.authorization', 'token', '*.token'], censor: '[redacted]' },
    },
    options.destination,
  );
}
