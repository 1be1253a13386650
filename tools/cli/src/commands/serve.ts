import path from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from '@hm3/errors';
import { InProcessEventBus, KafkaEventBus, type EventBus } from '@hm3/events';
import { TOPICS } from '@hm3/proto';
import { installShutdownHandlers, loadServiceConfig, type Logger } from '@hm3/service-kit';
import { createInMemoryStore, createMongoStore, redactMongoUrl, type Store } from '@hm3/store';
import { parseDevice, startTensorMergeServer, type RunningTensorMerge } from '@hm3/tensor-merge';
import { startRlPolicyServer, type RunningRlPolicy } from '@hm3/rl-policy';
import { startEvaluatorServer, type RunningEvaluator } from '@hm3/evaluator';
import {
  InMemoryJournal,
  MongoJournal,
  startParetoOptimizerServer,
  type Journal,
  type RunningParetoOptimizer,
} from '@hm3/pareto-optimizer';

/**
 * `hm3 serve <service>`: starts one service as its own process (gRPC, and its Kafka consumer when
 * the bus is Kafka). Settings: service-kit's (`--port`, `--token-file`, `--tls-*`, ... or HM3_*) plus
 * the ones below (flag, else env, else default). tensor-merge, rl-policy and evaluator are servable so far.
 */
export interface ServeOptions {
  modelsRoot?: string;
  artifactRoot?: string;
  /** `memory` or a mongodb:// URL. */
  store?: string;
  /** `in-process` or `kafka`. */
  bus?: string;
  kafkaBrokers?: string;
  threads?: string;
  /** tensor-merge: the default device of merges that name none (`cpu` | `cuda`). */
  device?: string;
  /** evaluator: comma-separated folders dataset paths resolve inside. */
  datasetRoots?: string;
  /** evaluator: flush denormals in the model runtime (`--[no-]flush-denormals`; default on). */
  flushDenormals?: boolean;
  /** pareto-optimizer: host:port of the rl-policy service. */
  policyService?: string;
}

export const SERVICES = ['tensor-merge', 'rl-policy', 'evaluator', 'pareto-optimizer'] as const;
const SERVABLE = new Set<string>(['tensor-merge', 'rl-policy', 'evaluator', 'pareto-optimizer']);

export interface ServeHandle {
  readonly running: RunningTensorMerge | RunningRlPolicy | RunningEvaluator | RunningParetoOptimizer;
  readonly port: number;
  /** Stops the service, then closes the bus and the store. */
  stop(reason?: string): Promise<void>;
}

function setting(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  name: string,
  fallback?: string,
): string | undefined {
  const value = flag ?? env[name];
  return value === undefined || value === '' ? fallback : value;
}

/** `{ [key]: value }`, or nothing when the value is unset (exactOptionalPropertyTypes). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** An integer setting of at least `min`, or undefined when unset; anything else names the setting. */
function integerSetting(text: string | undefined, field: string, min: number): number | undefined {
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError(`${field}: "${text}" must be an integer >= ${min}`, { field });
  }
  return value;
}

/** The store a setting names: `memory`, or a mongodb:// URL (credentials from HM3_MONGO_*). Not started. */
function openStore(storeSetting: string, env: NodeJS.ProcessEnv): Store {
  if (storeSetting === 'memory') return createInMemoryStore();
  if (/^mongodb(\+srv)?:\/\//.test(storeSetting)) {
    const username = env['HM3_MONGO_USERNAME'];
    const password = env['HM3_MONGO_PASSWORD'];
    return createMongoStore({
      url: storeSetting,
      database: env['HM3_MONGO_DATABASE'] ?? 'hm3',
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
    });
  }
  throw new InvalidArgumentError(
    `store: "${redactMongoUrl(storeSetting)}" is neither "memory" nor a mongodb:// URL`,
    { field: 'store' },
  );
}

