/**
 * The service configuration: built-in defaults < the service's `defaults` < environment < flags,
 * validated once by zod. An invalid value fails with an InvalidArgumentError that names the field
 * and where its value came from (`env HM3_PORT`, `flag --port`, ...).
 */
import { InvalidArgumentError } from '@hm3/errors';
import { z } from 'zod';

const port = z.number().int().min(0).max(65_535);
const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().min(0);

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const serviceConfigSchema = z
  .object({
    /** Interface the gRPC server and the metrics endpoint bind to. */
    host: z.string().min(1).default('0.0.0.0'),
    /** gRPC port; 0 picks a free one. */
    port: port.default(50051),
    /** Prometheus /metrics HTTP port; 0 picks a free one; null turns the endpoint off. */
    metricsPort: port.nullable().default(9464),
    /** File of accepted bearer tokens, one per line, `#` comment lines allowed; re-read on change. */
    tokenFile: z.string().min(1).optional(),
    /** Run without bearer-token auth; only for local development and tests. */
    allowUnauthenticated: z.boolean().default(false),
    /** How often the token file is checked for changes. */
    tokenReloadIntervalMs: positiveInt.default(1000),
    /** PEM server certificate chain (TLS when set, together with tlsKeyFile). */
    tlsCertFile: z.string().min(1).optional(),
    /** PEM private key of tlsCertFile. */
    tlsKeyFile: z.string().min(1).optional(),
    /** PEM CA bundle that client certificates must chain to (mTLS). */
    tlsCaFile: z.string().min(1).optional(),
    /** Require and verify client certificates against tlsCaFile. */
    mtls: z.boolean().default(false),
    /** grpc.max_receive_message_length. */
    maxReceiveMessageBytes: positiveInt.default(4 * 1024 * 1024),
    /** grpc.max_send_message_length. */
    maxSendMessageBytes: positiveInt.default(4 * 1024 * 1024),
    /** After SIGTERM: how long health reports NOT_SERVING while the server still accepts calls. */
    shutdownDrainDelayMs: nonNegativeInt.default(1000),
    /** After SIGTERM: total time for in-flight calls before they are cancelled. */
    shutdownGraceMs: positiveInt.default(10_000),
    logLevel: z.enum(LOG_LEVELS).default('info'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.tokenFile === undefined && !c.allowUnauthenticated) {
      ctx.addIssue({
        code: 'custom',
        path: ['tokenFile'],
        message: 'required (bearer-token auth is on) unless allowUnauthenticated is set',
      });
    }
    if ((c.tlsCertFile === undefined) !== (c.tlsKeyFile === undefined)) {
      const missing = c.tlsCertFile === undefined ? 'tlsCertFile' : 'tlsKeyFile';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'TLS needs both tlsCertFile and tlsKeyFile' });
    }
    if (c.mtls && c.tlsCaFile === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['tlsCaFile'],
        message: 'mtls needs tlsCaFile to verify clients',
      });
    }
    if (c.mtls && c.tlsCertFile === undefined && c.tlsKeyFile === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['tlsCertFile'],
        message: 'mtls needs tlsCertFile and tlsKeyFile',
      });
    }
  });

export type ServiceConfig = Readonly<z.output<typeof serviceConfigSchema>>;
export type ServiceConfigInput = z.input<typeof serviceConfigSchema>;
type Field = keyof ServiceConfig;

const FIELDS = Object.keys(serviceConfigSchema.shape) as Field[];
const BOOLEAN_FIELDS = new Set<Field>(['allowUnauthenticated', 'mtls']);
const NUMBER_FIELDS = new Set<Field>([
  'port',
  'metricsPort',
  'tokenReloadIntervalMs',
  'maxReceiveMessageBytes',
  'maxSendMessageBytes',
  'shutdownDrainDelayMs',
  'shutdownGraceMs',
]);

