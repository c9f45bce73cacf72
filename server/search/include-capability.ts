import { isResourceType, resourceTypes } from '../validation/structure-definitions';
import { referenceParamCodes } from './parse-include-parameter';
import { indexedParam } from './supported-parameters';

/** `searchInclude` of a type: each indexed reference parameter, `Type:*` and `*`. */
export function searchIncludeValues(resourceType: string): string[] {
  if (!isResourceType(resourceType)) return [];
  const codes = referenceParamCodes(resourceType);
  return codes.length === 0 ? [] : ['*', `${resourceType}:*`, ...codes.map((c) => `${resourceType}:${c}`)];
}

let revincludes: Map<string, string[]> | undefined;

/**
 * `searchRevInclude` of a type: every `Source:param` whose reference parameter can point
 * to it (its official targets name the type, or any type). `_revinclude=*` reads them all.
 */
export function searchRevIncludeValues(resourceType: string): string[] {
  if (!revincludes) {
    revincludes = new Map(resourceTypes.map((t) => [t, []]));
    for (const source of resourceTypes) {
      for (const code of referenceParamCodes(source)) {
        const targets = indexedParam(source, code)?.def.targets ?? [];
        const reaches = targets.length === 0 || targets.includes('Any') ? resourceTypes : targets;
        for (const target of reaches) revincludes.get(target)?.push(`${source}:${code}`);
      }
    }
  }
  return revincludes.get(resourceType) ?? [];
}