/** evaluator: `--[no-]flush-denormals`, else HM3_FLUSH_DENORMALS (1/true or 0/false), else on. */
function flushDenormalsSetting(flag: boolean | undefined, env: NodeJS.ProcessEnv): boolean {
  if (flag !== undefined) return flag;
  const value = env['HM3_FLUSH_DENORMALS'];
  if (value === undefined || value === '' || value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  throw new InvalidArgumentError(`HM3_FLUSH_DENORMALS: "${value}" must be 1, true, 0 or false`, {
    field: 'flushDenormals',
  });
}

/** Opens the store, the bus and the service; nothing is left running when it throws. */
export async function startService(
  service: string,
  options: ServeOptions,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServeHandle> {
  if (!SERVABLE.has(service)) {
    const known = (SERVICES as readonly string[]).includes(service);
    throw new InvalidArgumentError(
      known
        ? `service "${service}" is not built yet; servable: ${[...SERVABLE].join(', ')}`
        : `unknown service "${service}"; services: ${SERVICES.join(', ')} (servable: ${[...SERVABLE].join(', ')})`,
      { field: 'service', service },
    );
  }
  if (service === 'rl-policy') return startRlPolicy(options, argv, env);
  const config = loadServiceConfig({
    env,
    argv,
    defaults: { port: service === 'evaluator' ? 50063 : service === 'pareto-optimizer' ? 50064 : 50061 },
  });
  const modelsRoot = setting(options.modelsRoot, env, 'HM3_MODELS_ROOT');
  if (modelsRoot === undefined) {
    throw new InvalidArgumentError('models root: set --models-root or HM3_MODELS_ROOT', {
      field: 'modelsRoot',
    });
  }
  const artifactRoot = setting(options.artifactRoot, env, 'HM3_ARTIFACT_ROOT', path.resolve('artifacts'))!;
  const storeSetting = setting(options.store, env, 'HM3_STORE', 'memory')!;
  const busSetting = setting(options.bus, env, 'HM3_BUS', 'in-process')!;
  const threads = integerSetting(setting(options.threads, env, 'HM3_THREADS'), 'threads', 1);
  // tensor-merge: merges that name no device run on this one (the k8s gpu overlay sets HM3_DEVICE=cuda)
  const defaultDevice = parseDevice(
    setting(options.device, env, 'HM3_DEVICE'),
    options.device === undefined ? 'HM3_DEVICE' : '--device',
  );

  const store = openStore(storeSetting, env);
  let bus: EventBus;
  if (busSetting === 'in-process') bus = new InProcessEventBus();
  else if (busSetting === 'kafka') {
    const brokers = setting(options.kafkaBrokers, env, 'HM3_KAFKA_BROKERS');
    if (brokers === undefined) {
      throw new InvalidArgumentError('bus kafka: set --kafka-brokers or HM3_KAFKA_BROKERS', {
        field: 'kafkaBrokers',
      });
    }
    const username = env['HM3_KAFKA_USERNAME'];
    const password = env['HM3_KAFKA_PASSWORD'];
    // The platform's topics with HM3_KAFKA_PARTITIONS partitions each (default 6; an existing topic
    // with fewer gets more): evaluator and merger replicas of one group share them.
    const partitions = integerSetting(env['HM3_KAFKA_PARTITIONS'], 'HM3_KAFKA_PARTITIONS', 1) ?? 6;
    bus = new KafkaEventBus({
      brokers: brokers.split(',').map((b) => b.trim()),
      clientId: `hm3-${service}`,
      topics: Object.values(TOPICS)
        .filter((name) => name !== TOPICS.DEAD_LETTER)
        .map((name) => ({ name, partitions })),
      ...(username && password ? { sasl: { mechanism: 'scram-sha-512' as const, username, password } } : {}),
    });
  } else {
    throw new InvalidArgumentError(`bus: "${busSetting}" is neither "in-process" nor "kafka"`, {
      field: 'bus',
    });
  }

  const opened: { close(): Promise<void> }[] = [];
  try {
    await store.start();
    opened.push(store);
    await bus.start();
    opened.push(bus);
    if (service === 'pareto-optimizer') {
      const journal: Journal =
        storeSetting === 'memory'
          ? new InMemoryJournal()
          : new MongoJournal({
              url: storeSetting,
              database: env['HM3_MONGO_DATABASE'] ?? 'hm3',
              ...(env['HM3_MONGO_USERNAME'] ? { username: env['HM3_MONGO_USERNAME'] } : {}),
              ...(env['HM3_MONGO_PASSWORD'] ? { password: env['HM3_MONGO_PASSWORD'] } : {}),
            });
      await journal.start();
      opened.push(journal);
      const policyToken = env['HM3_POLICY_TOKEN'];
      const optimizer = await startParetoOptimizerServer({
        config,
        store,
        bus,
        journal,
        modelsRoot: path.resolve(modelsRoot),
        artifactRoot: path.resolve(artifactRoot),
        policyService: {
          address: setting(options.policyService, env, 'HM3_POLICY_SERVICE', '127.0.0.1:50062')!,
          ...(policyToken ? { token: policyToken } : {}),
        },
        ...optional(
          'attemptTimeoutMs',
          integerSetting(env['HM3_ATTEMPT_TIMEOUT_MS'], 'HM3_ATTEMPT_TIMEOUT_MS', 1),
        ),
        // Merges and evaluations a search keeps in flight (default 32).
        ...optional(
          'concurrency',
          integerSetting(env['HM3_OPTIMIZER_CONCURRENCY'], 'HM3_OPTIMIZER_CONCURRENCY', 1),
        ),
        // Rounds whose merged checkpoints retention keeps besides the front's (negative: off).
        ...optional(
          'retentionRounds',
          integerSetting(env['HM3_RETENTION_ROUNDS'], 'HM3_RETENTION_ROUNDS', Number.MIN_SAFE_INTEGER),
        ),
      });
      return {
        running: optimizer,
        port: optimizer.port,
        stop: async (reason = 'stop') => {
          await optimizer.stop(reason);
          await journal.close();
          await bus.close();
          await store.close();
        },
      };
    }
    const running =
      service === 'evaluator'
        ? await startEvaluatorServer({
            config,
            store,
            bus,
            modelsRoot: path.resolve(modelsRoot),
            // Dataset paths resolve inside these; artifact:// and zoo: datasets need none.
            datasetRoots: (setting(options.datasetRoots, env, 'HM3_DATASET_ROOTS') ?? '')
              .split(',')
              .filter((r) => r.trim() !== '')
              .map((r) => path.resolve(r.trim())),
            artifactRoot: path.resolve(artifactRoot),
            ...(threads === undefined ? {} : { intraOpThreads: threads }),
            // A process that only scores: run as the runtime bench measures (ModelRuntime.flushDenormals)
            flushDenormals: flushDenormalsSetting(options.flushDenormals, env),
            // Off where an external evaluation cluster answers hm3.eval.requested (docs/events.md).
            consumeRequests: env['HM3_EVAL_CONSUME_REQUESTS'] !== 'false',
          })
        : await startTensorMergeServer({
            config,
            store,
            bus,
            modelsRoot: path.resolve(modelsRoot),
            artifactRoot: path.resolve(artifactRoot),
            ...(threads === undefined ? {} : { threads }),
            ...(defaultDevice === undefined ? {} : { defaultDevice }),
          });
    return {
      running,
      port: running.port,
      stop: async (reason = 'stop') => {
        await running.stop(reason);
        await bus.close();
        await store.close();
      },
    };
  } catch (error) {
    for (const o of opened.reverse()) await o.close().catch(() => undefined);
    throw error;
  }
}

/**
 * `hm3 serve rl-policy`: PolicyService over gRPC (default port 50062); policy metadata in the store
 * (`--store`), weights and ONNX exports in the artifact folder (`--artifact-root`). No bus.
 */
async function startRlPolicy(
  options: ServeOptions,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<ServeHandle> {
  const config = loadServiceConfig({ env, argv, defaults: { port: 50062 } });
  const artifactRoot = setting(options.artifactRoot, env, 'HM3_ARTIFACT_ROOT', path.resolve('artifacts'))!;
  const storeSetting = setting(options.store, env, 'HM3_STORE', 'memory')!;
  const store = openStore(storeSetting, env);
  await store.start();
  try {
    const running = await startRlPolicyServer({ config, store, artifactRoot: path.resolve(artifactRoot) });
    return {
      running,
      port: running.port,
      stop: async (reason = 'stop') => {
        await running.stop(reason);
        await store.close();
      },
    };
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'Start one service as a server: tensor-merge, rl-policy, evaluator, pareto-optimizer.\n' +
        'Also takes the service settings: --host, --port, --token-file, --allow-unauthenticated, --tls-cert-file, ...\n' +
        '(or HM3_HOST, HM3_PORT, ...).',
    )
    .argument('<service>', `the service: ${SERVICES.join(' | ')}`)
    .option('--models-root <dir>', 'folder every model path resolves inside (env HM3_MODELS_ROOT)')
    .option('--artifact-root <dir>', 'artifact store folder (env HM3_ARTIFACT_ROOT; default ./artifacts)')
    .option('--store <store>', '"memory" or a mongodb:// URL (env HM3_STORE; default memory)')
    .option('--bus <bus>', '"in-process" or "kafka" (env HM3_BUS; default in-process)')
    .option('--kafka-brokers <list>', 'host:port,... (env HM3_KAFKA_BROKERS)')
    .option(
      '--dataset-roots <dirs>',
      'evaluator: folders dataset paths resolve inside, comma-separated (env HM3_DATASET_ROOTS)',
    )
    .option(
      '--policy-service <host:port>',
      'pareto-optimizer: the rl-policy service (env HM3_POLICY_SERVICE; default 127.0.0.1:50062; token: env HM3_POLICY_TOKEN)',
    )
    .option(
      '--device <device>',
      'tensor-merge: device of merges that name none, cpu | cuda (env HM3_DEVICE; default cpu)',
    )
    .option(
      '--threads <n>',
      'worker threads of the merge kernels; evaluator: threads per model operator (env HM3_THREADS)',
    )
    .option(
      '--flush-denormals',
      'evaluator: flush denormal floats in the model runtime, faster scoring (env HM3_FLUSH_DENORMALS=1|0; default on)',
    )
    .option('--no-flush-denormals', 'evaluator: keep denormal floats (see --flush-denormals)')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (service: string, options: ServeOptions, command: Command) => {
      const argv = command.args;
      const handle = await startService(service, options, argv);
      const logger: Logger = handle.running.server.logger;
      logger.info({ port: handle.port }, `${service} serving`);
      installShutdownHandlers({ logger, shutdown: (reason) => handle.stop(reason) });
    });
}
