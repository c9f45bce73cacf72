import type { Attachment, Reference } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import { isResourceType, resourceTypes } from '../validation/structure-definitions';
import { paramColumn, quoteIdentifier } from './column-names';
import type { TypedNode } from './compile-path-expression';
import type { ParameterType } from './parameter-type';
import { arrayEntrySort, arrayOverlap, columnMissing, placeholders } from './parameter-type';
import type { ReferenceFilter, ReferenceTreeFilter } from './search-request';
import { searchParamDef } from './search-parameter-definitions';
import { splitUnescaped, unescapeSearchValue } from './search-value-escaping';
import { anySystemEntry, systemCodeEntry } from './token-encoding';

/**
 * Reference parameters: one `text[]` column (GIN) per parameter with each reference as
 * written, normalised: a relative literal reference becomes `Type/id` (no `_history`),
 * absolute URLs, `urn:` references and canonicals stay as they are; contained (`#x`)
 * references are not searchable. A plain-id search expands to `T/id` for each target
 * type of the parameter, so every form is one indexed `&&`.
 */
const RELATIVE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

export function normalizeReference(reference: string): string | undefined {
  if (reference.length === 0 || reference.startsWith('#')) return undefined;
  const relative = RELATIVE.exec(reference);
  if (relative) return `${relative[1]}/${relative[2]}`;
  return reference.replace(/\/_history\/[^/]+$/, '');
}

/**
 * `Reference.identifier` (for `:identifier`) shares the reference column as token entries
 * behind this prefix: no extra column or index to write, and no stored reference can
 * collide with it, since `#` (contained) references are never stored.
 */
const IDENTIFIER_PREFIX = '#identifier:';

function identifierEntries(identifier: Reference['identifier'], entries: Set<string>): void {
  if (typeof identifier?.value !== 'string' || identifier.value === '') return;
  entries.add(IDENTIFIER_PREFIX + anySystemEntry(identifier.value));
  entries.add(IDENTIFIER_PREFIX + systemCodeEntry(identifier.system ?? '', identifier.value));
}

/** `:identifier=system|value`, `|value` (no system) or `value` (any system). */
function identifierSearchEntry(code: string, raw: string): string {
  const parts = splitUnescaped(raw, '|', 2);
  const value = unescapeSearchValue(parts[parts.length - 1]);
  if (value === '') throw badRequest(`${code}:identifier needs a value (system|value or value), got '${raw}'`, code);
  return IDENTIFIER_PREFIX + (parts.length === 1 ? anySystemEntry(value) : systemCodeEntry(unescapeSearchValue(parts[0]), value));
}

function referenceEntries(nodes: readonly TypedNode[]): string[] | null {
  const entries = new Set<string>();
  for (const node of nodes) {
    let text: unknown;
    if (node.type === 'Reference') {
      text = (node.value as Reference).reference;
      identifierEntries((node.value as Reference).identifier, entries);
    } else if (node.type === 'Attachment') text = (node.value as Attachment).url;
    else if (typeof node.value === 'object' && node.value !== null) {
      // A resource itself (Bundle `composition` / `message`: `Bundle.entry[0].resource`).
      const { resourceType, id } = node.value as { resourceType?: unknown; id?: unknown };
      text = typeof resourceType === 'string' && typeof id === 'string' ? `${resourceType}/${id}` : undefined;
    } else text = node.value; // canonical, uri, url
    if (typeof text !== 'string') continue;
    const entry = normalizeReference(text);
    if (entry) entries.add(entry);
  }
  return entries.size > 0 ? [...entries] : null;
}

function targetTypes(targets: readonly string[]): readonly string[] {
  return targets.length === 0 || targets.includes('Any') ? resourceTypes : targets;
}

