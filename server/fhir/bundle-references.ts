import type { Resource } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';

/**
 * Reference rewriting inside a transaction (http.html#trules): a reference to another
 * entry's fullUrl (`urn:uuid:…`, `urn:oid:…` or an absolute URL) becomes that entry's
 * `Type/id`, and a conditional reference (`Patient?identifier=sys|val`) becomes the one
 * resource its search finds. References are `Reference.reference` values anywhere in
 * the resource (extensions and contained resources included), `Attachment.url` values
 * equal to an entry's fullUrl, and `href`/`src` links in the narrative. Identifier
 * values that happen to hold an entry's fullUrl (Synthea's DocumentReferences do) are
 * data and stay.
 */

const CONDITIONAL = /^[A-Z][A-Za-z]+\?/;
const PLACEHOLDER = /^urn:(uuid|oid):/;
const RELATIVE = /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
/** `http://example.org/fhir/Patient/123` → base `http://example.org/fhir`. */
const RESTFUL_FULL_URL = /^(https?:\/\/.+)\/[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/;

export function isConditionalReference(reference: string): boolean {
  return CONDITIONAL.test(reference);
}

/** The distinct conditional references in `resource`, to resolve before rewriting. */
export function conditionalReferences(resource: Resource): Set<string> {
  const found = new Set<string>();
  visitReferences(resource, (value, _path, key) => {
    if (key === 'reference' && CONDITIONAL.test(value)) found.add(value);
    return undefined;
  });
  return found;
}

/**
 * Rewrites `resource` in place and returns how to put it back (a transaction that
 * PostgreSQL aborts runs again from the original). `byFullUrl`: fullUrl → `Type/id` of
 * the bundle's entries; `conditional`: each conditional reference → `Type/id`. A
 * placeholder (`urn:uuid:`, `urn:oid:`) that no entry has can never resolve: 400,
 * naming where it is.
 */
export function rewriteReferences(
  resource: Resource,
  byFullUrl: ReadonlyMap<string, string>,
  conditional: ReadonlyMap<string, string>,
  at: string,
  fullUrl?: string
): () => void {
  const undo: (() => void)[] = [];
  // bundle.html#references: in an entry whose fullUrl is RESTful, `Type/id` means that base's Type/id.
  const base = fullUrl === undefined ? undefined : RESTFUL_FULL_URL.exec(fullUrl)?.[1];
  visitReferences(resource, (value, path, key) => {
    // An Attachment's `url` naming another entry (a DocumentReference's Binary) is a link too.
    if (key === 'url') return byFullUrl.get(value);
    const target =
      byFullUrl.get(value) ?? conditional.get(value) ?? (base !== undefined && RELATIVE.test(value) ? byFullUrl.get(`${base}/${value}`) : undefined);
    if (target !== undefined) return target;
    if (PLACEHOLDER.test(value)) {
      const why = byFullUrl.size > 0 ? "matches no entry's fullUrl in this Bundle" : 'points at another entry, and entries of a batch are processed on their own';
      throw badRequest(`${at}: the reference ${value} at ${path.slice(1)} ${why}`, `${at}.resource${path}`);
    }
    return undefined;
  }, undo);
  const text = (resource as { text?: { div?: unknown } }).text;
  if (text && typeof text.div === 'string' && byFullUrl.size > 0) {
    const div = text.div;
    text.div = div.replace(/\b(href|src)="([^"]*)"/g, (whole, attribute: string, value: string) => {
      const target = byFullUrl.get(value);
      return target === undefined ? whole : `${attribute}="${target}"`;
    });
    undo.push(() => (text.div = div));
  }
  return () => undo.forEach((restore) => restore());
}

type Visit = (value: string, path: string, key: 'reference' | 'url') => string | undefined;

/**
 * Calls `visit` on every `reference` and `url` string; a returned string replaces it
 * (recorded in `undo`). `url` holds links in Attachment (and canonical URLs elsewhere,
 * which never equal an entry's fullUrl).
 */
function visitReferences(node: unknown, visit: Visit, undo?: (() => void)[], path = ''): void {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      visitReferences(node[i], visit, undo, `${path}[${i}]`);
    }
    return;
  }
  if (node === null || typeof node !== 'object') {
    return;
  }
  const record = node as Record<string, unknown>;
  for (const key in record) {
    const value = record[key];
    if (typeof value === 'object' && value !== null) {
      visitReferences(value, visit, undo, `${path}.${key}`);
    } else if ((key === 'reference' || key === 'url') && typeof value === 'string') {
      const replaced = visit(value, `${path}.${key}`, key);
      if (replaced !== undefined) {
        record[key] = replaced;
        undo?.push(() => (record[key] = value));
      }
    }
  }
}
