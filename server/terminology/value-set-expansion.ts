import type { CodeSystem, CodeSystemConcept, ValueSet, ValueSetComposeInclude, ValueSetExpansionContains } from '@medplum/fhirtypes';
import { conceptIndex, isAbstract, isInactive } from './code-system-hierarchy';

/**
 * ValueSet expansion (valueset.html#expansion) over what this server holds: a ValueSet's
 * `compose` (codes listed, whole code systems, `is-a` and other filters on code systems
 * known here, other value sets, exclusions), or, without a compose, its own
 * `expansion.contains`. Code systems and value sets come from `source` (the database and
 * the official R4 definitions). What cannot be enumerated here (SNOMED CT's hierarchy, a
 * code system only named) is an ExpansionError, never a partial answer.
 */

export interface ExpandedCode {
  system: string;
  code: string;
  display?: string;
  version?: string;
  abstract?: boolean;
  inactive?: boolean;
}

export interface TerminologySource {
  /** The ValueSet of a canonical (`url` or `url|version`). */
  valueSet(canonical: string): Promise<ValueSet | undefined>;
  /** The CodeSystem of a url, in that version when given. */
  codeSystem(url: string, version?: string): Promise<CodeSystem | undefined>;
  /**
   * false: the codes are all that is wanted (a search's `:in`), so codes listed in a
   * compose are taken as they are, without reading their code system for displays.
   */
  displays?: boolean;
}

export type ExpansionProblem = 'not-found' | 'not-supported' | 'too-costly';

export class ExpansionError extends Error {
  constructor(
    message: string,
    readonly problem: ExpansionProblem
  ) {
    super(message);
  }
}

/** Value sets nest; deeper than this is a cycle or a mistake. */
const MAX_DEPTH = 16;

/** The most codes one expansion may hold. */
export const MAX_EXPANSION_CODES = 20000;

const keyOf = (c: { system?: string; code?: string }): string => `${c.system ?? ''}|${c.code ?? ''}`;

export async function expandValueSet(valueSet: ValueSet, source: TerminologySource, limit = MAX_EXPANSION_CODES): Promise<ExpandedCode[]> {
  return [...(await expand(valueSet, source, limit, [])).values()];
}

async function expand(valueSet: ValueSet, source: TerminologySource, limit: number, path: string[]): Promise<Map<string, ExpandedCode>> {
  const name = valueSet.url ?? `ValueSet/${valueSet.id ?? ''}`;
  if (path.includes(name) || path.length >= MAX_DEPTH) {
    throw new ExpansionError(`ValueSet ${name} includes itself (through ${path.join(' → ')})`, 'not-supported');
  }
  const inner = [...path, name];
  const compose = valueSet.compose;
  if (!compose?.include?.length) {
    if (valueSet.expansion?.contains) return fromContains(valueSet, limit);
    throw new ExpansionError(`ValueSet ${name} has neither a compose nor an expansion`, 'not-supported');
  }
  const codes = new Map<string, ExpandedCode>();
  for (const include of compose.include) {
    for (const [key, code] of await expandInclude(include, source, limit, inner, compose.inactive)) {
      if (!codes.has(key)) codes.set(key, code);
    }
    if (codes.size > limit) throw tooCostly(name, limit);
  }
  for (const exclude of compose.exclude ?? []) {
    for (const key of (await expandInclude(exclude, source, Infinity, inner, true)).keys()) codes.delete(key);
  }
  return codes;
}

function tooCostly(name: string, limit: number): ExpansionError {
  return new ExpansionError(`ValueSet ${name} has more than ${limit} codes`, 'too-costly');
}

function fromContains(valueSet: ValueSet, limit: number): Map<string, ExpandedCode> {
  const expansion = valueSet.expansion as NonNullable<ValueSet['expansion']>;
  const listed = countContains(expansion.contains ?? []);
  if ((expansion.total !== undefined && expansion.total > listed) || (expansion.offset ?? 0) > 0) {
    throw new ExpansionError(`The expansion stored in ValueSet ${valueSet.url ?? valueSet.id} is one page of ${expansion.total}; it has no compose to expand from`, 'not-supported');
  }
  const codes = new Map<string, ExpandedCode>();
  const stack = [...(expansion.contains ?? [])];
  while (stack.length > 0) {
    const entry = stack.pop() as ValueSetExpansionContains;
    if (entry.system && entry.code) {
      codes.set(keyOf(entry), withoutUndefined({ system: entry.system, code: entry.code, display: entry.display, version: entry.version, abstract: entry.abstract, inactive: entry.inactive }));
    }
    stack.push(...(entry.contains ?? []));
  }
  if (codes.size > limit) throw tooCostly(valueSet.url ?? '', limit);
  return codes;
}

function countContains(contains: ValueSetExpansionContains[]): number {
  return contains.reduce((n, c) => n + (c.code ? 1 : 0) + countContains(c.contains ?? []), 0);
}

async function expandInclude(
  include: ValueSetComposeInclude,
  source: TerminologySource,
  limit: number,
  path: string[],
  withInactive: boolean | undefined
): Promise<Map<string, ExpandedCode>> {
  let codes: Map<string, ExpandedCode> | undefined;
  if (include.system) codes = await systemPart(include, source, limit, withInactive);
  // Several value sets, and a system beside them: the codes in all of them (valueset.html#compose).
  for (const canonical of include.valueSet ?? []) {
    const nested = await source.valueSet(canonical);
    if (!nested) throw new ExpansionError(`ValueSet ${canonical} is not known here`, 'not-found');
    const members = await expand(nested, source, Infinity, path);
    codes = codes ? new Map([...codes].filter(([key]) => members.has(key))) : members;
  }
  return codes ?? new Map();
}

