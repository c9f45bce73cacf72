import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { badRequest } from '../core/outcome';
import { applySearchFilters } from '../search/build-search-sql';
import type { SearchFilter, SearchRequest, TokenSet, TokenSetFilter } from '../search/search-request';
import { indexedParam } from '../search/supported-parameters';
import { conceptIndex } from '../terminology/code-system-hierarchy';
import { terminologySource } from '../terminology/terminology-source';
import { ExpansionError, expandValueSet, type TerminologySource } from '../terminology/value-set-expansion';

/** Codes (a bare code and a system|code pair count as two) all the sets of one search may hold. */
const MAX_CODES_PER_SEARCH = 30000;

/** Through the repository (no principal), like a chain's targets: a set names codes, it returns no resource. */
async function storedByCanonical<T extends Resource>(db: Knex, resourceType: string, canonical: string): Promise<T | undefined> {
  const query = db(resourceType).select('content');
  applySearchFilters(query, { resourceType, filters: [{ kind: 'uri', code: 'url', entries: [canonical] }], sort: [], count: 1, offset: 0, total: 'none', warnings: [] });
  const rows: { content: T }[] = await query.orderBy('last_updated', 'desc').limit(1);
  return rows[0]?.content;
}

/** True when a filter (at any depth of AND / OR / NOT, chains and `_has`) names a set of codes. */
function namesTokenSet(filter: SearchFilter): boolean {
  switch (filter.kind) {
    case 'token-set':
      return true;
    case 'any':
    case 'all':
      return filter.filters.some(namesTokenSet);
    case 'not':
    case 'chain':
    case 'has':
      return namesTokenSet(filter.filter);
    default:
      return false;
  }
}

/**
 * The request with every `:in` / `:not-in` / `:below` / `:above` replaced by the codes
 * it stands for (a plain token filter, so the GIN index of the parameter answers it).
 * A value set or code system that is not here, or that cannot be enumerated here, is a
 * 400 naming the parameter: an empty answer would be a wrong one.
 */
export async function resolveTokenSets(db: Knex, request: SearchRequest): Promise<SearchRequest> {
  if (!request.filters.some(namesTokenSet)) return request;
  // Codes only: a listed code's display would cost a read of its whole code system.
  const source = { ...terminologySource((type, canonical) => storedByCanonical(db, type, canonical)), displays: false };
  // Every code becomes a bound parameter of one statement, and PostgreSQL takes at most 65,535.
  const budget = { left: MAX_CODES_PER_SEARCH };
  const walk = async (resourceType: string, filter: SearchFilter): Promise<SearchFilter> => {
    switch (filter.kind) {
      case 'token-set':
        return resolveFilter(resourceType, filter, source, budget);
      case 'any':
      case 'all':
        return { ...filter, filters: await Promise.all(filter.filters.map((f) => walk(resourceType, f))) };
      case 'not':
        return { ...filter, filter: await walk(resourceType, filter.filter) };
      case 'chain':
        return { ...filter, filter: await walk(filter.targetType, filter.filter) };
      case 'has':
        return { ...filter, filter: await walk(filter.sourceType, filter.filter) };
      default:
        return filter;
    }
  };
  return { ...request, filters: await Promise.all(request.filters.map((f) => walk(request.resourceType, f))) };
}

/**
 * Elements of type `code` (Observation.status) are stored without a system: their system
 * is the one their binding implies. A named set's codes match them by code as well.
 */
function holdsBareCodes(resourceType: string, code: string): boolean {
  const types = indexedParam(resourceType, code)?.expression.resultTypes;
  return types === undefined || types.has('code');
}

async function resolveFilter(resourceType: string, filter: TokenSetFilter, source: TerminologySource, budget: { left: number }): Promise<SearchFilter> {
  const bare = holdsBareCodes(resourceType, filter.code);
  const pairs = new Map<string, { system: string; code: string }>();
  for (const set of filter.sets) {
    for (const code of await codesOf(filter, set, source)) {
      pairs.set(`${code.system}|${code.code}`, { system: code.system, code: code.code });
      if (bare) pairs.set(`|${code.code}`, { system: '', code: code.code });
    }
  }
  budget.left -= pairs.size;
  if (budget.left < 0) {
    throw badRequest(`${filter.code}: the sets of codes this search names hold more than ${MAX_CODES_PER_SEARCH} codes in all; name smaller ones`, filter.code);
  }
  return { kind: 'token', code: filter.code, not: filter.not, values: [...pairs.values()] };
}

async function codesOf(filter: TokenSetFilter, set: TokenSet, source: TerminologySource): Promise<{ system: string; code: string }[]> {
  try {
    if ('valueSet' in set) {
      const valueSet = await source.valueSet(set.valueSet);
      if (!valueSet) throw new ExpansionError(`ValueSet ${set.valueSet} is not known here`, 'not-found');
      return await expandValueSet(valueSet, source);
    }
    const codeSystem = await source.codeSystem(set.system);
    if (!codeSystem?.concept?.length) {
      throw new ExpansionError(`The hierarchy of ${set.system} is not known here (no CodeSystem with its concepts)`, 'not-found');
    }
    const index = conceptIndex(codeSystem);
    if (!index.concepts.has(set.code)) throw new ExpansionError(`${set.code} is not a code of ${set.system}`, 'not-found');
    const related = set.relation === 'below' ? index.descendants(set.code) : index.ancestors(set.code);
    return [set.code, ...related].map((code) => ({ system: set.system, code }));
  } catch (err) {
    throw err instanceof ExpansionError ? badRequest(`${filter.code}: ${err.message}`, filter.code) : err;
  }
}