/** `tokenFile` -> `TOKEN_FILE` (env suffix) and `token-file` (flag). */
function words(field: Field): string[] {
  return field.split(/(?=[A-Z])/).map((w) => w.toLowerCase());
}
export function envName(field: Field, prefix = 'HM3_'): string {
  return prefix + words(field).join('_').toUpperCase();
}
export function flagName(field: Field): string {
  return '--' + words(field).join('-');
}

export interface LoadServiceConfigOptions {
  /** Usually process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Usually process.argv.slice(2); flags this lib does not know are left alone. */
  argv?: readonly string[];
  /** The service's own defaults (its port, ...), below env and flags. */
  defaults?: Partial<ServiceConfigInput>;
  /** Prefix of the environment variables; default `HM3_`. */
  envPrefix?: string;
}

/** Reads, coerces and validates the service configuration. Throws InvalidArgumentError naming the field. */
export function loadServiceConfig(options: LoadServiceConfigOptions = {}): ServiceConfig {
  const raw: Record<string, unknown> = {};
  const source: Partial<Record<Field, string>> = {};
  for (const [key, value] of Object.entries(options.defaults ?? {})) {
    if (value === undefined) continue;
    raw[key] = value;
    source[key as Field] = 'defaults';
  }
  const prefix = options.envPrefix ?? 'HM3_';
  for (const field of FIELDS) {
    const value = options.env?.[envName(field, prefix)];
    if (value === undefined || value === '') continue;
    raw[field] = coerce(field, value);
    source[field] = `env ${envName(field, prefix)}`;
  }
  for (const [field, value] of parseFlags(options.argv ?? [])) {
    raw[field] = coerce(field, value);
    source[field] = `flag ${flagName(field)}`;
  }

  const parsed = serviceConfigSchema.safeParse(raw);
  if (parsed.success) return Object.freeze(parsed.data);
  const problems = parsed.error.issues.map((issue) => {
    const field = issue.path.length > 0 ? issue.path.map(String).join('.') : '(config)';
    const from = source[issue.path[0] as Field];
    return { field, source: from ?? 'default', message: issue.message };
  });
  const text = problems.map((p) => `${p.field} (${p.source}): ${p.message}`).join('; ');
  throw new InvalidArgumentError(`invalid service config: ${text}`, {
    field: problems[0]?.field,
    problems,
  });
}

/** Strings from env and flags become numbers / booleans; anything unparsable is passed on for zod to name. */
function coerce(field: Field, value: string | true): unknown {
  if (value === true) return BOOLEAN_FIELDS.has(field) ? true : '';
  const text = value.trim();
  if (BOOLEAN_FIELDS.has(field)) {
    if (/^(true|1|yes|on)$/i.test(text)) return true;
    if (/^(false|0|no|off)$/i.test(text)) return false;
    return text;
  }
  if (NUMBER_FIELDS.has(field)) {
    if (field === 'metricsPort' && /^(off|none|disabled)$/i.test(text)) return null;
    return /^-?\d+$/.test(text) ? Number(text) : text;
  }
  return text;
}

/** `--port 7`, `--port=7`, `--mtls`, `--mtls=false`, `--no-mtls`; unknown flags are skipped. */
function parseFlags(argv: readonly string[]): Array<[Field, string | true]> {
  const byFlag = new Map(FIELDS.map((f) => [flagName(f), f] as const));
  const out: Array<[Field, string | true]> = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') break;
    if (!arg.startsWith('--')) continue;
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const negated = name.startsWith('--no-') ? byFlag.get('--' + name.slice(5)) : undefined;
    if (negated !== undefined && BOOLEAN_FIELDS.has(negated) && eq === -1) {
      out.push([negated, 'false']);
      continue;
    }
    const field = byFlag.get(name);
    if (field === undefined) continue;
    if (eq !== -1) {
      out.push([field, arg.slice(eq + 1)]);
    } else if (BOOLEAN_FIELDS.has(field)) {
      out.push([field, true]);
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) {
        out.push([field, true]);
      } else {
        out.push([field, next]);
        i++;
      }
    }
  }
  return out;
}
