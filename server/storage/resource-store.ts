import type { Meta, Resource } from '@medplum/fhirtypes';
import type { LabelsInUse } from './search-reads';
import type { PatchDocument } from './patch-document';
import type { SearchRequest } from '../search/search-request';
import type { EverythingEntry, EverythingQuery } from './everything-reads';
import type { HistoryPage, HistoryQuery } from './history';
import type { IncludeResult } from './include-resolution';
import type { ConditionalCreateResult, ReadRestriction, SearchResult } from './repository';
import type { ResourceVersion } from './resource-row';
import type { WriteResult } from './write-resource';
import type { RelabelResult } from './write-labels';

/**
 * The one read path and the one write path as interaction handlers see them: the
 * Repository itself (no principal: jobs, development without a token), or the same
 * interface confined to what a principal may do (access/guarded-store.ts).
 */
export interface ResourceStore {
  create(resource: Resource, ifNoneExist?: string, assignedId?: string): Promise<ConditionalCreateResult>;
  createMany(resources: readonly (Resource & { id: string })[]): Promise<WriteResult[]>;
  update(resource: Resource & { id: string }, ifMatch?: number): Promise<WriteResult>;
  conditionalUpdate(resource: Resource, criteria: string, ifMatch?: number): Promise<WriteResult>;
  patch(resourceType: string, id: string, patch: PatchDocument, ifMatch?: number): Promise<WriteResult>;
  delete(resourceType: string, id: string, ifMatch?: number): Promise<WriteResult>;
  conditionalDelete(resourceType: string, criteria: string): Promise<WriteResult | undefined>;
  /** `$meta-add` / `$meta-delete`: the labels of one version changed in place, no new version (write-labels.ts). */
  relabel(resourceType: string, id: string, versionId: number | undefined, change: (meta: Meta) => Meta | undefined): Promise<RelabelResult>;
  inTransaction<T>(work: (repo: ResourceStore) => Promise<T>): Promise<T>;
  matchCriteria(resourceType: string, criteria: string, lock: boolean): Promise<string[]>;
  read(resourceType: string, id: string): Promise<ResourceVersion>;
  vread(resourceType: string, id: string, versionId: number): Promise<ResourceVersion>;
  history(query: HistoryQuery): Promise<HistoryPage>;
  search(request: SearchRequest): Promise<SearchResult>;
  searchAcross(requests: readonly SearchRequest[]): Promise<SearchResult>;
  count(request: SearchRequest): Promise<number>;
  matchingIds(request: SearchRequest): Promise<string[]>;
  countAcrossTypes(requests: readonly SearchRequest[]): Promise<number>;
  labelsInUse(requests: readonly SearchRequest[]): Promise<LabelsInUse>;
  include(request: SearchRequest, matches: readonly Resource[], restrict?: ReadRestriction): Promise<IncludeResult>;
  everything(query: EverythingQuery): Promise<EverythingEntry[]>;
  /** `Bundle.total` of one patient's `$everything` (its `match` entries); undefined where this store cannot count what the caller may see. */
  everythingTotal(query: EverythingQuery & { patientId: string }): Promise<number | undefined>;
  /**
   * The same store, bound to the same transaction, without a principal's confinement:
   * for the few operations whose own rules decide who may do what (break-the-glass,
   * transfer). Everything still goes through the one read and write path.
   */
  unconfined(): ResourceStore;
}
