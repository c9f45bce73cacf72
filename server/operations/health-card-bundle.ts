import type { Bundle, Resource } from '@medplum/fhirtypes';

/** What the emergency card keeps of the Patient: enough to tell whose card it is and whom to call. */
const PATIENT_ELEMENTS = ['name', 'birthDate', 'gender', 'identifier', 'contact'];

/**
 * The `fhirBundle` of a SMART Health Card, minified as the spec requires of cards shown
 * as QR codes (https://spec.smarthealth.cards/#health-cards-are-compact): entries
 * `resource:N` in the order given, references between them rewritten to those URIs, no
 * Resource.id, no meta but meta.security, no narrative, no Coding.display.
 *
 * Two choices beyond the letter of the spec:
 *  - CodeableConcept.text is dropped only where a coding carries the meaning; a concept
 *    that is text alone (a free-text allergy) would otherwise say nothing;
 *  - a reference to anything outside the card (the Encounter, the prescriber) keeps only
 *    its display: a server-local id means nothing to a verifier and only leaks, and a
 *    reference without display disappears.
 */
export function healthCardBundle(resources: readonly Resource[], baseUrl: string, patientElements: readonly string[] = PATIENT_ELEMENTS): Bundle {
  const positions = new Map<string, number>();
  resources.forEach((r, i) => positions.set(`${r.resourceType}/${r.id}`, i));
  const localKey = (reference: string): string => {
    const relative = reference.startsWith(`${baseUrl}/`) ? reference.slice(baseUrl.length + 1) : reference;
    // A versioned reference names the same resource.
    return relative.replace(/\/_history\/[^/]+$/, '');
  };
  const rewrite = (reference: string): string | undefined => {
    const position = positions.get(localKey(reference));
    return position === undefined ? undefined : `resource:${position}`;
  };
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: resources.map((resource, i) => ({
      fullUrl: `resource:${i}`,
      resource: minifyResource(resource.resourceType === 'Patient' ? pick(resource, ['resourceType', ...patientElements]) : resource, rewrite) as Resource,
    })),
  };
}

type Rewrite = (reference: string) => string | undefined;

function minifyResource(resource: object, rewrite: Rewrite): object {
  const { id: _id, meta, text: _text, ...rest } = resource as { id?: string; meta?: { security?: unknown[] }; text?: unknown };
  const content = minify(rest, rewrite, '') as Record<string, unknown>;
  return meta?.security?.length ? { ...content, meta: { security: minify(meta.security, rewrite, 'security') } } : content;
}

/** Returns undefined for what is left empty, so that its parent drops it. */
function minify(node: unknown, rewrite: Rewrite, key: string): unknown {
  if (Array.isArray(node)) {
    const items = node.map((item) => minify(item, rewrite, key)).filter((item) => item !== undefined);
    return items.length > 0 ? items : undefined;
  }
  if (node === null || typeof node !== 'object') return node;
  if (key === 'contained') {
    // Contained resources keep their id: `#id` references inside the resource point at it.
    const { id, ...inner } = node as { id?: string };
    return { ...(minifyResource(inner, rewrite) as object), ...(id ? { id } : {}) };
  }
  const source = node as Record<string, unknown>;
  const result: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(source)) {
    if (name === 'display' && isCoding(source, key)) continue;
    if (name === 'text' && Array.isArray(source.coding) && source.coding.length > 0 && typeof value === 'string') continue;
    if (name === 'reference' && typeof value === 'string' && !value.startsWith('#')) {
      const rewritten = rewrite(value);
      if (rewritten !== undefined) result.reference = rewritten;
      continue;
    }
    const minified = minify(value, rewrite, name);
    if (minified !== undefined) result[name] = minified;
  }
  return Object.keys(result).length > 0 ? result : undefined;
}

/**
 * A Coding, told apart without the type definitions: an item of a `coding` array
 * (CodeableConcept), a security label, or an element with a `system` and a string
 * `code` (Encounter.class and other bare Codings; no other R4 datatype pairs those with
 * a `display`).
 */
function isCoding(node: Record<string, unknown>, key: string): boolean {
  return key === 'coding' || key === 'security' || ('system' in node && typeof node.code === 'string');
}

function pick(resource: Resource, elements: readonly string[]): Record<string, unknown> {
  const source = resource as unknown as Record<string, unknown>;
  return Object.fromEntries(elements.filter((e) => source[e] !== undefined).map((e) => [e, source[e]]));
}
