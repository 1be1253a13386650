import { InvalidArgumentError } from '@hm3/errors';

/** One problem found in a recipe: the field's path (e.g. `models[1].parameters.density`) and what is wrong. */
export interface RecipeIssue {
  readonly path: string;
  readonly message: string;
}

/** A recipe (YAML or proto) that does not validate; every issue names its field. */
export class RecipeValidationError extends InvalidArgumentError {
  readonly issues: readonly RecipeIssue[];
  constructor(source: string, issues: readonly RecipeIssue[]) {
    const list = issues.map((i) => `${i.path === '' ? '(root)' : i.path}: ${i.message}`).join('; ');
    super(`${source}: invalid merge recipe: ${list}`, { file: source, field: issues[0]?.path ?? '', issues });
    this.issues = issues;
  }
}

/** A method name that is not registered; suggests the closest registered one. */
export class UnknownMethodError extends RecipeValidationError {
  readonly method: string;
  readonly suggestion: string | null;
  constructor(method: string, suggestion: string | null, options: { source?: string; field?: string } = {}) {
    const hint = suggestion === null ? '' : `; did you mean "${suggestion}"?`;
    super(options.source ?? 'recipe', [
      { path: options.field ?? 'merge_method', message: `unknown merge method "${method}"${hint}` },
    ]);
    this.method = method;
    this.suggestion = suggestion;
  }
}

/** A config.json this version cannot merge (architecture not supported, or a field missing). */
export class UnsupportedArchitectureError extends InvalidArgumentError {
  constructor(message: string, details: Record<string, unknown>) {
    super(message, details);
  }
}

/** A parameter that has no value for a tensor (e.g. a filtered list matching none and no default). */
export class MissingParameterError extends InvalidArgumentError {
  constructor(parameter: string, tensor: string, model: string | null) {
    const who = model === null ? '' : ` of model ${model}`;
    super(`parameter "${parameter}"${who} has no value for tensor ${tensor}`, {
      parameter,
      tensor,
      model,
      field: `parameters.${parameter}`,
    });
  }
}
