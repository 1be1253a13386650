/** EvaluatorService over gRPC: a thin adapter from the wire types to the Evaluator core. */
import type { evaluator } from '@hm3/proto';
import type { Evaluator, ObjectiveProgress } from './evaluator.js';
import { withProgress, type ServiceHandlers } from '@hm3/service-kit';
import {
  deviceFromWire,
  objectiveFromWire,
  scoreToWire,
  splitFromWire,
  targetFromWire,
  taskToWire,
} from './wire.js';

export function evaluatorHandlers(
  core: Evaluator,
): ServiceHandlers<typeof evaluator.EvaluatorServiceService> {
  return {
    evaluate: async function* (request, context) {
      const device = deviceFromWire(request.device);
      const domain = {
        candidateId: request.candidateId,
        target: targetFromWire(request.target),
        objectives: request.objectives.map(objectiveFromWire),
        split: splitFromWire(request.split),
        ...(device === undefined ? {} : { device }),
      };
      const stream = withProgress((onProgress: (p: ObjectiveProgress) => void) =>
        core.evaluate(domain, { onProgress, signal: context.signal }),
      );
      for await (const event of stream) {
        if ('progress' in event) {
          const p = event.progress;
          yield {
            event: {
              $case: 'progress',
              value: { objective: p.objective, examplesDone: p.done, examplesTotal: p.total },
            },
          };
        } else {
          const r = event.result;
          yield {
            event: {
              $case: 'result',
              value: {
                candidateId: r.candidateId,
                scores: r.scores.map(scoreToWire),
                elapsedSeconds: r.elapsedSeconds,
              },
            },
          };
        }
      }
    },

    listTasks: () => ({ tasks: core.listTasks().map(taskToWire) }),
  };
}
