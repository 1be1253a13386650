// `npm run infra:up | infra:down | infra:status` (tsx tools/infra/src/cli.ts <command>).
import type { ServerStatus } from './server.js';

const USAGE = 'usage: infra <up|down|status>';

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (command !== 'up' && command !== 'down' && command !== 'status') {
    console.error(USAGE);
    return 2;
  }
  const { Infra } = await import('./infra.js');
  const infra = new Infra({ progress: (line) => console.log(line) });
  if (command === 'up') {
    await infra.up();
    printStatus(await infra.status());
    return 0;
  }
  if (command === 'down') {
    await infra.down();
    console.log('infra: stopped; data removed (logs kept)');
    printStatus(await infra.status());
    return 0;
  }
  const statuses = await infra.status();
  printStatus(statuses);
  return 0;
}

function printStatus(statuses: ServerStatus[]): void {
  for (const s of statuses) {
    const state =
      s.state === 'running'
        ? `running (pid ${s.pid}${s.autoStarted ? ', auto-started by tests' : ''}, ${s.liveLeases} live leases)`
        : s.state === 'external'
          ? 'running (not started by this tool)'
          : 'stopped';
    console.log(`${s.name.padEnd(8)} ${s.label.padEnd(16)} ${state}`);
    console.log(`         address: ${s.address}`);
    console.log(`         log:     ${s.logFile}`);
    console.log(`         data:    ${s.dataDir}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const err = error as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('@hm3/errors')) {
      console.error('infra: @hm3/errors is not built; run `NX_DAEMON=false npx nx build @hm3/errors` first');
    } else {
      console.error(`infra: ${err.message ?? String(error)}`);
    }
    process.exit(1);
  },
);
