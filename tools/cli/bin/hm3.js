#!/usr/bin/env node
// The installed `hm3` command. A committed stub, so npm can link the bin before the first build;
// the program itself is the compiled dist/main.js.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error('hm3: not built yet. Run `npm run build` (or `npx nx build @hm3/cli`) in the HM3 checkout.');
  process.exit(1);
}
const { run } = await import(main.href);
process.exitCode = await run(process.argv);
