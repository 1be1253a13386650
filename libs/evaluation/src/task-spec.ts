/**
 * A task spec: which dataset (and split) to read, how to turn a line into a prompt, and which metric
 * scores the model's continuation. Specs written by people (JSON files, gRPC objectives) are validated
 * once here (parseTaskSpec); the evaluator only ever sees a valid spec.
 */
import path from 'node:path';
import { datasetPath, type ZooSplit, type ZooTask } from '@hm3/fixtures';
import { z } from 'zod';
import type { DatasetRef, DatasetRow } from './dataset.js';
import { InvalidDatasetError, InvalidTaskSpecError, UnknownMetricError } from './errors.js';

/**
 * - exact_match: the greedy continuation equals the answer (decided by one teacher-forced pass).
 * - chrf: character n-gram F-score (chrF, n = 6, beta = 2, as sacrebleu) of the greedy continuation
 *   against the answer, in [0, 1], averaged over examples.
 * - loglikelihood_accuracy: multiple choice; right when the answer has the highest log-likelihood
 *   among the choices.
 */
export const METRICS = ['exact_match', 'chrf', 'loglikelihood_accuracy'] as const;
export type Metric = (typeof METRICS)[number];

export function isMetric(name: string): name is Metric {
  return (METRICS as readonly string[]).includes(name);
}

/** Throws UnknownMetricError unless `name` is a metric the evaluator computes. */
export function checkMetric(name: string): Metric {
  if (!isMetric(name)) throw new UnknownMetricError(name, METRICS);
  return name;
}

export interface TaskSpec {
  /** Name of the task (an objective's name in a search), echoed in results. */
  readonly name: string;
  /** The JSONL dataset (a file, or a folder of `<split>.jsonl` files). */
  readonly dataset: DatasetRef;
  /** 'search' | 'heldout' | 'full' (default), or a split file of a folder dataset (e.g. 'train'). */
  readonly split?: string;
  /** The prompt, with `{field}` placeholders filled from each line (`{{` and `}}` are literal braces). */
  readonly promptTemplate: string;
  readonly metric: Metric;
  /** The line field holding the expected answer; default 'answer'. For multiple choice, the correct
   *  choice's text or its 0-based index. */
  readonly answerField?: string;
  /** The line field holding the choices (loglikelihood_accuracy); default 'choices'. */
  readonly choicesField?: string;
  /** Generation cap (chrf, and the answers exact_match records); default: the longest answer + 4 tokens. */
  readonly maxNewTokens?: number;
  /** Score only the first `limit` examples of the split. */
  readonly limit?: number;
  /** Seed of the search / held-out permutation of a single-file dataset; default 0. */
  readonly seed?: number;
  /** Share of a single-file dataset in the search split; default 0.7. */
  readonly searchFraction?: number;
}

/** One example as scored: the rendered prompt, the expected answer, the choices of a multiple-choice line. */
export interface Example {
  readonly prompt: string;
  readonly answer: string;
  readonly choices?: readonly string[];
  /** 1-based line in the dataset file, when read from one. */
  readonly line?: number;
}

const PLACEHOLDER = /\{\{|\}\}|\{([^{}]*)\}|[{}]/g;

/** The fields a template reads; throws InvalidTaskSpecError for a stray brace or an empty placeholder. */
export function templateFields(template: string): string[] {
  const fields: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER)) {
    if (m[0] === '{{' || m[0] === '}}') continue;
    const name = m[1];
    if (name === undefined) {
      throw new InvalidTaskSpecError(
        'promptTemplate',
        `unbalanced "${m[0]}" at offset ${m.index} (write {{ or }} for a literal brace)`,
      );
    }
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) {
      throw new InvalidTaskSpecError('promptTemplate', `"{${name}}" is not a field name`);
    }
    fields.push(name);
  }
  return fields;
}

/** Fills a template from one line's fields; a missing or non-scalar field is reported with the line. */
export function renderPrompt(template: string, row: DatasetRow, source: string): string {
  return template.replace(PLACEHOLDER, (token: string, name: string | undefined) => {
    if (token === '{{') return '{';
    if (token === '}}') return '}';
    const value = row.fields[name!];
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    throw new InvalidDatasetError(
      value === undefined
        ? `the prompt template reads field "${name}", which this line lacks`
        : `field "${name}" must be a string or a number to fill the prompt template`,
      source,
      row.line,
      { field: name },
    );
  });
}

