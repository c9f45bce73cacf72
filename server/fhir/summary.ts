import type { Coding, Resource } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import { resourceDefinitions } from '../validation/structure-definitions';
import { getTypeSchema, type TypeSchema } from '../validation/type-schemas';

/** https://hl7.org/fhir/R4/search.html#summary — marks a resource as a subset. */
const SUBSETTED: Coding = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
  code: 'SUBSETTED',
  display: 'subsetted',
};

interface TopLevelElements {
  mandatory: string[];
  /** Choice elements by their name without `[x]` (`value` → `value[x]`). */
  choices: Set<string>;
}

const byType = new Map<string, TopLevelElements>();
for (const sd of resourceDefinitions) {
  if (sd.kind !== 'resource' || !sd.type || sd.derivation === 'constraint') {
    continue;
  }
  const mandatory: string[] = [];
  const choices = new Set<string>();
  for (const element of sd.snapshot?.element ?? []) {
    const parts = element.path?.split('.') ?? [];
    if (parts.length !== 2) {
      continue;
    }
    if ((element.min ?? 0) > 0) {
      mandatory.push(parts[1]);
    }
    if (parts[1].endsWith('[x]')) {
      choices.add(parts[1].slice(0, -3));
    }
  }
  byType.set(sd.type, { mandatory, choices });
}

/** `deceased[x]` matches `deceasedBoolean`; `_birthDate` (primitive extensions) follows `birthDate`. */
function matches(name: string, key: string): boolean {
  const base = key.startsWith('_') ? key.slice(1) : key;
  if (name.endsWith('[x]')) {
    const prefix = name.slice(0, -3);
    return base.startsWith(prefix) && /^[A-Z]/.test(base.slice(prefix.length));
  }
  return base === name;
}

function keep(resource: Resource, names: string[]): Resource {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(resource)) {
    if (key === 'resourceType' || key === 'id' || key === 'meta' || names.some((n) => matches(n, key))) {
      result[key] = value;
    }
  }
  return markSubsetted(result as unknown as Resource);
}

function markSubsetted(resource: Resource): Resource {
  const tags = resource.meta?.tag ?? [];
  if (tags.some((t) => t.system === SUBSETTED.system && t.code === SUBSETTED.code)) {
    return resource;
  }
  return { ...resource, meta: { ...resource.meta, tag: [...tags, SUBSETTED] } };
}

/**
 * `_summary=true` at every level (R4 search.html#summary): an element stays when its
 * definition marks it isSummary, and so do the elements inside it that are marked so,
 * down through backbone elements, datatypes and resources in resources (Bundle.entry.resource).
 * Inside a kept element, its mandatory elements and modifier extensions stay too: a
 * summary must not drop what changes the meaning of what it shows. A primitive's `_name`
 * companion goes: it holds only an id and extensions, which R4 marks neither summary nor
 * mandatory. `Observation.component.referenceRange`, `Attachment.data`, extensions and
 * contained resources are not in a summary.
 */
function summaryObject(value: Record<string, unknown>, schema: TypeSchema): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const key in value) {
    if (key === 'resourceType') {
      result[key] = value[key];
      continue;
    }
    const property = key.startsWith('_') ? undefined : schema.properties.get(key);
    if (!property || !(property.isSummary || property.min > 0 || property.elementName === 'modifierExtension')) continue;
    const kept = property.elementName === 'modifierExtension' ? value[key] : summaryOfProperty(value[key], property.kind, property.schema);
    if (kept !== undefined) result[key] = kept;
  }
  return result;
}

function summaryOfProperty(value: unknown, kind: string, schema: (() => TypeSchema) | undefined): unknown {
  if (kind === 'primitive') return value;
  if (kind === 'resource') {
    return mapValue(value, (v) => {
      const type = getTypeSchema(String((v as { resourceType?: unknown }).resourceType));
      return type ? summaryObject(v, type) : v;
    });
  }
  return schema ? summaryValue(value, schema()) : value;
}

function summaryValue(value: unknown, schema: TypeSchema): unknown {
  return mapValue(value, (v) => summaryObject(v, schema));
}

/** Applies `f` to an object or to each object of an array; undefined when nothing is left (emptied items leave the array). */
function mapValue(value: unknown, f: (v: Record<string, unknown>) => Record<string, unknown>): unknown {
  const one = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v;
    const kept = f(v as Record<string, unknown>);
    return Object.keys(kept).length > 0 ? kept : undefined;
  };
  if (!Array.isArray(value)) return one(value);
  const items = value.map(one).filter((i) => i !== undefined);
  return items.length > 0 ? items : undefined;
}

export type SummaryMode = 'true' | 'text' | 'data' | 'count' | 'false';

export function parseSummary(value: string | string[] | undefined): SummaryMode | undefined {
  const raw = Array.isArray(value) ? value[value.length - 1] : value;
  if (raw === undefined || raw === '') {
    return undefined;
  }
  if (!['true', 'text', 'data', 'count', 'false'].includes(raw)) {
    throw badRequest(`_summary must be one of true, text, data, count, false; got "${raw}"`);
  }
  return raw as SummaryMode;
}

export function parseElements(value: string | string[] | undefined): string[] | undefined {
  const raw = Array.isArray(value) ? value.join(',') : value;
  if (raw === undefined || raw.trim() === '') {
    return undefined;
  }
  return raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')
    // `Patient.name` and `name` both name the top-level element
    .map((e) => (e.includes('.') ? e.split('.')[1] : e));
}

/** Applies `_summary` / `_elements` to one resource, as read and search return it. */
export function applySummary(resource: Resource, summary?: SummaryMode, elements?: string[]): Resource {
  const defs = byType.get(resource.resourceType);
  if (!defs) {
    return resource;
  }
  if (summary === 'true') {
    const schema = getTypeSchema(resource.resourceType);
    return markSubsetted(schema ? (summaryObject(resource as unknown as Record<string, unknown>, schema) as unknown as Resource) : resource);
  }
  if (summary === 'text') {
    return keep(resource, ['text', ...defs.mandatory]);
  }
  if (summary === 'data') {
    if (!('text' in resource)) {
      return resource;
    }
    const { text: _text, ...rest } = resource as Resource & { text?: unknown };
    return markSubsetted(rest as Resource);
  }
  if (elements) {
    // `_elements=value` names the element `value[x]`, whichever type the resource holds.
    const names = elements.map((e) => (defs.choices.has(e) ? `${e}[x]` : e));
    return keep(resource, [...names, ...defs.mandatory]);
  }
  return resource;
}
