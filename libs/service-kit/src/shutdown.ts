/**
 * Signal handling: on SIGTERM or SIGINT, run the server's graceful shutdown (health NOT_SERVING,
 * drain, tryShutdown, forceShutdown after the grace period) and exit 0. A repeated signal is logged
 * and otherwise ignored; the grace period already bounds the wait.
 */
import type { Logger } from './logging.js';

export interface Stoppable {
  readonly logger: Logger;
  shutdown(reason?: string): Promise<void>;
}

export interface ShutdownHandlerOptions {
  signals?: readonly NodeJS.Signals[];
  /** Default process.exit. */
  exit?: (code: number) => void;
}

/** Installs the handlers; returns a function that removes them. */
export function installShutdownHandlers(server: Stoppable, options: ShutdownHandlerOptions = {}): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      server.logger.warn({ signal }, 'shutdown already in progress');
      return;
    }
    stopping = true;
    server.logger.info({ signal }, 'signal received');
    server.shutdown(signal).then(
      () => exit(0),
      (error: unknown) => {
        server.logger.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
