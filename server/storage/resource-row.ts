import type { Resource } from '@medplum/fhirtypes';
import { inCanonicalOrder } from './canonical-key-order';

/** A row of a per-type table, or of resource_history. */
export interface ResourceRow {
  resource_type?: string;
  id: string;
  version_id: number;
  last_updated: Date;
  deleted: boolean;
  method?: string;
  content: Resource | null;
}

/** One version of a resource as the read path hands it out. */
export interface ResourceVersion {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: Date;
  deleted: boolean;
  /** The HTTP method that produced this version (history needs it). */
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  resource?: Resource;
}

export function toVersion(resourceType: string, row: ResourceRow): ResourceVersion {
  const content = row.content;
  let ordered: Resource | undefined;
  return {
    resourceType: row.resource_type ?? resourceType,
    id: row.id,
    versionId: row.version_id,
    lastUpdated: row.last_updated,
    deleted: row.deleted,
    method: (row.method as ResourceVersion['method']) ?? (row.deleted ? 'DELETE' : 'PUT'),
    // Ordered when first used: a bundle answered with return=minimal never needs it.
    get resource(): Resource | undefined {
      if (content && !ordered) ordered = inCanonicalOrder(content);
      return ordered;
    },
  };
}

/**
 * The content as stored: the server owns meta.versionId and meta.lastUpdated.
 * `lastUpdated` may come as its ISO text, computed once for the many rows of a statement.
 */
export function withVersionMeta(source: Resource, versionId: number, lastUpdated: Date | string): Resource {
  const instant = typeof lastUpdated === 'string' ? lastUpdated : lastUpdated.toISOString();
  return { ...source, meta: { ...source.meta, versionId: String(versionId), lastUpdated: instant } } as Resource;
}

export function quoteTable(resourceType: string): string {
  // Resource types are checked against the definitions before they get here;
  // quoting keeps the mixed-case table names intact.
  return `"${resourceType}"`;
}
