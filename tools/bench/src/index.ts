// Benchmarks. The public API of @hm3/bench: each bench's runner, for scripts and tests.
export {
  runMooBench,
  runOurs,
  checkResults,
  formatTables,
  parseMooArgs,
  mooBenchCommand,
  MOO_PROBLEMS,
  type MooBenchConfig,
  type MooBenchResult,
  type OurRun,
  type PymooRun,
} from './moo-bench.js';
