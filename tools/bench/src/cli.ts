// `npm run bench -- <name> [options]`: runs one benchmark. Each bench is a module of its own.
const benches: Record<string, () => Promise<(args: readonly string[]) => Promise<number>>> = {
  moo: async () => (await import('./moo-bench.js')).mooBenchCommand,
  rl: async () => (await import('./rl-bench.js')).rlBenchCommand,
  runtime: async () => (await import('./runtime-bench.js')).runtimeBenchCommand,
  merge: async () => (await import('./merge-bench.js')).mergeBenchCommand,
  search: async () => (await import('./search-bench.js')).searchBenchCommand,
  eval: async () => (await import('./eval-bench.js')).evalBenchCommand,
  orchestration: async () => (await import('./orchestration-bench.js')).orchestrationBenchCommand,
};

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv[0] === '--' ? argv.slice(1) : argv;
  const load = name === undefined ? undefined : benches[name];
  if (load === undefined) {
    console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [options]`);
    return 2;
  }
  return (await load())(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  },
);
