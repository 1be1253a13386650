/**
 * `hm3 search <spec> --server HOST:PORT [--token|--token-file] [--ca --cert --key]`: the same spec,
 * run by a remote ParetoOptimizerService. StartSearch, then WatchSearch prints a line per round
 * until the search ends, then the front as a table (GetFront). Ctrl-C cancels the search
 * (CancelSearch) and waits for it to drain. Model paths in the spec are the server's: folders inside
 * its models root, or artifact://<id>.
 */
import { readFile } from 'node:fs/promises';
import { CommanderError, type Command } from 'commander';
import { InvalidArgumentError } from '@hm3/errors';
import { specToWire } from '@hm3/pareto-optimizer';
import { optimizer } from '@hm3/proto';
import { createClient, type ClientOptions, type ServiceClient } from '@hm3/service-kit';
import {
  consoleIo,
  loadSpecFile,
  runSearchCommand,
  withOverrides,
  type SearchCommandOptions,
  type SearchIo,
} from '../commands/search.js';
import { exitCodeOf } from '../commands/merge.js';

export interface RemoteOptions {
  server?: string;
  token?: string;
  tokenFile?: string;
  ca?: string;
  cert?: string;
  key?: string;
}

export type OptimizerClient = ServiceClient<typeof optimizer.ParetoOptimizerServiceService>;

/** The client of a remote optimizer with the command's transport settings. */
export async function remoteOptimizer(options: RemoteOptions): Promise<OptimizerClient> {
  if (options.server === undefined || !/^[^\s:]+:\d+$/.test(options.server))
    throw new InvalidArgumentError(`--server: "${options.server ?? ''}" must be HOST:PORT`, {
      field: 'server',
    });
  let token = options.token ?? process.env['HM3_TOKEN'];
  if (options.tokenFile !== undefined) token = (await readFile(options.tokenFile, 'utf8')).trim();
  const tls =
    options.ca !== undefined || options.cert !== undefined || options.key !== undefined
      ? {
          ...(options.ca === undefined ? {} : { caFile: options.ca }),
          ...(options.cert === undefined ? {} : { certFile: options.cert }),
          ...(options.key === undefined ? {} : { keyFile: options.key }),
        }
      : undefined;
  const clientOptions: ClientOptions = {
    address: options.server,
    ...(token ? { token } : {}),
    ...(tls ? { tls } : {}),
  };
  return createClient(optimizer.ParetoOptimizerServiceService, clientOptions);
}

const TERMINAL = new Set([
  optimizer.SearchState.SUCCEEDED,
  optimizer.SearchState.FAILED,
  optimizer.SearchState.CANCELLED,
]);

/** Exit code of a gRPC failure: 2 for bad input (as the embedded command), 1 otherwise. */
function grpcExitCode(error: unknown): number {
  const code = (error as { code?: unknown }).code;
  // INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION
  if (code === 3 || code === 5 || code === 6 || code === 9) return 2;
  return typeof code === 'number' ? 1 : exitCodeOf(error);
}

export async function runRemoteSearch(
  file: string,
  options: SearchCommandOptions & RemoteOptions,
  io: SearchIo,
  signal?: AbortSignal,
): Promise<number> {
  let client: OptimizerClient | undefined;
  try {
    const spec = withOverrides(await loadSpecFile(file), options, file);
    client = await remoteOptimizer(options);
    const { searchId } = await client.startSearch({ spec: specToWire(spec), searchId: '' });
    io.err(
      `search ${searchId} started on ${options.server}: budget ${spec.budget.maxEvaluations || 'unbounded'} evaluations`,
    );
    const c = client;
    const onAbort = (): void => {
      io.err(`cancelling search ${searchId} ...`);
      void c
        .cancelSearch({ searchId, reason: 'cancelled from hm3 search (interrupt)' })
        .catch(() => undefined);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    let last: optimizer.SearchStatus | undefined;
    try {
      for await (const message of client.watchSearch({ searchId })) {
        const e = message.event;
        if (e?.$case === 'round')
          io.err(
            `round ${e.value.round}: ${e.value.candidatesScored} candidates, front ${e.value.frontSize}, hypervolume ${e.value.hypervolume.toFixed(4)}`,
          );
        if (e?.$case === 'status') {
          last = e.value;
          if (TERMINAL.has(e.value.state)) break;
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (!last || !TERMINAL.has(last.state)) {
      io.err(`hm3 search: the watch of ${searchId} ended before the search did`);
      return 1;
    }
    io.err(
      `search ${searchId} ${optimizer.searchStateToJSON(last.state)}: ${last.evaluationsDone} evaluations, ${last.roundsCompleted} rounds` +
        (last.message === '' ? '' : ` (${last.message})`),
    );
    if (last.state === optimizer.SearchState.FAILED) return 1;
    const { front } = await client.getFront({ searchId });
    const names = spec.objectives.map((o) => o.name);
    io.out(
      ['candidate', ...names.map((n) => `${n} (search)`), ...names.map((n) => `${n} (heldout)`)].join('\t'),
    );
    for (const m of front?.members ?? []) {
      const value = (name: string, split: number) => {
        const s = m.scores.find((x) => x.objective === name && x.split === split);
        return s === undefined ? '-' : s.value.toFixed(4);
      };
      io.out([m.candidateId, ...names.map((n) => value(n, 1)), ...names.map((n) => value(n, 2))].join('\t'));
    }
    io.err(
      `front: ${front?.members.length ?? 0} members, hypervolume ${(front?.hypervolume ?? 0).toFixed(4)}; search id ${searchId}`,
    );
    return 0;
  } catch (error) {
    io.err(`hm3 search: ${error instanceof Error ? error.message : String(error)}`);
    return grpcExitCode(error);
  } finally {
    client?.close();
  }
}

/**
 * Adds `--server` (and its transport options) to the `search` command: with it, the spec runs on a
 * remote optimizer; without it, the command runs embedded as before.
 */
export function attachRemoteSearch(program: Command): void {
  const search = program.commands.find((c) => c.name() === 'search');
  if (!search) return;
  search
    .option('--server <host:port>', 'run on a remote pareto-optimizer instead of in this process')
    .option('--token <token>', 'with --server: bearer token (or env HM3_TOKEN)')
    .option('--token-file <file>', 'with --server: file holding the bearer token')
    .option('--ca <file>', 'with --server: TLS CA certificate (PEM)')
    .option('--cert <file>', 'with --server: client certificate for mTLS (PEM)')
    .option('--key <file>', 'with --server: client key for mTLS (PEM)')
    .action(async (spec: string, options: SearchCommandOptions & RemoteOptions) => {
      let code: number;
      if (options.server === undefined) code = await runSearchCommand(spec, options, consoleIo());
      else {
        const controller = new AbortController();
        const interrupt = (): void => controller.abort();
        process.once('SIGINT', interrupt);
        try {
          code = await runRemoteSearch(spec, options, consoleIo(), controller.signal);
        } finally {
          process.removeListener('SIGINT', interrupt);
        }
      }
      if (code !== 0)
        throw new CommanderError(code, 'hm3.search', `hm3 search failed with exit code ${code}`);
    });
}
