import type { MergeMethod, ParamScalar } from './method.js';
import { UnknownMethodError } from './errors.js';
import { BUILTIN_METHODS } from './methods/index.js';

const registry = new Map<string, MergeMethod>(BUILTIN_METHODS.map((m) => [m.name, m]));

/** Levenshtein distance (small strings: method and parameter names). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The candidate closest to `name` (case-insensitive edit distance), if it is plausibly a misspelling. */
export function closestName(name: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  const lower = name.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== null && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : null;
}

/** The registered method of that name; an UnknownMethodError suggesting the closest name otherwise. */
export function getMethod(name: string, options: { source?: string; field?: string } = {}): MergeMethod {
  const method = registry.get(name);
  if (method === undefined) throw new UnknownMethodError(name, closestName(name, registry.keys()), options);
  return method;
}

export function hasMethod(name: string): boolean {
  return registry.has(name);
}

/** Every registered method, in registration order. */
export function listMethods(): readonly MergeMethod[] {
  return [...registry.values()];
}

/** Registers a method (plugins, tests); a name already taken is refused. */
export function registerMethod(method: MergeMethod): void {
  if (registry.has(method.name)) throw new Error(`merge method "${method.name}" is already registered`);
  registry.set(method.name, method);
}

function formatValue(v: ParamScalar | undefined): string {
  return v === undefined ? '' : typeof v === 'string' ? v : String(v);
}

/** The text of `hm3 merge --list-methods`: each method with its parameters, their ranges and defaults. */
export function formatMethodList(methods: readonly MergeMethod[] = listMethods()): string {
  const lines: string[] = [];
  for (const m of methods) {
    const arity =
      m.models.max === undefined
        ? `>= ${m.models.min}`
        : m.models.min === m.models.max
          ? `${m.models.min}`
          : `${m.models.min}..${m.models.max}`;
    lines.push(
      `${m.name}  (${m.base === 'required' ? 'base model + ' : m.base === 'optional' ? '[base model +] ' : ''}${arity} model${arity === '1' ? '' : 's'})`,
    );
    lines.push(`  ${m.description}`);
    for (const p of m.params) {
      const type = p.kind === 'choice' ? (p.choices ?? []).join(' | ') : p.kind;
      const range =
        p.min !== undefined || p.max !== undefined ? ` in [${p.min ?? '-inf'}, ${p.max ?? 'inf'}]` : '';
      const dflt = p.required ? 'required' : `default ${formatValue(p.default)}`;
      lines.push(
        `  - ${p.name} (${p.scope === 'model' ? 'per model' : 'global'}, ${type}${range}, ${dflt}): ${p.description}`,
      );
    }
  }
  return lines.join('\n');
}