export const referenceParameter: ParameterType = {
  columns(param) {
    return [{ name: paramColumn(param.def.code), sqlType: 'text[]', indexMethod: 'gin' }];
  },

  extract(param, nodes, out) {
    out[paramColumn(param.def.code)] = referenceEntries(nodes);
  },

  parse(param, modifier, values): ReferenceFilter | ReferenceTreeFilter {
    const code = param.def.code;
    const targets = targetTypes(param.def.targets);
    if (modifier === 'below' || modifier === 'above') return treeFilter(code, modifier, targets, values);
    if (modifier === 'identifier') {
      return { kind: 'reference', code, entries: values.map((v) => identifierSearchEntry(code, v)) };
    }
    // Any type name is accepted: real data references types outside the official targets.
    if (modifier !== undefined && !isResourceType(modifier)) {
      throw badRequest(`Modifier :${modifier} is not supported for reference parameter ${code}`, code);
    }
    const entries: string[] = [];
    for (const raw of values) {
      const value = unescapeSearchValue(raw);
      const relative = RELATIVE.exec(value);
      if (modifier !== undefined) {
        // `subject:Patient=123`; `subject:Patient=Patient/123` is accepted too.
        if (relative && relative[1] !== modifier) throw badRequest(`${code}:${modifier} cannot match ${value}`, code);
        if (!relative && value.includes('/')) throw badRequest(`${code}:${modifier} needs an id, got ${value}`, code);
        entries.push(relative ? `${relative[1]}/${relative[2]}` : `${modifier}/${value}`);
      } else if (relative || value.includes(':') || value.includes('/')) {
        entries.push(normalizeReference(value) ?? value);
      } else {
        for (const type of targets) entries.push(`${type}/${value}`);
      }
    }
    return { kind: 'reference', code, entries };
  },

  condition(param, filter, column) {
    if (filter.kind === 'reference-tree') return treeCondition(column(paramColumn(param.def.code)), filter);
    if (filter.kind !== 'reference') throw new Error(`reference parameter cannot apply a ${filter.kind} filter`);
    return arrayOverlap(column(paramColumn(param.def.code)), filter.entries);
  },

  missing(param, missing, column) {
    return columnMissing(column(paramColumn(param.def.code)), missing);
  },

  // By the reference as stored (`Type/id` or the absolute URL); identifiers are not references.
  sort(param, descending, column) {
    return arrayEntrySort(column(paramColumn(param.def.code)), descending, `NOT starts_with(e, '${IDENTIFIER_PREFIX}')`);
  },
};

/** The reference parameter of `type` that makes a hierarchy of its own type (Location.partof, Organization.partof, Encounter.part-of …). */
export function hierarchyParameter(type: string): string | undefined {
  return ['partof', 'part-of'].find((code) => {
    // The definitions, not supported-parameters.ts: that module imports this one to build its handlers.
    const def = searchParamDef(type, code);
    return def?.type === 'reference' && def.targets.includes(type);
  });
}

/** `code:below=Location/1` (`:above`): the roots, all of one type with a hierarchy; a plain id when only one target type has one. */
function treeFilter(code: string, direction: 'below' | 'above', targets: readonly string[], values: string[]): ReferenceTreeFilter {
  const hierarchical = targets.filter((t) => hierarchyParameter(t) !== undefined);
  const roots: string[] = [];
  let targetType: string | undefined;
  for (const raw of values) {
    const value = unescapeSearchValue(raw);
    const relative = RELATIVE.exec(value);
    let type: string | undefined;
    let id: string | undefined;
    if (relative) [type, id] = [relative[1], relative[2]];
    else if (/^[A-Za-z0-9\-.]{1,64}$/.test(value) && hierarchical.length === 1) [type, id] = [hierarchical[0], value];
    if (!type || !id || !hierarchical.includes(type)) {
      throw badRequest(`${code}:${direction} needs a reference (Type/id) to a type with a hierarchy of its own among ${hierarchical.join(', ') || 'none'} of ${code}'s targets, got '${value}'`, code);
    }
    if (targetType !== undefined && type !== targetType) throw badRequest(`${code}:${direction}: the values must be of one type, got ${targetType} and ${type}`, code);
    targetType = type;
    roots.push(`${type}/${id}`);
  }
  const via = hierarchyParameter(targetType as string) as string;
  return { kind: 'reference-tree', code, direction, targetType: targetType as string, via, roots };
}

/**
 * The references to the roots and what lies below (above) them, gathered by a recursive
 * query over the target type's hierarchy column (UNION: a cycle ends it), deleted
 * resources left out; an uncorrelated sub-select, so PostgreSQL runs it once per search.
 */
function treeCondition(column: string, filter: ReferenceTreeFilter): { sql: string; bindings: unknown[] } {
  const table = quoteIdentifier(filter.targetType);
  const via = quoteIdentifier(paramColumn(filter.via));
  const prefix = `${filter.targetType}/`;
  const roots = `SELECT unnest(ARRAY[${placeholders(filter.roots.length)}]::text[])`;
  const step =
    filter.direction === 'below'
      ? `SELECT ?::text || t.id FROM ${table} t JOIN tree ON t.${via} && ARRAY[tree.ref] WHERE NOT t.deleted`
      : `SELECT p FROM tree JOIN ${table} t ON starts_with(tree.ref, ?::text) AND t.id = substr(tree.ref, ${prefix.length + 1}) CROSS JOIN LATERAL unnest(t.${via}) p WHERE NOT t.deleted`;
  return {
    sql: `${column} && ARRAY(WITH RECURSIVE tree(ref) AS (${roots} UNION ${step}) SELECT ref FROM tree)`,
    bindings: [...filter.roots, prefix],
  };
}
