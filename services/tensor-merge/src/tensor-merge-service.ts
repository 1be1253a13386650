/** TensorMergeService over gRPC: a thin adapter from the wire types to the TensorMerge core. */
import { Hm3Error } from '@hm3/errors';
import type { MergeProgress } from '@hm3/merge';
import { merge } from '@hm3/proto';
import { withProgress, type ServiceHandlers } from '@hm3/service-kit';
import type { TensorMerge } from './tensor-merge.js';
import {
  deviceFromWire,
  manifestToWire,
  methodToWire,
  planToWire,
  progressToWire,
  recipeFromWire,
  resultToWire,
} from './wire.js';

/** Statuses Validate reports as issues of the recipe instead of failing the call. */
const RECIPE_PROBLEMS = new Set(['INVALID_ARGUMENT', 'NOT_FOUND', 'FAILED_PRECONDITION']);

/** Every issue an error carries: a RecipeValidationError's list, else one naming details.field. */
function issuesOf(error: Hm3Error): merge.ValidationIssue[] {
  const listed = error.details['issues'];
  if (Array.isArray(listed) && listed.length > 0) {
    return listed.map((i: { path?: unknown; message?: unknown }) => ({
      severity: merge.IssueSeverity.ERROR,
      field: typeof i.path === 'string' ? i.path : '',
      message: typeof i.message === 'string' ? i.message : String(i.message),
    }));
  }
  const field = error.details['field'];
  return [
    {
      severity: merge.IssueSeverity.ERROR,
      field: typeof field === 'string' ? field : '',
      message: error.message,
    },
  ];
}

export function tensorMergeHandlers(
  core: TensorMerge,
): ServiceHandlers<typeof merge.TensorMergeServiceService> {
  return {
    registerModel: async (request) => {
      const { manifest, alreadyRegistered } = await core.registerModel(request.uri, request.modelId);
      return { manifest: manifestToWire(manifest), alreadyRegistered };
    },

    validate: async (request) => {
      try {
        const recipe = recipeFromWire(request.recipe);
        const { plan, artifactId } = await core.validate(recipe);
        const issues = plan.warnings.map((message) => ({
          severity: merge.IssueSeverity.WARNING,
          field: '',
          message,
        }));
        return { valid: true, issues, plan: planToWire(plan, artifactId) };
      } catch (error) {
        if (error instanceof Hm3Error && RECIPE_PROBLEMS.has(error.status)) {
          return { valid: false, issues: issuesOf(error) };
        }
        throw error;
      }
    },

    merge: async function* (request, context) {
      const recipe = recipeFromWire(request.recipe);
      const device = deviceFromWire(request.device);
      let outputBytes = 0;
      const events = withProgress((onProgress: (p: MergeProgress) => void) =>
        core.merge(recipe, {
          ...(device === undefined ? {} : { device }),
          ...(request.workers > 0 ? { threads: request.workers } : {}),
          signal: context.signal,
          onPlanned: (planned) => {
            outputBytes = planned.outputBytes;
          },
          onProgress,
        }),
      );
      for await (const event of events) {
        if ('progress' in event) {
          yield { event: { $case: 'progress', value: progressToWire(event.progress, outputBytes) } };
        } else {
          yield { event: { $case: 'result', value: resultToWire(event.result) } };
        }
      }
    },

    listMethods: () => ({ methods: core.listMethods().map(methodToWire) }),
  };
}
