import type { Resource } from '@medplum/fhirtypes';
import type { SearchRequest } from '../search/search-request';
import type { ResourceStore } from '../storage/resource-store';

/** Rows per search when reading referenced resources of one type by id. */
const IDS_PER_SEARCH = 1000;

/** A reference to a resource that may be stored here: `Type/id`, and the version when it names one. */
export interface LocalReference {
  key: string;
  type: string;
  id: string;
  version?: string;
}

/**
 * Every reference in `node` (a resource, or resources) to a resource that may be stored
 * here: relative, or absolute under this server's base; `#contained` ones are inside
 * already, and another server's are not ours to read. For operations that gather what
 * resources refer to ($document, $summary, Encounter/$everything).
 */
export function localReferences(node: unknown, baseUrl: string, out: LocalReference[] = []): LocalReference[] {
  if (Array.isArray(node)) {
    for (const item of node) localReferences(item, baseUrl, out);
    return out;
  }
  if (node === null || typeof node !== 'object') return out;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (key === 'reference' && typeof value === 'string') {
      const local = value.startsWith(`${baseUrl}/`) ? value.slice(baseUrl.length + 1) : value;
      const match = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?$/.exec(local);
      if (match) out.push({ key: `${match[1]}/${match[2]}`, type: match[1], id: match[2], ...(match[3] ? { version: match[3] } : {}) });
    } else {
      localReferences(value, baseUrl, out);
    }
  }
  return out;
}

/**
 * The resources referred to, through `store`: current ones by type (one search per type
 * and IDS_PER_SEARCH ids), a named version by vread when the current one is not also
 * wanted. What is not there, deleted, or not readable by the caller is left out, as a
 * search leaves it out: its existence is not revealed.
 */
export async function readReferenced(store: ResourceStore, wanted: readonly LocalReference[]): Promise<Resource[]> {
  const byType = new Map<string, Set<string>>();
  const versions = new Map<string, LocalReference>();
  for (const w of wanted) {
    if (w.version !== undefined) versions.set(w.key, w);
    else byType.set(w.type, (byType.get(w.type) ?? new Set()).add(w.id));
  }
  const found: Resource[] = [];
  for (const w of versions.values()) {
    if (byType.get(w.type)?.has(w.id)) continue;
    const version = Number(w.version);
    if (!Number.isInteger(version) || version < 1) continue;
    const read = await store.vread(w.type, w.id, version).catch(() => undefined);
    if (read?.resource && !read.deleted) found.push(read.resource);
  }
  for (const [type, idSet] of byType) {
    const ids = [...idSet];
    for (let at = 0; at < ids.length; at += IDS_PER_SEARCH) {
      const slice = ids.slice(at, at + IDS_PER_SEARCH);
      const request: SearchRequest = { resourceType: type, filters: [{ kind: 'id', not: false, ids: slice }], sort: [], count: slice.length, offset: 0, total: 'none', warnings: [] };
      const result = await store.search(request).catch((err: unknown) => {
        // A type the caller may not read at all is left out like a resource they may not read.
        if ((err as { status?: number }).status === 403) return undefined;
        throw err;
      });
      found.push(...(result?.resources ?? []));
    }
  }
  return found;
}
