import type { Resource } from '@medplum/fhirtypes';
import { paramColumn } from './column-names';
import type { SearchFilter } from './search-request';
import { indexedParam } from './supported-parameters';

/**
 * Whether `resource` matches `filter`, decided from its content with the same
 * extraction that writes its index columns (so the answer is the one SQL would give),
 * for the filters access rules are made of: ids, references (the patient compartment),
 * Codings anywhere (a Consent's `code`) and their AND/OR/NOT. Undefined for anything else: the caller asks the database.
 */
export function matchesInMemory(resource: Resource, filter: SearchFilter): boolean | undefined {
  switch (filter.kind) {
    case 'id': {
      const hit = filter.ids.includes(resource.id as string);
      return filter.not ? !hit : hit;
    }
    case 'reference': {
      const values = indexedValues(resource, filter.code);
      if (values === undefined) return undefined;
      return values.some((v) => filter.entries.includes(v as string));
    }
    case 'not': {
      const hit = matchesInMemory(resource, filter.filter);
      return hit === undefined ? undefined : !hit;
    }
    case 'any': {
      let unknown = false;
      for (const f of filter.filters) {
        const hit = matchesInMemory(resource, f);
        if (hit === true) return true;
        if (hit === undefined) unknown = true;
      }
      return unknown ? undefined : false;
    }
    case 'all': {
      let unknown = false;
      for (const f of filter.filters) {
        const hit = matchesInMemory(resource, f);
        if (hit === false) return false;
        if (hit === undefined) unknown = true;
      }
      return unknown ? undefined : true;
    }
    case 'coding-anywhere':
      return filter.codings.some((c) => hasCoding(resource, c.system, c.code));
    default:
      return undefined;
  }
}

/**
 * The values `resource` has in the index column of parameter `code`, extracted as the
 * write path extracts them; undefined when the type has no such indexed parameter.
 */
export function indexedValues(resource: Resource, code: string): unknown[] | undefined {
  const param = indexedParam(resource.resourceType, code);
  if (!param) return undefined;
  const out: Record<string, unknown> = {};
  param.handler.extract(param, param.expression.evaluate(resource), out, resource);
  const values = out[paramColumn(code)];
  return Array.isArray(values) ? values : [];
}

/** An object with that system and code anywhere in `node` (as the jsonpath of build-search-sql.ts finds it). */
function hasCoding(node: unknown, system: string, code: string): boolean {
  if (Array.isArray(node)) return node.some((n) => hasCoding(n, system, code));
  if (node === null || typeof node !== 'object') return false;
  const record = node as Record<string, unknown>;
  if (record.system === system && record.code === code) return true;
  return Object.values(record).some((v) => hasCoding(v, system, code));
}
