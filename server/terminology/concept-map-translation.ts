import type { Coding, ConceptMap, ConceptMapGroup } from '@medplum/fhirtypes';

/**
 * ConceptMap translation (conceptmap-operation-translate): what `system#code` maps to in
 * the given maps, element by element (`group.element.target` with its equivalence),
 * with a group's `unmapped` rule (`provided`: the same code, `fixed`: the code given)
 * where no element names the code; `reverse` reads the maps from target to source.
 */
export interface TranslationMatch {
  equivalence: string;
  concept: Coding;
  /** The ConceptMap it comes from (its url). */
  source?: string;
  comment?: string;
}

export interface TranslationRequest {
  system: string;
  code: string;
  version?: string;
  /** Only matches in this code system. */
  targetSystem?: string;
  reverse: boolean;
}

export function translate(maps: readonly ConceptMap[], request: TranslationRequest): TranslationMatch[] {
  const matches: TranslationMatch[] = [];
  for (const map of maps) {
    for (const group of map.group ?? []) {
      const [from, to] = request.reverse ? [group.target, group.source] : [group.source, group.target];
      if (from !== request.system || (request.targetSystem && to !== request.targetSystem)) continue;
      const fromVersion = request.reverse ? group.targetVersion : group.sourceVersion;
      if (request.version && fromVersion && fromVersion !== request.version) continue;
      const found = request.reverse ? reverseMatches(group, request.code) : forwardMatches(group, request.code);
      const add = (m: Omit<TranslationMatch, 'source'>): void => {
        matches.push({ ...m, ...(map.url ? { source: map.url } : {}) });
      };
      found.forEach(add);
      if (found.length === 0 && !request.reverse) unmapped(group, request.code).forEach(add);
    }
  }
  return matches;
}

function forwardMatches(group: ConceptMapGroup, code: string): Omit<TranslationMatch, 'source'>[] {
  return (group.element ?? [])
    .filter((e) => e.code === code)
    .flatMap((e) =>
      (e.target ?? []).map((t) => ({
        equivalence: t.equivalence as string,
        concept: t.code ? withoutEmpty({ system: group.target, version: group.targetVersion, code: t.code, display: t.display }) : {},
        ...(t.comment ? { comment: t.comment } : {}),
      }))
    );
}

/** From target back to source: an element's source code, with the equivalence read the other way. */
function reverseMatches(group: ConceptMapGroup, code: string): Omit<TranslationMatch, 'source'>[] {
  const opposite: Record<string, string> = { wider: 'narrower', narrower: 'wider', subsumes: 'specializes', specializes: 'subsumes' };
  return (group.element ?? []).flatMap((e) =>
    (e.target ?? [])
      .filter((t) => t.code === code && e.code)
      .map((t) => ({
        equivalence: opposite[t.equivalence as string] ?? (t.equivalence as string),
        concept: withoutEmpty({ system: group.source, version: group.sourceVersion, code: e.code, display: e.display }),
        ...(t.comment ? { comment: t.comment } : {}),
      }))
  );
}

function unmapped(group: ConceptMapGroup, code: string): Omit<TranslationMatch, 'source'>[] {
  const rule = group.unmapped;
  if (rule?.mode === 'provided') return [{ equivalence: 'equal', concept: withoutEmpty({ system: group.target, code }) }];
  if (rule?.mode === 'fixed' && rule.code) return [{ equivalence: 'equivalent', concept: withoutEmpty({ system: group.target, code: rule.code, display: rule.display }) }];
  return [];
}

function withoutEmpty(coding: Coding): Coding {
  return Object.fromEntries(Object.entries(coding).filter(([, v]) => v !== undefined && v !== '')) as Coding;
}
