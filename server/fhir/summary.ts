import type { Coding, Resource } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import { resourceDefinitions } from '../validation/structure-definitions';

/** https://hl7.org/fhir/R4/search.html#summary — marks a resource as a subset. */
const SUBSETTED: Coding = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
  code: 'SUBSETTED',
  display: 'subsetted',
};

interface TopLevelElements {
  summary: string[];
  mandatory: string[];
  /** Choice elements by their name without `[x]` (`value` → `value[x]`). */
  choices: Set<string>;
}

const byType = new Map<string, TopLevelElements>();
for (const sd of resourceDefinitions) {
  if (sd.kind !== 'resource' || !sd.type || sd.derivation === 'constraint') {
    continue;
  }
  const summary: string[] = [];
  const mandatory: string[] = [];
  const choices = new Set<string>();
  for (const element of sd.snapshot?.element ?? []) {
    const parts = element.path?.split('.') ?? [];
    if (parts.length !== 2) {
      continue;
    }
    if (element.isSummary) {
      summary.push(parts[1]);
    }
    if ((element.min ?? 0) > 0) {
      mandatory.push(parts[1]);
    }
    if (parts[1].endsWith('[x]')) {
      choices.add(parts[1].slice(0, -3));
    }
  }
  byType.set(sd.type, { summary, mandatory, choices });
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
    return keep(resource, defs.summary);
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
