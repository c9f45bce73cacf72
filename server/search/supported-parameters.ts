import { compileExpression } from './compile-path-expression';
import type { ParamContext, ParameterType } from './parameter-type';
import type { SearchParamDef } from './search-parameter-definitions';
import { searchParamDefs } from './search-parameter-definitions';
import { compositeParameter } from './composite-parameter';
import { dateParameter } from './date-parameter';
import { nearParameter } from './near-parameter';
import { numberParameter } from './number-parameter';
import { quantityParameter } from './quantity-parameter';
import { referenceParameter } from './reference-parameter';
import { stringParameter } from './string-parameter';
import { tokenParameter } from './token-parameter';
import { uriParameter } from './uri-parameter';

/**
 * Which official parameters this server indexes: those whose type has a complete
 * implementation here. Adding a type to this table is what makes all its parameters
 * indexed, searchable and listed in the CapabilityStatement.
 */
const parameterTypes: Partial<Record<SearchParamDef['type'], ParameterType>> = {
  token: tokenParameter,
  date: dateParameter,
  reference: referenceParameter,
  string: stringParameter,
  number: numberParameter,
  quantity: quantityParameter,
  uri: uriParameter,
  composite: compositeParameter,
  // R4's only special parameter is Location `near`; others of type special get no handler.
  special: nearParameter,
};

/** Parameters served by the fixed columns of every table (no index column of their own). */
export const FIXED_COLUMN_PARAMETERS: ReadonlySet<string> = new Set(['_id', '_lastUpdated']);

export interface IndexedParam extends ParamContext {
  readonly handler: ParameterType;
}

const cache = new Map<string, Map<string, IndexedParam>>();

function build(resourceType: string): Map<string, IndexedParam> {
  const result = new Map<string, IndexedParam>();
  for (const def of searchParamDefs(resourceType).values()) {
    const handler = def.type === 'special' && def.code !== 'near' ? undefined : parameterTypes[def.type];
    if (!handler || def.terms.length === 0 || FIXED_COLUMN_PARAMETERS.has(def.code)) continue;
    const param: IndexedParam = { def, handler, expression: compileExpression(resourceType, def.terms) };
    if (handler.supports && !handler.supports(param)) continue;
    result.set(def.code, param);
  }
  return result;
}

/** The indexed parameters of a type, compiled once. */
export function indexedParams(resourceType: string): ReadonlyMap<string, IndexedParam> {
  let params = cache.get(resourceType);
  if (!params) {
    params = build(resourceType);
    cache.set(resourceType, params);
  }
  return params;
}

export function indexedParam(resourceType: string, code: string): IndexedParam | undefined {
  return indexedParams(resourceType).get(code);
}
