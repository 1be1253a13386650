// Child process of safetensors-writer-crash.test.ts: writes a two-shard, 16 MiB checkpoint, pausing
// half-way (argv[3] ms) so the parent can SIGKILL it there. Prints `half` and `done` on stdout.
import { CheckpointWriter } from './safetensors-writer.js';

const out = process.argv[2]!;
const pauseMs = Number(process.argv[3] ?? '0');
const n = 2 * 1024 * 1024; // F32 elements per tensor: 8 MiB
const writer = await CheckpointWriter.create(
  out,
  [
    { name: 'a', dtype: 'F32', shape: [n / 1024, 1024] },
    { name: 'b', dtype: 'F32', shape: [n / 1024, 1024] },
  ],
  { shardBytes: 8 * 1024 * 1024, recipeSha256: '00'.repeat(32) },
);
const block = new Float32Array(n / 2).fill(1.5);
await writer.writeFloats('a', block);
await writer.writeFloats('a', block);
await writer.writeFloats('b', block);
process.stdout.write('half\n');
await new Promise((resolve) => setTimeout(resolve, pauseMs));
await writer.writeFloats('b', block);
await writer.writeFile('config.json', '{}');
await writer.commit();
process.stdout.write('done\n');
