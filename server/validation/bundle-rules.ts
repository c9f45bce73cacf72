import { isJsonObject } from './json-shape';
import type { JsonObject } from './json-shape';

/**
 * Bundle rules that need the whole bundle at once (R4 bundle.html):
 * - fullUrl is absolute (bundle.html#fullUrl) and, with meta.versionId, unique (bdl-7);
 * - a link relation appears once (one self, one next, ...);
 * - in a document, references resolve to entries (documents.html#content: the bundle
 *   carries the resources the Composition refers to), a versioned reference to that
 *   version and an unversioned one to exactly one entry.
 */

const absoluteUrl = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const restfulUrl = /^(.*\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(\/_history\/([A-Za-z0-9\-.]{1,64}))?$/;

interface Entry {
  index: number;
  fullUrl?: string;
  versionId?: string;
}

/** [message, path] pairs. */
export function bundleProblems(bundle: JsonObject, path: string): [string, string][] {
  const problems: [string, string][] = [];
  checkLinks(bundle, path, problems);
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  const byFullUrl = new Map<string, Entry[]>();
  entries.forEach((raw, index) => {
    if (!isJsonObject(raw)) {
      return;
    }
    const fullUrl = typeof raw.fullUrl === 'string' ? raw.fullUrl : undefined;
    const resource = isJsonObject(raw.resource) ? raw.resource : undefined;
    const meta = resource && isJsonObject(resource.meta) ? resource.meta : undefined;
    const entry: Entry = { index, fullUrl, versionId: typeof meta?.versionId === 'string' ? meta.versionId : undefined };
    if (fullUrl === undefined) {
      return;
    }
    if (!absoluteUrl.test(fullUrl)) {
      problems.push([`The fullUrl must be an absolute URL (not '${fullUrl}')`, `${path}.entry[${index}].fullUrl`]);
    }
    const list = byFullUrl.get(fullUrl);
    if (list) {
      list.push(entry);
    } else {
      byFullUrl.set(fullUrl, [entry]);
    }
  });

  if (bundle.type !== 'history') {
    for (const [fullUrl, list] of byFullUrl) {
      const versions = new Set(list.map((e) => e.versionId ?? ''));
      if (list.length > 1 && versions.size !== list.length) {
        problems.push([
          `bdl-7: fullUrl '${fullUrl}' appears in ${list.length} entries without distinct meta.versionId`,
          `${path}.entry[${list[1].index}]`,
        ]);
      }
    }
  }
  if (bundle.type === 'document') {
    entries.forEach((raw, index) => {
      if (isJsonObject(raw) && isJsonObject(raw.resource) && typeof raw.fullUrl === 'string') {
        checkDocumentReferences(raw.resource, raw.fullUrl, byFullUrl, `${path}.entry[${index}].resource`, problems);
      }
    });
  }
  return problems;
}

function checkLinks(bundle: JsonObject, path: string, problems: [string, string][]): void {
  if (!Array.isArray(bundle.link)) {
    return;
  }
  const seen = new Set<string>();
  bundle.link.forEach((link, i) => {
    if (isJsonObject(link) && typeof link.relation === 'string') {
      if (seen.has(link.relation)) {
        problems.push([`The link relation '${link.relation}' can only occur once`, `${path}.link[${i}]`]);
      }
      seen.add(link.relation);
    }
  });
}

function checkDocumentReferences(
  resource: JsonObject,
  entryFullUrl: string,
  byFullUrl: Map<string, Entry[]>,
  path: string,
  problems: [string, string][]
): void {
  const base = restfulUrl.exec(entryFullUrl)?.[1];
  const stack: [unknown, string][] = [[resource, path]];
  let budget = 100_000;
  while (stack.length > 0 && budget-- > 0) {
    const [value, at] = stack.pop() as [unknown, string];
    if (Array.isArray(value)) {
      value.forEach((item, i) => stack.push([item, `${at}[${i}]`]));
      continue;
    }
    if (!isJsonObject(value)) {
      continue;
    }
    for (const key in value) {
      if (key !== 'contained') {
        stack.push([value[key], `${at}.${key}`]);
      }
    }
    const reference = value.reference;
    if (typeof reference !== 'string' || reference.startsWith('#')) {
      continue;
    }
    const problem = resolveInDocument(reference, base, byFullUrl);
    if (problem) {
      problems.push([problem, at]);
    }
  }
}

function resolveInDocument(reference: string, base: string | undefined, byFullUrl: Map<string, Entry[]>): string | undefined {
  const parts = restfulUrl.exec(reference);
  let matches: Entry[];
  let version: string | undefined;
  if (parts) {
    version = parts[5];
    const unversioned = `${parts[2]}/${parts[3]}`;
    if (parts[1] || base !== undefined) {
      matches = byFullUrl.get(`${parts[1] ?? base}${unversioned}`) ?? [];
    } else {
      // The entry's fullUrl is not RESTful (urn:uuid): a relative reference points at the
      // server base, which may or may not be the base of other entries. Match by suffix,
      // and say nothing when nothing matches.
      matches = [...byFullUrl].filter(([url]) => url.endsWith('/' + unversioned)).flatMap(([, list]) => list);
      if (matches.length === 0) {
        return undefined;
      }
    }
  } else if (absoluteUrl.test(reference)) {
    matches = byFullUrl.get(reference) ?? [];
  } else {
    return undefined; // not a literal reference this check can interpret
  }
  if (matches.length === 0) {
    return `Can't find '${reference}' in the document bundle`;
  }
  if (version !== undefined) {
    return matches.some((m) => m.versionId === version)
      ? undefined
      : `Can't find version ${version} of '${reference}' in the document bundle`;
  }
  return matches.length > 1 ? `Found ${matches.length} matches for '${reference}' in the document bundle` : undefined;
}
