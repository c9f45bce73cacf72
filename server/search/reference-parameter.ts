import type { Attachment, Reference } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import { isResourceType, resourceTypes } from '../validation/structure-definitions';
import { paramColumn } from './column-names';
import type { TypedNode } from './compile-path-expression';
import type { ParameterType } from './parameter-type';
import { arrayEntrySort, arrayOverlap, columnMissing } from './parameter-type';
import type { ReferenceFilter } from './search-request';
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

  parse(param, modifier, values): ReferenceFilter {
    const code = param.def.code;
    const targets = targetTypes(param.def.targets);
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
