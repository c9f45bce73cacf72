import { randomUUID } from 'node:crypto';
import type { ValueSet, ValueSetExpansionParameter } from '@medplum/fhirtypes';
import type { FhirHandler } from '../fhir/fhir-request';
import { normalizeText } from '../search/folded-text';
import { officialTerminology } from '../terminology/official-terminology';
import { type ExpandedCode, expandValueSet } from '../terminology/value-set-expansion';
import { OperationInput } from './operation-parameters';
import { callerTerminology, expansionFailure, namedValueSet } from './terminology-operation-support';

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
  const source = callerTerminology(ctx.repo);
  const valueSet = await namedValueSet(input, req.id, ctx.repo, source);
  const filter = input.string('filter');
  const activeOnly = input.boolean('activeOnly') ?? false;
  const offset = input.nonNegativeInteger('offset') ?? 0;
  const count = input.nonNegativeInteger('count') ?? DEFAULT_COUNT;
  const includeDefinition = input.boolean('includeDefinition') ?? false;

  let codes = await expandValueSet(valueSet, source).catch((err: unknown) => {
    throw expansionFailure(err);
  });
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

function matchesText(filter: string): (code: ExpandedCode) => boolean {
  const wanted = normalizeText(filter).split(/\s+/).filter(Boolean);
  return (code) => {
    const words = normalizeText(code.display ?? '').split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    const folded = normalizeText(code.code);
    return wanted.every((w) => folded.startsWith(w) || words.some((word) => word.startsWith(w)));
  };
}
