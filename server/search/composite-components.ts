import type { Reference, Resource } from '@medplum/fhirtypes';
import { compileExpression, compileRelativeExpression, type TypedNode } from './compile-path-expression';
import { approximateRange } from './date-condition';
import { dateEnvelope } from './date-index-values';
import { parseDateSearchValue } from './date-search-value';
import { normalizeText } from './folded-text';
import { numberValues } from './number-parameter';
import { parseNumberSearchValue } from './number-search-value';
import { quantityIndexValues } from './quantity-index-values';
import { jsonPathString, parseQuantitySearchValue, quantityPredicate, rangePredicate } from './quantity-parameter';
import { normalizeReference } from './reference-parameter';
import { searchParamDefs, splitUnion, type SearchParamDef } from './search-parameter-definitions';
import { unescapeSearchValue } from './search-value-escaping';
import { parseTokenValue, tokenEntry } from './token-parameter';
import { tokenIndexValues } from './token-index-values';
import { isResourceType, resourceTypes } from '../validation/structure-definitions';

/**
 * The components of a composite parameter (R4 search.html#composite): each one is
 * evaluated on one element of the composite's base (one Observation.component), its
 * values encoded for a jsonb element, and each query part becomes a jsonpath predicate
 * over that same element. The component's type comes from its own SearchParameter.
 */
export interface CompositeComponent {
  /** Values of this component for one base element; empty when it has none. */
  values(element: TypedNode, resource: Resource): unknown[];
  /** The jsonpath predicate for one (escaped) query part, over the stored element `@`. */
  predicate(key: string, raw: string): string;
}

type ComponentType = 'token' | 'quantity' | 'number' | 'date' | 'string' | 'reference';

const SUPPORTED: ReadonlySet<string> = new Set<ComponentType>(['token', 'quantity', 'number', 'date', 'string', 'reference']);

/** `as(DateTime)` names the FHIRPath system type; the elements hold FHIR `dateTime`. */
function fhirTypeNames(term: string): string {
  return term.replace(/\.as\((DateTime|Date|Time|String|Boolean|Integer|Decimal)\)/g, (_, t: string) =>
    `.as(${t === 'DateTime' ? 'dateTime' : t.toLowerCase()})`
  );
}

function exists(key: string, predicate: string): string {
  return `exists(@.${key}[*] ? (${predicate}))`;
}

/** Date prefixes over a stored [v, w] (epoch ms, inclusive; absent = open), as date-condition.ts does in SQL. */
function datePredicate(code: string, raw: string): string {
  const value = parseDateSearchValue(code, raw);
  const ms = (iso: string): number => (iso === 'infinity' ? 8.64e15 : Date.parse(iso));
  const S = ms(value.start);
  const E = ms(value.end);
  const eq = `(@.v >= ${S} && @.w < ${E})`;
  const above = `(!exists(@.w) || @.w >= ${E})`;
  const below = `(!exists(@.v) || @.v < ${S})`;
  switch (value.prefix) {
    case 'eq':
      return eq;
    case 'ne':
      return `!${eq}`;
    case 'gt':
      return above;
    case 'lt':
      return below;
    case 'ge':
      return `(${above} || ${eq})`;
    case 'le':
      return `(${below} || ${eq})`;
    case 'sa':
      return `@.v >= ${E}`;
    case 'eb':
      return `@.w < ${S}`;
    case 'ap': {
      const [from, to] = approximateRange(value, Date.now()).map(ms);
      return `((!exists(@.v) || @.v < ${to}) && (!exists(@.w) || @.w >= ${from}))`;
    }
  }
}

function encode(type: ComponentType, nodes: TypedNode[]): unknown[] {
  switch (type) {
    case 'token':
      return tokenIndexValues(nodes).tokens ?? [];
    case 'quantity':
      return quantityIndexValues(nodes) ?? [];
    case 'number':
      return (numberValues(nodes) ?? []).map((n) => ({ v: n, w: n }));
    case 'date':
      return nodes.flatMap((node) => {
        const range = dateEnvelope([node]);
        if (!range) return [];
        const out: { v?: number; w?: number } = {};
        if (Number.isFinite(range.lo)) out.v = range.lo;
        if (Number.isFinite(range.hi)) out.w = range.hi;
        return [out];
      });
    case 'string':
      return nodes.flatMap((n) => (typeof n.value === 'string' && n.value.trim() !== '' ? [normalizeText(n.value)] : []));
    case 'reference':
      return nodes.flatMap((n) => {
        const ref = n.type === 'Reference' ? (n.value as Reference).reference : n.value;
        const entry = typeof ref === 'string' ? normalizeReference(ref) : undefined;
        return entry ? [entry] : [];
      });
  }
}

