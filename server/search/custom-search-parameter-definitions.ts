import { parseFhirPath } from '@medplum/core';
import type { SearchParameter } from '@medplum/fhirtypes';
import { badRequest, OperationOutcomeError, unprocessable } from '../core/outcome';
import { isResourceType, resourceTypes } from '../validation/structure-definitions';
import type { CustomParamOrigin, SearchParamDef } from './search-parameter-definitions';
import { ABSTRACT_BASES, searchParamDef, termsFor } from './search-parameter-definitions';
import { compileParam, officialIndexedParams } from './supported-parameters';

/**
 * Turns a stored SearchParameter resource into the definitions the search module uses,
 * one per base type, or says precisely why it cannot be used. Only `active` and `draft`
 * parameters are in effect (https://hl7.org/fhir/R4/valueset-publication-status.html):
 * `retired` and `unknown` ones are stored like any resource and do nothing.
 */
export const STATUSES_IN_EFFECT: readonly string[] = ['active', 'draft'];

/**
 * Types whose handlers work from a definition alone. Composite needs its components'
 * own definitions and R4's one special parameter (`near`) is built in, so neither can be
 * defined by a client here.
 */
const CUSTOM_TYPES: ReadonlySet<string> = new Set(['token', 'string', 'date', 'reference', 'number', 'quantity', 'uri']);

/**
 * The code becomes part of a column name (`__<code>`, at most 63 bytes with suffix and
 * table name in the index name), and codes starting with `_` are reserved by the spec
 * (https://hl7.org/fhir/R4/search.html#standard).
 */
const CODE_PATTERN = /^[A-Za-z][A-Za-z0-9-]{0,47}$/;

export function isInEffect(sp: SearchParameter): boolean {
  return STATUSES_IN_EFFECT.includes(sp.status ?? '');
}

/**
 * The definitions of `sp` per base type; empty when it is not in effect, restates an
 * official parameter, or is a draft that cannot be applied. Otherwise throws 400 for
 * a definition that is malformed (no code, no type, an expression that does not parse)
 * and 422 for one this server refuses to apply (an official code on the same base, a
 * type it cannot index from a client's definition, an expression that selects nothing
 * from a base).
 */
export function customSearchParamDefinitions(sp: SearchParameter, origin: CustomParamOrigin): Map<string, SearchParamDef> {
  if (!isInEffect(sp) || restatesOfficial(sp)) return new Map();
  if (sp.status !== 'draft') return definitionsOrThrow(sp, origin);
  // A draft is "not yet ready for normal use": one this server cannot apply is stored
  // like any valid resource and does nothing (an active one is refused with the reason).
  try {
    return definitionsOrThrow(sp, origin);
  } catch (err) {
    if (err instanceof OperationOutcomeError) return new Map();
    throw err;
  }
}

/**
 * A definition that says again what an official (or built-in) parameter of every base
 * already is (HL7's own examples restate `_id` and `Condition.subject`): nothing to do.
 */
function restatesOfficial(sp: SearchParameter): boolean {
  const { code, type, expression } = sp;
  if (!code || !type || !expression || !sp.base?.length) return false;
  const normalized = (terms: readonly string[]): string => terms.map((t) => t.replace(/\s+/g, '')).sort().join('|');
  return sp.base.every((base) => {
    const root = ABSTRACT_BASES.has(base) ? 'Resource' : base;
    const builtIn = BUILT_IN_EXPRESSIONS[code];
    if (builtIn) return type === builtIn.type && [builtIn.path, `${root}.${builtIn.path}`].includes(expression.replace(/\s+/g, ''));
    if (!isResourceType(base)) return false;
    const official = searchParamDef(base, code);
    return official !== undefined && official.type === type && normalized(official.terms) === normalized(termsFor(sp, base));
  });
}

/** What `_id` and `_lastUpdated`, served by every table's own columns, are defined as. */
const BUILT_IN_EXPRESSIONS: Record<string, { type: string; path: string }> = {
  _id: { type: 'token', path: 'id' },
  _lastUpdated: { type: 'date', path: 'meta.lastUpdated' },
};

function definitionsOrThrow(sp: SearchParameter, origin: CustomParamOrigin): Map<string, SearchParamDef> {
  const result = new Map<string, SearchParamDef>();
  const { code, type, expression } = sp;
  if (!code || !CODE_PATTERN.test(code)) {
    throw badRequest(
      `SearchParameter.code must be a letter followed by at most 47 letters, digits or '-' (got ${JSON.stringify(code ?? null)})`,
      'SearchParameter.code'
    );
  }
  if (!type) throw badRequest('SearchParameter.type is required', 'SearchParameter.type');
  if (!CUSTOM_TYPES.has(type)) {
    throw unprocessable(
      `Search parameters of type ${type} cannot be defined on this server (supported: ${[...CUSTOM_TYPES].join(', ')})`,
      'SearchParameter.type'
    );
  }
  if (!expression) throw badRequest('SearchParameter.expression (FHIRPath) is required to search by it', 'SearchParameter.expression');
  try {
    parseFhirPath(expression);
  } catch (err) {
    throw badRequest(`SearchParameter.expression is not valid FHIRPath: ${errorText(err)}`, 'SearchParameter.expression');
  }
  const bases = sp.base ?? [];
  if (bases.length === 0) throw badRequest('SearchParameter.base is required', 'SearchParameter.base');
  const types = new Set<string>();
  for (const base of bases) {
    if (ABSTRACT_BASES.has(base)) resourceTypes.forEach((t) => types.add(t));
    else if (isResourceType(base)) types.add(base);
    else throw badRequest(`SearchParameter.base ${base} is not an R4 resource type`, 'SearchParameter.base');
  }
  for (const resourceType of types) {
    const official = officialIndexedParams(resourceType);
    if (official.has(code) || FIXED_CODES.has(code)) {
      throw unprocessable(
        `${resourceType} already has the official search parameter '${code}'; a custom parameter cannot replace it (choose another code)`,
        'SearchParameter.code'
      );
    }
    const def: SearchParamDef = {
      code,
      type,
      url: sp.url ?? '',
      description: sp.description,
      terms: termsFor(sp, resourceType),
      targets: sp.target ?? [],
      custom: origin,
    };
    if (def.terms.length === 0) {
      // An abstract base spreads the parameter over every type; only the types it selects from count.
      if (!(bases as string[]).includes(resourceType)) continue;
      throw unprocessable(
        `SearchParameter.expression selects nothing from ${resourceType}: each part of it must start with ${resourceType} (or Resource)`,
        'SearchParameter.expression'
      );
    }
    let param;
    try {
      param = compileParam(resourceType, def);
      param?.expression.evaluate({ resourceType } as never);
    } catch (err) {
      throw badRequest(`SearchParameter.expression cannot be evaluated on ${resourceType}: ${errorText(err)}`, 'SearchParameter.expression');
    }
    if (!param) {
      throw unprocessable(`A ${type} parameter cannot index what ${def.terms.join(' | ')} selects`, 'SearchParameter.expression');
    }
    const taken = new Set([...official.values()].flatMap((p) => p.handler.columns(p).map((c) => c.name)));
    const clash = param.handler.columns(param).find((c) => taken.has(c.name));
    if (clash) {
      throw unprocessable(
        `The code '${code}' would share the index column ${clash.name} with an official parameter of ${resourceType}; choose another code`,
        'SearchParameter.code'
      );
    }
    result.set(resourceType, def);
  }
  return result;
}

/** Served by every table's own columns; no index column, no custom replacement. */
const FIXED_CODES: ReadonlySet<string> = new Set(['_id', '_lastUpdated']);

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
