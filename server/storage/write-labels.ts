import type { Meta, Resource } from '@medplum/fhirtypes';
import { conflict } from '../core/outcome';
import { extractIndexValues } from '../search/extract-index-values';
import { assertValidResource } from '../validation/validate-resource';
import type { ResourceVersion } from './resource-row';
import { type Db, runSql } from './sql';
import { knownProfile } from './stored-profiles';
import { RELABEL_HISTORY, writeStatements } from './write-statements';

/**
 * The write path of `$meta-add` and `$meta-delete`, which R4 makes special: "executing
 * this operation does not cause a new version of the resource to be created. The meta is
 * updated directly", on the current version or on a historical one
 * (https://hl7.org/fhir/R4/resource-operation-meta-add.html). The version keeps its
 * versionId and lastUpdated; its content gets the new labels, validated as any write is
 * (a profile added is a claim the content is checked against), and for the current
 * version the type's search columns are extracted again (`_tag`, `_security`, `_profile`).
 * No history row is written, so Subscriptions (notified of new versions) are not told.
 *
 * Compare-and-set on the whole content: the statement changes the version only if it is
 * still what `change` was given, so two relabelings at once both land (the loser reads
 * again) and a write that superseded the version meanwhile makes it a historical one.
 */
export interface Relabeling {
  resourceType: string;
  id: string;
  /** A historical version; the current one when absent. */
  versionId?: number;
  /** The labels wanted, from the version's meta as it is; undefined when they are already there. */
  change: (meta: Meta) => Meta | undefined;
  /** Reads the version (current or `versionId`) through the read path: 404 / 410 as a read. */
  read: () => Promise<ResourceVersion>;
}

export interface RelabelResult {
  version: ResourceVersion;
  /** false when the labels asked for were already there: nothing was written. */
  changed: boolean;
}

const MAX_ATTEMPTS = 20;

export async function writeLabels(db: Db, relabeling: Relabeling): Promise<RelabelResult> {
  const { resourceType, id } = relabeling;
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const version = await relabeling.read();
    const resource = version.resource as Resource;
    const meta = relabeling.change(resource.meta ?? {});
    if (meta === undefined) return { version, changed: false };
    const relabeled = { ...resource, meta: { ...meta, versionId: String(version.versionId), lastUpdated: resource.meta?.lastUpdated } } as Resource;
    assertValidResource(relabeled, knownProfile);
    const before = JSON.stringify(resource);
    const after = JSON.stringify(relabeled);
    // The type's row holds the current version; a superseded one is its history row (NULL there while current).
    const sql = writeStatements(resourceType);
    const values = extractIndexValues(relabeled);
    const columns = sql.columns.map((c) => values[c] ?? null);
    let written = (await runSql(db, `relabel:${sql.key}`, sql.relabel, [id, version.versionId, after, before, ...columns])).rowCount === 1;
    // Asked for the current version, one that was superseded meanwhile is read again, not relabeled as history.
    if (!written && relabeling.versionId !== undefined) {
      written = (await runSql(db, 'relabel:history', RELABEL_HISTORY, [resourceType, id, version.versionId, after, before])).rowCount === 1;
    }
    if (written) return { version: { ...version, resource: relabeled }, changed: true };
  }
  throw conflict(`${resourceType}/${id} changed ${MAX_ATTEMPTS} times while its labels were being changed; try again`);
}
