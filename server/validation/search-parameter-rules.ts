import { officialSearchParameter } from '../search/search-parameter-definitions';
import type { JsonObject } from './json-shape';

/**
 * SearchParameter rules beyond its StructureDefinition, as HL7's validator applies them
 * (its test cases sp-composite, sp-diff-type, sp-diff-base):
 * - a composite parameter combines two or more components (one is just its component);
 * - a parameter `derivedFrom` an official one keeps that one's type, and each of its bases
 *   is a base of that one: a derivation narrows the definition, it does not redefine it.
 * A `derivedFrom` this server does not know (another IG's parameter) is not checked.
 * [message, path] pairs.
 */
export function searchParameterProblems(sp: JsonObject, path: string): [string, string][] {
  const problems: [string, string][] = [];
  const components = Array.isArray(sp.component) ? sp.component.length : 0;
  if (sp.type === 'composite' && components < 2) {
    problems.push(["When the SearchParameter has a type of 'composite', then the SearchParameter must define two or more components", path]);
  }
  const url = typeof sp.derivedFrom === 'string' ? sp.derivedFrom.split('|')[0] : undefined;
  const parent = url ? officialSearchParameter(url) : undefined;
  if (!url || !parent) return problems;
  if (typeof sp.type === 'string' && sp.type !== parent.type) {
    problems.push([`The type ${sp.type} is different to the type ${parent.type} of ${url} in the derivedFrom SearchParameter`, `${path}.type`]);
  }
  const parentBases = new Set<string>(parent.base);
  const abstract = parentBases.has('Resource') || parentBases.has('DomainResource');
  for (const base of Array.isArray(sp.base) ? sp.base : []) {
    if (typeof base === 'string' && !abstract && !parentBases.has(base)) {
      problems.push([`The resource type ${base} is not listed as a base in the SearchParameter this is derived from (${url})`, `${path}.base`]);
    }
  }
  return problems;
}
