import type { Resource } from '@medplum/fhirtypes';
import { includedReferences, revincludeApplies, revincludeSources } from '../search/include-references';
import type { IncludeRule, SearchRequest } from '../search/search-request';

/** How include resolution reads: the repository's read path, so later access filters apply here too. */
export interface IncludeReader {
  /** Live resources of one type by id. */
  readByIds(resourceType: string, ids: string[]): Promise<Resource[]>;
  /** Live resources of `sourceType` whose reference parameter `code` points to one of `references` (`Type/id`); at most `limit`. */
  readReferring(sourceType: string, code: string, references: string[], limit: number): Promise<Resource[]>;
}

export interface IncludeResult {
  /** Included resources, none of them a match, each once, in the order found. */
  resources: Resource[];
  /** true when the limit (or the iteration depth) stopped resolution before everything was included. */
  truncated: boolean;
}

/** `:iterate` rounds after the first; a cycle ends by itself (nothing new), a long chain stops here. */
const MAX_ITERATE_ROUNDS = 8;

const keyOf = (r: { resourceType: string; id?: string }): string => `${r.resourceType}/${r.id}`;

/**
 * `_include` / `_revinclude` for the matches of one page (https://hl7.org/fhir/R4/search.html#include):
 * round 0 applies every rule to the matches; each later round applies the `:iterate` rules
 * to what the round before included. At most `limit` resources are included; beyond that
 * the result says `truncated` (the caller tells the client; never silently).
 */
export async function resolveIncludes(
  request: Pick<SearchRequest, 'include' | 'revinclude'>,
  matches: readonly Resource[],
  reader: IncludeReader,
  limit: number
): Promise<IncludeResult> {
  const include = request.include ?? [];
  const revinclude = request.revinclude ?? [];
  const seen = new Set(matches.map(keyOf));
  const included: Resource[] = [];
  let truncated = false;
  let frontier: readonly Resource[] = matches;

  for (let round = 0; frontier.length > 0; round++) {
    const active = (rules: IncludeRule[]): IncludeRule[] => rules.filter((r) => round === 0 || r.iterate);
    const includeRules = active(include);
    const revincludeRules = active(revinclude);
    if (includeRules.length + revincludeRules.length === 0) break;
    if (round > MAX_ITERATE_ROUNDS) {
      truncated = true;
      break;
    }
    const found: Resource[] = [];
    const room = (): number => limit - included.length - found.length;
    const take = (resources: Resource[], asked: number): void => {
      if (resources.length > asked) truncated = true;
      for (const r of resources) {
        if (seen.has(keyOf(r))) continue;
        if (room() <= 0) {
          truncated = true;
          return;
        }
        seen.add(keyOf(r));
        found.push(r);
      }
    };

    // _include: references out of the frontier, read by id, one query per target type.
    const wanted = new Map<string, Set<string>>();
    for (const source of frontier) {
      for (const rule of includeRules) {
        for (const ref of includedReferences(source, rule)) {
          if (seen.has(keyOf(ref))) continue;
          let ids = wanted.get(ref.resourceType);
          if (!ids) wanted.set(ref.resourceType, (ids = new Set()));
          ids.add(ref.id);
        }
      }
    }
    for (const [type, idSet] of wanted) {
      if (room() <= 0) {
        truncated = true;
        break;
      }
      const ids = [...idSet];
      const asked = room();
      if (ids.length > asked) truncated = true;
      take(await reader.readByIds(type, ids.slice(0, asked)), asked);
    }

    // _revinclude: resources whose reference parameter points into the frontier.
    const byType = new Map<string, string[]>();
    for (const target of frontier) byType.set(target.resourceType, [...(byType.get(target.resourceType) ?? []), keyOf(target)]);
    for (const [targetType, references] of byType) {
      for (const rule of revincludeRules) {
        if (!revincludeApplies(rule, targetType)) continue;
        for (const [sourceType, code] of revincludeSources(rule, targetType)) {
          const asked = room();
          if (asked <= 0) {
            truncated = true;
            break;
          }
          take(await reader.readReferring(sourceType, code, references, asked + 1), asked);
        }
      }
    }

    included.push(...found);
    frontier = found;
  }
  return { resources: included, truncated };
}
