/**
 * The tasks an evaluator offers (EvaluatorService.ListTasks), and how an objective (task id, dataset,
 * metric, split settings) becomes a TaskSpec. A task fixes how a JSONL line is read and which metrics
 * apply; the objective brings the dataset.
 */
import { ZOO_TASKS, type ZooTask } from '@hm3/fixtures';
import type { DatasetRef } from './dataset.js';
import { InvalidTaskSpecError } from './errors.js';
import {
  checkMetric,
  isMetric,
  parseTaskSpec,
  zooDatasetRef,
  type Metric,
  type TaskSpec,
} from './task-spec.js';

export interface TaskDefinition {
  /** Task id (hm3.v1.Objective.task). */
  readonly name: string;
  /** What the task measures, and the JSONL fields it reads. */
  readonly description: string;
  readonly metrics: readonly Metric[];
  readonly defaultMetric: Metric;
  readonly promptTemplate: string;
  readonly answerField?: string;
  readonly choicesField?: string;
  /** The dataset read when an objective names none (the zoo tasks). */
  readonly defaultDataset?: DatasetRef;
}

/** The scheme of the zoo's dataset references: `zoo:math`. */
export const ZOO_SCHEME = 'zoo:';

const ZOO_DESCRIPTIONS: Record<ZooTask, string> = {
  translate: 'Zorbish word to English',
  math: 'two-digit addition and subtraction, answer reversed',
  code: 'rev / len / max / dup of a literal',
};

/** The built-in tasks, sorted by name. */
export const BUILTIN_TASKS: readonly TaskDefinition[] = (
  [
    {
      name: 'completion',
      description:
        'Prompt -> answer. Reads {"prompt", "answer"} per JSONL line; the model continues `<bos> prompt` and ' +
        "should write `answer <eos>`. exact_match: one teacher-forced pass (greedy decoding's verdict); " +
        'chrf: chrF2 of the greedy continuation.',
      metrics: ['exact_match', 'chrf'],
      defaultMetric: 'exact_match',
      promptTemplate: '{prompt}',
    },
    {
      name: 'multiple-choice',
      description:
        'Multiple choice by log-likelihood. Reads {"prompt", "choices": [...], "answer": the right choice ' +
        'or its 0-based index}; right when the answer is the most likely continuation of `<bos> prompt`.',
      metrics: ['loglikelihood_accuracy'],
      defaultMetric: 'loglikelihood_accuracy',
      promptTemplate: '{prompt}',
    },
    ...ZOO_TASKS.map((task): TaskDefinition => ({
      name: task,
      description:
        `The fixture zoo's ${task} task (${ZOO_DESCRIPTIONS[task]}): a completion task whose dataset ` +
        `defaults to tools/fixtures/zoo/datasets/${task} (search.jsonl / heldout.jsonl / train.jsonl).`,
      metrics: ['exact_match', 'chrf'],
      defaultMetric: 'exact_match',
      promptTemplate: '{prompt}',
      defaultDataset: zooDatasetRef(task),
    })),
  ] satisfies TaskDefinition[]
).sort((a, b) => a.name.localeCompare(b.name));

/** An objective in domain form (hm3.v1.Objective mapped at the edge). */
export interface ObjectiveSpec {
  readonly name: string;
  readonly task: string;
  readonly dataset?: DatasetRef;
  /** Empty or absent: the task's default metric. */
  readonly metric?: string;
  readonly searchFraction?: number;
  readonly splitSeed?: number;
  /** 0 or absent: all. */
  readonly maxExamples?: number;
}

/** `zoo:<task>` names a zoo task's dataset folder; any other reference is kept. */
export function zooDataset(ref: DatasetRef): DatasetRef {
  if (!ref.uri.startsWith(ZOO_SCHEME)) return ref;
  const name = ref.uri.slice(ZOO_SCHEME.length);
  if (!(ZOO_TASKS as readonly string[]).includes(name)) {
    throw new InvalidTaskSpecError('dataset.uri', `"${ref.uri}" names no zoo task (${ZOO_TASKS.join(', ')})`);
  }
  return { ...zooDatasetRef(name as ZooTask), ...(ref.sha256 ? { sha256: ref.sha256 } : {}) };
}

/**
 * The task an objective names. An empty task id is `completion`; a metric name given as the task
 * (as search specs may) is the first task that computes it.
 */
export function findTask(name: string, tasks: readonly TaskDefinition[] = BUILTIN_TASKS): TaskDefinition {
  const task =
    tasks.find((t) => t.name === (name === '' ? 'completion' : name)) ??
    tasks.find((t) => t.defaultDataset === undefined && (t.metrics as readonly string[]).includes(name));
  if (!task) {
    throw new InvalidTaskSpecError(
      'task',
      `unknown task "${name}" (tasks: ${tasks.map((t) => t.name).join(', ')})`,
      {
        task: name,
      },
    );
  }
  return task;
}

/** The task spec of an objective on a split; typed errors name the objective's field. */
export function objectiveTaskSpec(
  objective: ObjectiveSpec,
  split: string,
  tasks: readonly TaskDefinition[] = BUILTIN_TASKS,
): TaskSpec {
  if (objective.name === '') throw new InvalidTaskSpecError('name', 'an objective needs a name');
  const task = findTask(objective.task, tasks);
  const named =
    objective.metric !== undefined && objective.metric !== ''
      ? objective.metric
      : isMetric(objective.task)
        ? objective.task
        : task.defaultMetric;
  const metric = checkMetric(named);
  if (!task.metrics.includes(metric)) {
    throw new InvalidTaskSpecError(
      'metric',
      `task "${task.name}" computes ${task.metrics.join(', ')}, not ${metric}`,
      {
        task: task.name,
        metric,
      },
    );
  }
  const dataset = objective.dataset?.uri ? zooDataset(objective.dataset) : task.defaultDataset;
  if (!dataset) throw new InvalidTaskSpecError('dataset.uri', `task "${task.name}" needs a dataset`);
  return parseTaskSpec({
    name: objective.name,
    dataset: {
      uri: dataset.uri,
      ...(dataset.sha256 ? { sha256: dataset.sha256 } : {}),
      ...(dataset.id ? { id: dataset.id } : {}),
    },
    split,
    promptTemplate: task.promptTemplate,
    metric,
    ...(task.answerField === undefined ? {} : { answerField: task.answerField }),
    ...(task.choicesField === undefined ? {} : { choicesField: task.choicesField }),
    ...(objective.maxExamples ? { limit: objective.maxExamples } : {}),
    ...(objective.splitSeed === undefined ? {} : { seed: objective.splitSeed }),
    ...(objective.searchFraction === undefined ? {} : { searchFraction: objective.searchFraction }),
  });
}
