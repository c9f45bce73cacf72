import { randomUUID } from 'node:crypto';
import type { CodeSystem, ValueSet, ValueSetExpansionParameter } from '@medplum/fhirtypes';
import { badRequest, issue, notFound, OperationOutcomeError, outcome } from '../core/outcome';
import type { FhirHandler } from '../fhir/fhir-request';
import { normalizeText } from '../search/folded-text';
import type { ResourceStore } from '../storage/resource-store';
import { officialTerminology } from '../terminology/official-terminology';
import { terminologySource } from '../terminology/terminology-source';
import { ExpansionError, type ExpandedCode, expandValueSet } from '../terminology/value-set-expansion';
import { OperationInput } from './operation-parameters';

/** Codes in one answer when `count` is not given. */
const DEFAULT_COUNT = 1000;

/**
 * `ValueSet/$expand` and `ValueSet/[id]/$expand` (R4 valueset-operation-expand): the
 * ValueSet of `url` (with `valueSetVersion`, or `url|version`), of the instance, or given
 * whole as `valueSet` in a Parameters body, expanded here (terminology/value-set-expansion.ts)
 * from the ValueSets and CodeSystems the caller may read and the official R4 ones.
 * `filter` keeps the codes whose code, or every word of whose display, starts with one
 * of its words (case and accents folded); `activeOnly` drops inactive codes; `offset` and
 * `count` page the flat list, `total` counts them all. A value set that cannot be
 * enumerated here (SNOMED CT's `is-a`) is an error, never a partial list.
 */
export const valueSetExpand: FhirHandler = async (req, ctx) => {
  const input = OperationInput.of('expand', req.body, req.query);
  const valueSet = await valueSetToExpand(input, req.id, ctx.repo);
  const filter = input.string('filter');
  const activeOnly = input.boolean('activeOnly') ?? false;
  const offset = input.nonNegativeInteger('offset') ?? 0;
  const count = input.nonNegativeInteger('count') ?? DEFAULT_COUNT;
  const includeDefinition = input.boolean('includeDefinition') ?? false;

  let codes: ExpandedCode[];
  try {
    codes = await expandValueSet(valueSet, terminologySource((type, canonical) => latestByCanonical(ctx.repo, type, canonical)));
  } catch (err) {
    if (!(err instanceof ExpansionError)) throw err;
    throw new OperationOutcomeError(err.problem === 'not-found' ? 404 : 400, outcome([issue('error', err.problem, err.message)]));
  }
  if (activeOnly) codes = codes.filter((c) => !c.inactive);
  if (filter) codes = codes.filter(matchesText(filter));

  const parameter: ValueSetExpansionParameter[] = [];
  if (filter) parameter.push({ name: 'filter', valueString: filter });
  if (activeOnly) parameter.push({ name: 'activeOnly', valueBoolean: true });
  if (input.nonNegativeInteger('count') !== undefined) parameter.push({ name: 'count', valueInteger: count });
  if (offset > 0) parameter.push({ name: 'offset', valueInteger: offset });
  const page = codes.slice(offset, offset + count);
  const { compose, expansion: _stored, text: _text, ...described } = valueSet;
  // An official ValueSet that is not stored here has no id or version history here.
  const { id: _id, meta: _meta, ...official } = described;
  const metadata = officialTerminology().valueSets.get(valueSet.url ?? '') === valueSet ? official : described;
  const expanded: ValueSet = {
    ...metadata,
    ...(includeDefinition && compose ? { compose } : {}),
    expansion: {
      identifier: `urn:uuid:${randomUUID()}`,
      timestamp: new Date().toISOString(),
      total: codes.length,
      ...(offset > 0 || input.nonNegativeInteger('offset') !== undefined ? { offset } : {}),
      ...(parameter.length > 0 ? { parameter } : {}),
      ...(page.length > 0 ? { contains: page } : {}),
    },
  };
  return { status: 200, resource: expanded };
};

async function valueSetToExpand(input: OperationInput, id: string | undefined, repo: ResourceStore): Promise<ValueSet> {
  if (id !== undefined) return (await repo.read('ValueSet', id)).resource as ValueSet;
  const given = input.resource('valueSet');
  if (given) {
    if (given.resourceType !== 'ValueSet') throw badRequest('$expand: parameter "valueSet" must be a ValueSet', 'valueSet');
    return given as ValueSet;
  }
  const url = input.string('url');
  if (!url) throw badRequest('$expand needs a ValueSet: url (with valueSetVersion), valueSet in a Parameters body, or ValueSet/[id]/$expand', 'url');
  const version = input.string('valueSetVersion');
  const canonical = version && !url.includes('|') ? `${url}|${version}` : url;
  const found = await terminologySource((type, c) => latestByCanonical(repo, type, c)).valueSet(canonical);
  if (!found) throw notFound(`ValueSet ${canonical} is not known here`);
  return found;
}

/** The latest live resource of a canonical the caller may read. */
async function latestByCanonical<T extends ValueSet | CodeSystem>(repo: ResourceStore, resourceType: T['resourceType'], canonical: string): Promise<T | undefined> {
  const { resources } = await repo.search({
    resourceType,
    filters: [{ kind: 'uri', code: 'url', entries: [canonical] }],
    sort: [{ code: '_lastUpdated', descending: true }],
    count: 1,
    offset: 0,
    total: 'none',
    warnings: [],
  });
  return resources[0] as T | undefined;
}

function matchesText(filter: string): (code: ExpandedCode) => boolean {
  const wanted = normalizeText(filter).split(/\s+/).filter(Boolean);
  return (code) => {
    const words = normalizeText(code.display ?? '').split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    const folded = normalizeText(code.code);
    return wanted.every((w) => folded.startsWith(w) || words.some((word) => word.startsWith(w)));
  };
}
