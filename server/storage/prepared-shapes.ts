import { createHash } from 'node:crypto';

/**
 * Names for search statements whose SQL text follows the search's shape (which
 * parameters, how many values), so that each connection prepares a shape once and
 * PostgreSQL can switch to its generic plan after five runs. Planning is most of such a
 * statement's cost on these wide tables (`Condition?patient=X`, 10× Synthea: 0.19 ms of
 * planning for 0.08 ms of execution; with the generic plan, 0.003 ms).
 *
 * Shapes come from clients, so they are bounded: each connection keeps the plans of the
 * statements it prepared until it closes, and the first MAX_SHAPES shapes of a process
 * are all that get names; later ones run unnamed, planned every time, as before.
 */
const MAX_SHAPES = 200;
const names = new Map<string, string>();

export function preparedShapeName(prefix: string, sql: string): string | undefined {
  let name = names.get(sql);
  if (name === undefined) {
    if (names.size >= MAX_SHAPES) return undefined;
    name = `${prefix}:${createHash('sha1').update(sql).digest('base64url').slice(0, 16)}`;
    names.set(sql, name);
  }
  return name;
}
