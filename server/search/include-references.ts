import type { Resource } from '@medplum/fhirtypes';
import { paramColumn } from './column-names';
import { searchRevIncludeValues } from './include-capability';
import { referenceParamCodes } from './parse-include-parameter';
import type { IncludeRule } from './search-request';
import { indexedParam } from './supported-parameters';

/** A literal reference as stored in the index: `Type/id` (absolute URLs and identifiers are not followed). */
const LOCAL_REFERENCE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/;

export interface ResourceKey {
  resourceType: string;
  id: string;
}

/** The reference parameter codes a rule follows out of (`_include`) or into (`_revinclude`) a type. */
export function ruleCodes(rule: IncludeRule, sourceType: string): string[] {
  if (rule.sourceType !== '*' && rule.sourceType !== sourceType) return [];
  return rule.code === '*' ? referenceParamCodes(sourceType) : indexedParam(sourceType, rule.code) ? [rule.code] : [];
}

/**
 * The local resources an `_include` rule reaches from one resource, read with the same
 * compiled expression and normalisation as the index (so include and search agree).
 */
export function includedReferences(resource: Resource, rule: IncludeRule): ResourceKey[] {
  const keys: ResourceKey[] = [];
  for (const code of ruleCodes(rule, resource.resourceType)) {
    const param = indexedParam(resource.resourceType, code);
    if (!param) continue;
    const out: Record<string, unknown> = {};
    param.handler.extract(param, param.expression.evaluate(resource), out, resource);
    for (const entry of (out[paramColumn(code)] as string[] | null) ?? []) {
      const match = LOCAL_REFERENCE.exec(entry);
      if (!match || (rule.targetType !== undefined && match[1] !== rule.targetType)) continue;
      keys.push({ resourceType: match[1], id: match[2] });
    }
  }
  return keys;
}

/**
 * The `[sourceType, code]` pairs a `_revinclude` rule reads for resources of `targetType`:
 * for `*`, every reference parameter of every type that can point to that type.
 */
export function revincludeSources(rule: IncludeRule, targetType: string): [string, string][] {
  if (rule.sourceType === '*') return searchRevIncludeValues(targetType).map((value) => value.split(':') as [string, string]);
  return ruleCodes(rule, rule.sourceType).map((code) => [rule.sourceType, code]);
}

/** For `_revinclude`: whether a rule can include resources referring to a resource of `targetType`. */
export function revincludeApplies(rule: IncludeRule, targetType: string): boolean {
  return rule.targetType === undefined || rule.targetType === targetType;
}
