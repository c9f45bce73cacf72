import type { TerminologyCapabilities } from '@medplum/fhirtypes';
import { completeCodeSystems } from '../validation/required-bindings';
import { thisInstance } from './capabilities';

let cached: { baseUrl: string; statement: TerminologyCapabilities } | undefined;

/**
 * `GET /metadata?mode=terminology` (R4 http.html#capabilities): what this server does
 * with terminology. It expands value sets (`ValueSet/$expand`, and token `:in` search)
 * and validates codes against them and against code systems (`$validate-code`), from the
 * ValueSets and CodeSystems stored here and the official R4 ones, flat, paged, never
 * partially, and translates codes through ConceptMaps (`ConceptMap/$translate`, with or
 * without naming the map); closure is not offered, so that element is absent. It knows every code of the complete code systems shipped
 * with R4, against which it checks required bindings on every write, and those are the
 * code systems it lists.
 */
export function terminologyCapabilities(baseUrl: string): TerminologyCapabilities {
  if (cached?.baseUrl === baseUrl) return cached.statement;
  const statement: TerminologyCapabilities = {
    resourceType: 'TerminologyCapabilities',
    ...thisInstance(baseUrl, 'FHIR R4 server on PostgreSQL: required bindings checked locally, ValueSet/$expand, $validate-code, CodeSystem/$lookup and $subsumes, ConceptMap/$translate over the terminology held here'),
    expansion: {
      hierarchical: false,
      paging: true,
      incomplete: false,
      textFilter: 'filter keeps the codes whose code, or a word of whose display, starts with each of its words (case and accents folded)',
    },
    validateCode: { translations: false },
    translation: { needsMap: false },
    codeSystem: completeCodeSystems().map(({ url, version }) => ({ uri: url, ...(version ? { version: [{ code: version, isDefault: true }] } : {}) })),
  };
  cached = { baseUrl, statement };
  return statement;
}