function predicate(type: ComponentType, def: SearchParamDef, key: string, raw: string): string {
  const code = def.code;
  switch (type) {
    case 'token':
      return `@.${key}[*] == ${jsonPathString(tokenEntry(parseTokenValue(code, raw)))}`;
    case 'quantity':
      return exists(key, quantityPredicate('@', parseQuantitySearchValue(code, raw)));
    case 'number':
      return exists(key, rangePredicate('@', parseNumberSearchValue(code, unescapeSearchValue(raw))));
    case 'date':
      return exists(key, datePredicate(code, unescapeSearchValue(raw)));
    case 'string':
      return `@.${key}[*] starts with ${jsonPathString(normalizeText(unescapeSearchValue(raw)))}`;
    case 'reference': {
      const value = unescapeSearchValue(raw);
      const targets = def.targets.length === 0 || def.targets.includes('Any') ? resourceTypes : def.targets.filter(isResourceType);
      const entries = value.includes('/') || value.includes(':') ? [normalizeReference(value) ?? value] : targets.map((t) => `${t}/${value}`);
      return `(${entries.map((e) => `@.${key}[*] == ${jsonPathString(e)}`).join(' || ')})`;
    }
  }
}

const TYPES_OF: Record<ComponentType, ReadonlySet<string>> = {
  token: new Set(['code', 'Coding', 'CodeableConcept', 'Identifier', 'ContactPoint', 'boolean', 'string', 'uri', 'id']),
  quantity: new Set(['Quantity', 'SimpleQuantity', 'Age', 'Duration', 'Count', 'Distance', 'Money', 'Range', 'SampledData']),
  number: new Set(['integer', 'decimal', 'positiveInt', 'unsignedInt']),
  date: new Set(['date', 'dateTime', 'instant', 'Period', 'Timing']),
  string: new Set(['string', 'markdown']),
  reference: new Set(['Reference', 'canonical', 'uri', 'url']),
};

/**
 * The component's type is its definition's, unless the values its expression yields
 * cannot be of that type: R4's DocumentReference `relationship` names `relatesto`
 * (a reference) for `code` and `relation` (a token) for `target`; the values decide.
 */
function componentType(declared: ComponentType, resultTypes: ReadonlySet<string>): ComponentType {
  const fits = (type: ComponentType): boolean => [...resultTypes].some((t) => TYPES_OF[type].has(t));
  if (fits(declared)) return declared;
  const inferred = (Object.keys(TYPES_OF) as ComponentType[]).find((t) => fits(t) && [...resultTypes].every((r) => TYPES_OF[t].has(r)));
  return inferred ?? declared;
}

/**
 * Compiles a composite's components for one resource type; undefined when a component's
 * definition is unknown here, of a type no component encoding exists for, or its
 * expression cannot be compiled (the composite is then not offered at all).
 */
export function compileComponents(resourceType: string, def: SearchParamDef, baseTypes: readonly string[]): CompositeComponent[] | undefined {
  if (!def.components || def.components.length < 2) return undefined;
  const byUrl = new Map([...searchParamDefs(resourceType).values()].map((d) => [d.url, d]));
  const result: CompositeComponent[] = [];
  for (const component of def.components) {
    const target = byUrl.get(component.definition);
    if (!target || !SUPPORTED.has(target.type)) return undefined;
    const terms = splitUnion(component.expression).map(fhirTypeNames);
    let values: CompositeComponent['values'];
    let type = target.type as ComponentType;
    if (terms.every((t) => t.startsWith('%resource.'))) {
      // Same for every element: evaluated on the resource.
      const absolute = compileExpression(resourceType, terms.map((t) => t.replace('%resource', resourceType)));
      if (!absolute.compiled || !absolute.resultTypes) return undefined;
      type = componentType(type, absolute.resultTypes);
      values = (_element, resource) => encode(type, absolute.evaluate(resource));
    } else {
      const relative = compileRelativeExpression(baseTypes, terms);
      if (!relative) return undefined;
      type = componentType(type, relative.resultTypes);
      values = (element) => encode(type, relative.evaluate([element]));
    }
    result.push({ values, predicate: (key, raw) => predicate(type, target, key, raw) });
  }
  return result;
}
