import { badRequest } from '../core/outcome';
import { isResourceType } from '../validation/structure-definitions';
import { searchParamDef } from './search-parameter-definitions';
import type { IncludeRule } from './search-request';
import { indexedParam, indexedParams } from './supported-parameters';

const KEY = /^_(rev)?include(?::(iterate|recurse))?$/;

/** `_include`, `_revinclude`, each with `:iterate` or R4's `:recurse` alias. */
export function isIncludeKey(key: string): boolean {
  return key.startsWith('_include') || key.startsWith('_revinclude');
}

/** The reference parameters of a type that includes can follow. */
export function referenceParamCodes(resourceType: string): string[] {
  return [...indexedParams(resourceType).values()].filter((p) => p.def.type === 'reference').map((p) => p.def.code);
}

/**
 * `_include=Observation:subject[:Patient]`, `_include=Observation:*`, `_include=*`,
 * `_revinclude=Provenance:target`, `_revinclude=Provenance:*`, `_revinclude=*`. https://hl7.org/fhir/R4/search.html#include
 * A malformed value is a 400; a parameter this server does not index, or a rule that
 * can include nothing here, is ignored like an unknown parameter (warning, or 400 when strict).
 */
export function parseIncludeRule(
  resourceType: string,
  key: string,
  value: string,
  ignore: (name: string, reason: string) => void
): IncludeRule | undefined {
  const keyMatch = KEY.exec(key);
  if (!keyMatch) throw badRequest(`Unknown modifier in '${key}': only :iterate (or :recurse) is allowed`, key);
  const reverse = keyMatch[1] !== undefined;
  const iterate = keyMatch[2] !== undefined;
  if (value === '*') return { sourceType: '*', code: '*', iterate };
  const parts = value.split(':');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw badRequest(`${key} must be Type:parameter[:TargetType] or *, got '${value}'`, key);
  }
  const [sourceType, code, targetType] = parts;
  if (!isResourceType(sourceType)) throw badRequest(`${key}: '${sourceType}' is not a resource type`, key);
  if (targetType !== undefined && !isResourceType(targetType)) throw badRequest(`${key}: '${targetType}' is not a resource type`, key);
  if (code === '*') {
    if (targetType !== undefined) throw badRequest(`${key}: a target type cannot follow *`, key);
  } else {
    const param = indexedParam(sourceType, code);
    if (!param) {
      ignore(key, `${searchParamDef(sourceType, code) ? 'Search parameter not supported' : 'Unknown search parameter'} ${sourceType}:${code}`);
      return undefined;
    }
    if (param.def.type !== 'reference') throw badRequest(`${key}: ${sourceType}.${code} is not a reference parameter`, key);
  }
  // Without :iterate, _include starts from the matches and _revinclude ends at them.
  if (!iterate && !reverse && sourceType !== resourceType) {
    ignore(key, `${value} can only include from ${sourceType} resources, and this search returns ${resourceType}; add :iterate`);
    return undefined;
  }
  if (!iterate && reverse && targetType !== undefined && targetType !== resourceType) {
    ignore(key, `${value} can only include resources that refer to ${targetType}, and this search returns ${resourceType}`);
    return undefined;
  }
  return { sourceType, code, ...(targetType !== undefined ? { targetType } : {}), iterate };
}
