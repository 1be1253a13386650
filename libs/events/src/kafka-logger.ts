import type { Logger } from 'pino';
import { logLevel as KafkaLogLevel, type logCreator } from 'kafkajs';

export type KafkaLogLevelName = 'nothing' | 'error' | 'warn' | 'info' | 'debug';

export const KAFKA_LOG_LEVELS: Record<KafkaLogLevelName, KafkaLogLevel> = {
  nothing: KafkaLogLevel.NOTHING,
  error: KafkaLogLevel.ERROR,
  warn: KafkaLogLevel.WARN,
  info: KafkaLogLevel.INFO,
  debug: KafkaLogLevel.DEBUG,
};

const REDACTED = '[REDACTED]';
/** Keys whose values are credentials or TLS material, whatever they hold. */
const SECRET_KEYS =
  /^(password|passphrase|secret|token|sasl|ssl|authorization|credentials?|key|cert|ca|pfx)$/i;

/**
 * A copy of `value` safe to log: credential-named keys are redacted, and any string containing one
 * of `secrets` (the configured password, say) has it replaced, wherever kafkajs put it.
 */
export function scrubSecrets(value: unknown, secrets: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') {
    let out = value;
    for (const secret of secrets) if (secret) out = out.split(secret).join(REDACTED);
    return out;
  }
  if (value === null || typeof value !== 'object' || depth > 6) return value;
  if (value instanceof Error) {
    return {
      name: value.name,
      message: scrubSecrets(value.message, secrets),
      stack: scrubSecrets(value.stack, secrets),
    };
  }
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `<${value.byteLength} bytes>`;
  if (Array.isArray(value)) return value.map((v) => scrubSecrets(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = SECRET_KEYS.test(k) ? REDACTED : scrubSecrets(v, secrets, depth + 1);
  return out;
}

/** kafkajs's logCreator writing through pino: one line per kafkajs log entry, secrets scrubbed. */
export function pinoLogCreator(logger: Logger, secrets: readonly string[] = []): logCreator {
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _timestamp, ...extra } = log;
      const fields = { kafka: namespace, ...(scrubSecrets(extra, secrets) as Record<string, unknown>) };
      const text = scrubSecrets(String(message), secrets) as string;
      if (level === KafkaLogLevel.ERROR) logger.error(fields, text);
      else if (level === KafkaLogLevel.WARN) logger.warn(fields, text);
      else if (level === KafkaLogLevel.INFO) logger.info(fields, text);
      else logger.debug(fields, text);
    };
}
