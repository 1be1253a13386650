/** Test fixtures: the committed zoo's models on the inference-path runner (what candidates run on). */
import {
  loadTokenizer,
  ownPath,
  readModelConfig,
  type CausalLM,
  type ModelRuntime,
  type TextTokenizer,
} from '@hm3/model';
import { modelPath, type ZooModel } from '@hm3/fixtures';

export interface ZooModelUnderTest {
  readonly model: CausalLM;
  readonly tokenizer: TextTokenizer;
  readonly dir: string;
}

/** A zoo model run as its own inference path (embedding, its layers in order, head). */
export async function openZooModel(runtime: ModelRuntime, name: ZooModel): Promise<ZooModelUnderTest> {
  const dir = modelPath(name);
  const arch = await readModelConfig(dir);
  return {
    model: await runtime.path(ownPath(dir, arch.numLayers)),
    tokenizer: await loadTokenizer(dir),
    dir,
  };
}

/** One operator thread: the CI machine has two cores and runs other suites beside this one. */
export const TEST_RUNTIME_OPTIONS = { intraOpThreads: 1 } as const;
