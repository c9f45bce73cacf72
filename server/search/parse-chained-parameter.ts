import { badRequest } from '../core/outcome';
import { isResourceType } from '../validation/structure-definitions';
import { searchParamDef } from './search-parameter-definitions';
import type { ChainFilter, HasFilter, SearchFilter } from './search-request';
import { indexedParam } from './supported-parameters';

/** Parses the rest of a chained key against another type (the caller's own `parseFilter`). */
export type ParseFilter = (resourceType: string, key: string, value: string) => SearchFilter | undefined;
export type Ignore = (name: string, reason: string) => void;

/** Chains and `_has` nest; beyond this depth a query is refused rather than planned. */
const MAX_DEPTH = 4;

function depthOf(key: string): number {
  return key.split('.').length - 1 + (key.match(/(^|[.:])_has:/g)?.length ?? 0);
}

/** The reference parameter a chain or `_has` walks along; undefined when unknown (already reported). */
function referenceParam(resourceType: string, code: string, key: string, ignore: Ignore): boolean {
  const param = indexedParam(resourceType, code);
  if (!param) {
    ignore(key, searchParamDef(resourceType, code) ? 'Search parameter not supported' : 'Unknown search parameter');
    return false;
  }
  if (param.def.type !== 'reference') {
    throw badRequest(`${resourceType}.${code} is a ${param.def.type} parameter; only reference parameters can be chained`, key);
  }
  return true;
}

/** The types a chain without a type modifier walks to: the parameter's targets that have the next parameter. */
function chainTargets(resourceType: string, code: string, rest: string): { targets: string[]; candidates: string[] } {
  const targets = (indexedParam(resourceType, code)?.def.targets ?? []).filter((t) => t !== 'Any');
  const next = /^[^.:]+/.exec(rest)?.[0] ?? rest;
  // Every type has these; any other must be a search parameter of the target.
  const everywhere = next === '_id' || next === '_lastUpdated' || next === '_has';
  return { targets, candidates: targets.filter((t) => everywhere || indexedParam(t, next) !== undefined) };
}

/**
 * `subject:Patient.name=peter`, `subject:Patient.organization.name=x`, and without the
 * type, `subject.name=peter`: every target type of `subject` that has a `name` parameter
 * (Patient, Group, Location…), any of them matching. https://hl7.org/fhir/R4/search.html#chaining
 */
export function parseChain(resourceType: string, key: string, value: string, ignore: Ignore, parseFilter: ParseFilter): SearchFilter | undefined {
  if (depthOf(key) > MAX_DEPTH) throw badRequest(`${key} chains more than ${MAX_DEPTH} levels`, key);
  const dot = key.indexOf('.');
  const head = key.slice(0, dot);
  const rest = key.slice(dot + 1);
  const colon = head.indexOf(':');
  const code = colon < 0 ? head : head.slice(0, colon);
  const modifier = colon < 0 ? undefined : head.slice(colon + 1);
  if (code === '' || rest === '') throw badRequest(`Malformed chained parameter '${key}'`, key);
  if (!referenceParam(resourceType, code, key, ignore)) return undefined;
  if (modifier !== undefined) {
    // Any type is accepted, as for `subject:Type=id`: real data points outside the official targets.
    if (!isResourceType(modifier)) throw badRequest(`Modifier :${modifier} of ${code} is not a resource type`, key);
    const filter = parseFilter(modifier, rest, value);
    return filter && { kind: 'chain', code, targetType: modifier, filter };
  }
  const { targets, candidates } = chainTargets(resourceType, code, rest);
  if (targets.length === 0) {
    throw badRequest(`${resourceType}.${code} can refer to any type; name one, e.g. ${code}:Patient.${rest}`, key);
  }
  if (candidates.length === 0) {
    // No target has the parameter: parsing it against the first gives the usual warning (or 400 when strict).
    parseFilter(targets[0], rest, value);
    return undefined;
  }
  const chains: ChainFilter[] = [];
  for (const targetType of candidates) {
    const filter = parseFilter(targetType, rest, value);
    if (filter) chains.push({ kind: 'chain', code, targetType, filter });
  }
  if (chains.length <= 1) return chains[0];
  return { kind: 'any', filters: chains };
}

/**
 * `_has:Observation:patient:code=1234-5`, nested `_has:Observation:patient:_has:AuditEvent:entity:agent=x`.
 * https://hl7.org/fhir/R4/search.html#has
 */
export function parseHas(resourceType: string, key: string, value: string, ignore: Ignore, parseFilter: ParseFilter): HasFilter | undefined {
  if (depthOf(key) > MAX_DEPTH) throw badRequest(`${key} nests more than ${MAX_DEPTH} levels`, key);
  const match = /^_has:([^:.]+):([^:.]+):(.+)$/.exec(key);
  if (!match) throw badRequest(`Malformed _has parameter '${key}': expected _has:Type:reference:parameter`, key);
  const [, sourceType, code, rest] = match;
  if (!isResourceType(sourceType)) throw badRequest(`_has: '${sourceType}' is not a resource type`, key);
  if (!referenceParam(sourceType, code, key, ignore)) return undefined;
  const filter = parseFilter(sourceType, rest, value);
  return filter && { kind: 'has', sourceType, code, filter };
}

export function isHasKey(key: string): boolean {
  return key === '_has' || key.startsWith('_has:');
}

export function isChainKey(key: string): boolean {
  return key.includes('.');
}