async function systemPart(include: ValueSetComposeInclude, source: TerminologySource, limit: number, withInactive: boolean | undefined): Promise<Map<string, ExpandedCode>> {
  const system = include.system as string;
  const out = new Map<string, ExpandedCode>();
  if (include.concept?.length) {
    // Listed codes need no code system: their displays come from it when it is here.
    const codeSystem = include.filter?.length
      ? await requireCodeSystem(source, system, include.version)
      : source.displays === false
        ? undefined
        : await source.codeSystem(system, include.version);
    const known = codeSystem ? conceptIndex(codeSystem).concepts : undefined;
    for (const concept of include.concept) {
      const display = concept.display ?? known?.get(concept.code as string)?.display;
      out.set(keyOf({ system, code: concept.code }), withoutUndefined({ system, code: concept.code as string, display, version: include.version }));
    }
    if (!include.filter?.length) return out;
  }
  const codeSystem = await requireCodeSystem(source, system, include.version);
  if (!include.filter?.length && codeSystem.content !== 'complete') {
    throw new ExpansionError(`CodeSystem ${system} is not complete here (content ${codeSystem.content}): its codes cannot be listed`, 'not-supported');
  }
  let selected: Set<string> | undefined;
  for (const filter of include.filter ?? []) {
    const matching = applyFilter(codeSystem, filter.property as string, filter.op as string, filter.value as string);
    selected = selected ? new Set([...selected].filter((c) => matching.has(c))) : matching;
  }
  const index = conceptIndex(codeSystem);
  const version = include.version ?? codeSystem.version;
  const result = include.concept?.length ? new Map<string, ExpandedCode>() : out;
  for (const [code, concept] of index.concepts) {
    if (selected && !selected.has(code)) continue;
    const inactive = isInactive(concept);
    if (inactive && withInactive === false) continue;
    result.set(keyOf({ system, code }), withoutUndefined({ system, code, display: concept.display, version, abstract: isAbstract(concept) || undefined, inactive: inactive || undefined }));
    if (result.size > limit) throw tooCostly(system, limit);
  }
  // Listed codes and filters in one include: the listed codes that pass the filters.
  if (include.concept?.length) return new Map([...out].filter(([key]) => result.has(key)));
  return result;
}

async function requireCodeSystem(source: TerminologySource, system: string, version: string | undefined): Promise<CodeSystem> {
  const codeSystem = await source.codeSystem(system, version);
  if (!codeSystem) throw new ExpansionError(`CodeSystem ${system}${version ? ` version ${version}` : ''} is not known here`, 'not-found');
  if (!codeSystem.concept?.length) {
    throw new ExpansionError(`CodeSystem ${system} has no concepts here (content ${codeSystem.content})`, 'not-supported');
  }
  return codeSystem;
}

/** The codes of `codeSystem` that a compose filter selects (valueset.html#filter, codesystem-filter-operator). */
function applyFilter(codeSystem: CodeSystem, property: string, op: string, value: string): Set<string> {
  const index = conceptIndex(codeSystem);
  const all = [...index.concepts.keys()];
  const onConcept = property === 'concept' || property === 'code';
  if (onConcept) {
    switch (op) {
      case 'is-a':
        return index.concepts.has(value) ? new Set([value, ...index.descendants(value)]) : new Set();
      case 'descendent-of':
        return index.descendants(value);
      case 'is-not-a': {
        const below = new Set([value, ...index.descendants(value)]);
        return new Set(all.filter((c) => !below.has(c)));
      }
      case 'generalizes':
        return index.concepts.has(value) ? new Set([value, ...index.ancestors(value)]) : new Set();
      case 'in':
        return new Set(value.split(',').map((v) => v.trim()).filter((c) => index.concepts.has(c)));
      case 'not-in': {
        const listed = new Set(value.split(',').map((v) => v.trim()));
        return new Set(all.filter((c) => !listed.has(c)));
      }
      case 'regex': {
        const pattern = new RegExp(`^(?:${value})$`);
        return new Set(all.filter((c) => pattern.test(c)));
      }
      case '=':
        return index.concepts.has(value) ? new Set([value]) : new Set();
    }
  } else if (op === '=' || op === 'in' || op === 'not-in' || op === 'exists') {
    const wanted = new Set(value.split(',').map((v) => v.trim()));
    const has = (concept: CodeSystemConcept): boolean => {
      const values = (concept.property ?? []).filter((p) => p.code === property).map(propertyValue);
      if (op === 'exists') return (values.length > 0) === (value === 'true');
      const hit = values.some((v) => wanted.has(v));
      return op === 'not-in' ? !hit : hit;
    };
    return new Set(all.filter((c) => has(index.concepts.get(c) as CodeSystemConcept)));
  }
  throw new ExpansionError(`The filter ${property} ${op} ${value} on CodeSystem ${codeSystem.url} is not supported here`, 'not-supported');
}

function propertyValue(p: NonNullable<CodeSystemConcept['property']>[number]): string {
  const value = p.valueCode ?? p.valueString ?? p.valueBoolean ?? p.valueInteger ?? p.valueDecimal ?? p.valueDateTime ?? p.valueCoding?.code;
  return String(value);
}

function withoutUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) if (value[key] === undefined) delete value[key];
  return value;
}
