import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { preconditionFailed } from '../core/outcome';
import { extractIndexValues } from '../search/extract-index-values';
import { indexColumns } from '../search/index-columns';
import { assertValidResource } from '../validation/validate-resource';
import { type ResourceRow, type ResourceVersion, toVersion } from './resource-row';

/**
 * One change to one resource. Every mutation of the server — REST, bundle entries,
 * operations, jobs, the CLI — ends up as a WriteOperation given to writeResource, so
 * validation, versioning, indexing and history cannot be bypassed.
 */
export interface WriteOperation {
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  resourceType: string;
  id: string;
  /** The new content (POST, PUT, PATCH). Its id must equal `id`. */
  resource?: Resource;
  /** If-Match: the version the client believes is current. */
  ifMatch?: number;
}

export interface WriteResult {
  version: ResourceVersion;
  /** true when this write brought the resource into existence (201). */
  created: boolean;
  /** true for a delete of something already deleted or never there: nothing was written. */
  noop: boolean;
}

interface CurrentRow {
  version_id: number;
  last_updated: Date;
  deleted: boolean;
}

function nextTimestamp(previous: Date | undefined): Date {
  const now = new Date();
  // lastUpdated must move forward per resource even if this host's clock lags another's.
  return previous && now.getTime() <= previous.getTime() ? new Date(previous.getTime() + 1) : now;
}

function emptyIndexValues(resourceType: string): Record<string, null> {
  return Object.fromEntries(indexColumns(resourceType).map((c) => [c.name, null]));
}

/** Runs inside the caller's transaction: the row lock taken here lasts until it commits. */
export async function writeResource(tx: Knex.Transaction, op: WriteOperation): Promise<WriteResult> {
  if (op.resource) {
    assertValidResource(op.resource);
  }
  const current: CurrentRow | undefined = await tx(op.resourceType)
    .select('version_id', 'last_updated', 'deleted')
    .where('id', op.id)
    .forUpdate()
    .first();

  if (op.ifMatch !== undefined && (!current || current.deleted || current.version_id !== op.ifMatch)) {
    throw preconditionFailed(
      current
        ? `Version ${op.ifMatch} of ${op.resourceType}/${op.id} is not current (current is ${current.version_id})`
        : `${op.resourceType}/${op.id} does not exist`
    );
  }

  const versionId = (current?.version_id ?? 0) + 1;
  const lastUpdated = nextTimestamp(current?.last_updated);

  if (op.method === 'DELETE') {
    if (!current || current.deleted) {
      const existing = current
        ? { id: op.id, version_id: current.version_id, last_updated: current.last_updated, deleted: true, content: null }
        : { id: op.id, version_id: 0, last_updated: lastUpdated, deleted: true, content: null };
      return { version: toVersion(op.resourceType, { ...existing, method: 'DELETE' }), created: false, noop: true };
    }
    const row: ResourceRow = { id: op.id, version_id: versionId, last_updated: lastUpdated, deleted: true, content: null };
    await tx(op.resourceType)
      .where('id', op.id)
      .update({ ...row, ...emptyIndexValues(op.resourceType) });
    await insertHistory(tx, op, row, null);
    return { version: toVersion(op.resourceType, { ...row, method: 'DELETE' }), created: false, noop: false };
  }

  const source = op.resource as Resource;
  const content = {
    ...source,
    meta: { ...source.meta, versionId: String(versionId), lastUpdated: lastUpdated.toISOString() },
  } as Resource;
  const row = { id: op.id, version_id: versionId, last_updated: lastUpdated, deleted: false };
  const json = JSON.stringify(content);
  const stored = {
    ...row,
    content: json,
    ...emptyIndexValues(op.resourceType),
    ...extractIndexValues(content),
  };
  if (current) {
    await tx(op.resourceType).where('id', op.id).update(stored);
  } else {
    // A concurrent creator of the same id makes this fail with a unique violation,
    // which the repository retries as an update.
    await tx(op.resourceType).insert(stored);
  }
  const full: ResourceRow = { ...row, content, method: op.method };
  await insertHistory(tx, op, full, json);
  return {
    version: toVersion(op.resourceType, full),
    created: !current || current.deleted,
    noop: false,
  };
}

async function insertHistory(
  tx: Knex.Transaction,
  op: WriteOperation,
  row: ResourceRow,
  json: string | null
): Promise<void> {
  await tx('resource_history').insert({
    resource_type: op.resourceType,
    id: row.id,
    version_id: row.version_id,
    last_updated: row.last_updated,
    deleted: row.deleted,
    method: op.method,
    content: json,
  });
}
