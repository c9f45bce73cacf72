import { type CompiledExpression, compileExpression } from './compile-path-expression';
import { customSearchParamDefs, searchParameterGeneration } from './custom-search-parameter-registry';
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
import { fullTextParameter } from './text-search-parameter';
import { contentSearchEnabled } from './full-text-settings';
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

/** The handler of a definition's type, if this server implements it. */
export function parameterHandler(def: SearchParamDef): ParameterType | undefined {
  return def.type === 'special' && def.code !== 'near' ? undefined : parameterTypes[def.type];
}

/** The compiled parameter for a definition on a type; undefined when it cannot be indexed here. */
export function compileParam(resourceType: string, def: SearchParamDef): IndexedParam | undefined {
  const fullText = def.custom ? undefined : fullTextParameter(def.code);
  // No expression to evaluate: the handler reads the resource itself.
  if (fullText) return { def, handler: fullText, expression: NOTHING };
  const handler = parameterHandler(def);
  if (!handler || def.terms.length === 0 || FIXED_COLUMN_PARAMETERS.has(def.code)) return undefined;
  const param: IndexedParam = { def, handler, expression: compileExpression(resourceType, def.terms) };
  if (handler.supports && !handler.supports(param)) return undefined;
  return param;
}

const NOTHING: CompiledExpression = { evaluate: () => [], compiled: true, resultTypes: new Set() };

/** Official parameters compile once per process; custom ones again when the registry changes. */
const officialCache = new Map<string, Map<string, IndexedParam>>();
const cache = new Map<string, Map<string, IndexedParam>>();
let cachedGeneration = searchParameterGeneration();
/** SEARCH_CONTENT when officialCache was filled: it adds `_content` to every type. */
let officialWithContent = contentSearchEnabled();

function officialParams(resourceType: string): Map<string, IndexedParam> {
  let params = officialCache.get(resourceType);
  if (!params) {
    params = new Map();
    for (const def of searchParamDefs(resourceType).values()) {
      const param = compileParam(resourceType, def);
      if (param) params.set(def.code, param);
    }
    officialCache.set(resourceType, params);
  }
  return params;
}

function build(resourceType: string): Map<string, IndexedParam> {
  const custom = customSearchParamDefs(resourceType);
  if (custom.size === 0) return officialParams(resourceType);
  const result = new Map(officialParams(resourceType));
  for (const def of custom.values()) {
    // The registry never admits a custom code that an official parameter of the type has.
    if (result.has(def.code)) continue;
    const param = compileParam(resourceType, def);
    if (param) result.set(def.code, param);
  }
  return result;
}

function dropStaleCaches(): void {
  const generation = searchParameterGeneration();
  if (generation !== cachedGeneration) {
    cache.clear();
    cachedGeneration = generation;
  }
  if (officialWithContent !== contentSearchEnabled()) {
    officialCache.clear();
    officialWithContent = contentSearchEnabled();
  }
}

/** The indexed parameters of a type (official, then custom), compiled once per registry generation. */
export function indexedParams(resourceType: string): ReadonlyMap<string, IndexedParam> {
  dropStaleCaches();
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

/** The official parameters only: what a custom parameter must not collide with. */
export function officialIndexedParams(resourceType: string): ReadonlyMap<string, IndexedParam> {
  dropStaleCaches();
  return officialParams(resourceType);
}