/** The scored examples of a split's lines under a (valid) task spec. */
export function toExamples(spec: TaskSpec, rows: readonly DatasetRow[], source: string): Example[] {
  const answerField = spec.answerField ?? 'answer';
  const choicesField = spec.choicesField ?? 'choices';
  return rows.map((row) => {
    const prompt = renderPrompt(spec.promptTemplate, row, source);
    const raw = row.fields[answerField];
    if (spec.metric === 'loglikelihood_accuracy') {
      const choices = row.fields[choicesField];
      if (
        !Array.isArray(choices) ||
        choices.length < 2 ||
        !choices.every((c) => typeof c === 'string' && c !== '')
      ) {
        throw new InvalidDatasetError(
          `field "${choicesField}" must list at least two non-empty strings`,
          source,
          row.line,
          {
            field: choicesField,
          },
        );
      }
      let answer: string | undefined;
      if (typeof raw === 'number' && Number.isInteger(raw)) answer = choices[raw] as string | undefined;
      else if (typeof raw === 'string' && choices.includes(raw)) answer = raw;
      if (answer === undefined) {
        throw new InvalidDatasetError(
          `field "${answerField}" must be one of the choices or its 0-based index`,
          source,
          row.line,
          { field: answerField },
        );
      }
      return { prompt, answer, choices: choices as string[], line: row.line };
    }
    if (typeof raw !== 'string' || raw === '') {
      throw new InvalidDatasetError(`field "${answerField}" must be a non-empty string`, source, row.line, {
        field: answerField,
      });
    }
    return { prompt, answer: raw, line: row.line };
  });
}

const taskSpecSchema = z.object({
  name: z.string().min(1),
  dataset: z.object({
    uri: z.string().min(1),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/)
      .optional(),
    id: z.string().optional(),
  }),
  split: z.string().min(1).optional(),
  promptTemplate: z.string().min(1),
  metric: z.string(),
  answerField: z.string().min(1).optional(),
  choicesField: z.string().min(1).optional(),
  maxNewTokens: z.number().int().positive().optional(),
  limit: z.number().int().positive().optional(),
  seed: z.number().int().nonnegative().optional(),
  searchFraction: z.number().gt(0).lt(1).optional(),
});

/**
 * Validates a task spec from an untrusted source (a JSON file, a wire message): typed errors name the
 * field. A template must read at least one field (the prompt); the metric must be known.
 */
export function parseTaskSpec(input: unknown): TaskSpec {
  const parsed = taskSpecSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidTaskSpecError(issue.path.join('.') || '(spec)', issue.message);
  }
  const spec = parsed.data;
  const metric = checkMetric(spec.metric);
  if (templateFields(spec.promptTemplate).length === 0) {
    throw new InvalidTaskSpecError(
      'promptTemplate',
      `"${spec.promptTemplate}" reads no field of the example (e.g. "{prompt}")`,
    );
  }
  const out: TaskSpec = { ...spec, metric };
  return out;
}

/** parseTaskSpec for a spec already typed (checks what types cannot: template, metric, numbers). */
export function validateTaskSpec(spec: TaskSpec): TaskSpec {
  return parseTaskSpec(spec);
}

/** The zoo's datasets: one folder per task holding train / search / heldout JSONL files. */
export function zooDatasetRef(task: ZooTask): DatasetRef {
  return { uri: path.dirname(datasetPath(task, 'search')) };
}

/**
 * A zoo task: `<bos> prompt` -> `answer <eos>`, exact match, on a split of the committed zoo datasets
 * (tools/fixtures/zoo/datasets/<task>/<split>.jsonl).
 */
export function zooTaskSpec(task: ZooTask, split: ZooSplit): TaskSpec {
  return {
    name: task,
    dataset: zooDatasetRef(task),
    split,
    promptTemplate: '{prompt}',
    metric: 'exact_match',
  };
}
