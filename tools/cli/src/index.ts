// The hm3 command's program, exported for tests and for embedding.
export { buildProgram, run } from './main.js';
