import type { Meta, Resource } from '@medplum/fhirtypes';
import type { PatchDocument } from '../storage/patch-document';
import { forbidden, isOperationOutcomeError } from '../core/outcome';
import { matchesInMemory } from '../search/match-filter-in-memory';
import { patientRecordTypes } from '../search/patient-record';
import type { SearchFilter, SearchRequest } from '../search/search-request';
import type { EverythingEntry, EverythingQuery } from '../storage/everything-reads';
import type { HistoryPage, HistoryQuery } from '../storage/history';
import type { IncludeResult } from '../storage/include-resolution';
import type { ConditionalCreateResult, ReadRestriction, SearchResult } from '../storage/repository';
import type { ResourceStore } from '../storage/resource-store';
import type { LabelsInUse } from '../storage/search-reads';
import type { ResourceVersion } from '../storage/resource-row';
import type { WriteResult } from '../storage/write-resource';
import type { RelabelResult } from '../storage/write-labels';
import type { Grant, ScopeAccess } from './scope-access';
import { confine, confineAll, LETTER_NAMES, requireGrant } from './search-confinement';
import type { Permission } from './scopes';

type Allowed = Extract<Grant, { allowed: true }>;

/**
 * The read and write paths confined to what one principal's scopes allow. Every FHIR
 * interaction, transaction entry and operation of a request with a token goes through
 * this (http/fhir-router.ts hands it to the handlers instead of the Repository):
 *  - searches and counts get the access filter (patient compartment, scope queries; search-confinement.ts)
 *    added in SQL, and so do chains and `_has` on the types they reach, so totals,
 *    `_summary=count` and paging only ever see permitted resources;
 *  - `_include` / `_revinclude` read through the same filters at every step;
 *  - reads, vreads and histories check the resource against the filter (one query);
 *  - writes run in a transaction that checks the resource before and after the change
 *    and rolls back when either is out of reach.
 * Unrestricted grants (a `system/*.rs` token, a `user/` scope without a query) add no
 * query at all.
 */
export class GuardedStore implements ResourceStore {
  constructor(
    private readonly inner: ResourceStore,
    private readonly access: ScopeAccess
  ) {}

  unconfined(): ResourceStore {
    return this.inner.unconfined();
  }

  // ---- reads -----------------------------------------------------------------

  async read(resourceType: string, id: string): Promise<ResourceVersion> {
    const grant = this.need(resourceType, 'r');
    const version = await this.inner.read(resourceType, id);
    await this.ensureVisible(this.inner, resourceType, id, grant, 'r', version.resource);
    return version;
  }

  async vread(resourceType: string, id: string, versionId: number): Promise<ResourceVersion> {
    const grant = this.need(resourceType, 'r');
    const version = await this.inner.vread(resourceType, id, versionId);
    // The version asked for must be within reach (a resource moved into the compartment later does not bring its past).
    await this.ensureVisible(this.inner, resourceType, id, grant, 'r', version.resource);
    return version;
  }

  async history(query: HistoryQuery): Promise<HistoryPage> {
    if (query.resourceType && query.id) {
      const grant = this.need(query.resourceType, 'r');
      await this.ensureVisible(this.inner, query.resourceType, query.id, grant, 'r');
      return this.inner.history(query);
    }
    if (query.resourceType) this.need(query.resourceType, 'r');
    const page = await this.inner.history(query);
    // Each version on its own: a resource that moved between compartments shows each side only its own versions.
    const visible = await this.visibleEach(page.versions.map((v) => ({ resourceType: v.resourceType, id: v.id, content: v.resource })), 'r');
    return { ...page, versions: page.versions.filter((_, i) => visible[i]) };
  }

  async search(request: SearchRequest): Promise<SearchResult> {
    return this.searchAcross([request]);
  }

  async searchAcross(requests: readonly SearchRequest[]): Promise<SearchResult> {
    return this.inner.searchAcross(confineAll(this.access, requests));
  }

  async matchingIds(request: SearchRequest): Promise<string[]> {
    return this.inner.matchingIds(confine(this.access, request));
  }

  async count(request: SearchRequest): Promise<number> {
    return this.countAcrossTypes([request]);
  }

  async countAcrossTypes(requests: readonly SearchRequest[]): Promise<number> {
    return this.inner.countAcrossTypes(confineAll(this.access, requests));
  }

  async labelsInUse(requests: readonly SearchRequest[]): Promise<LabelsInUse> {
    return this.inner.labelsInUse(confineAll(this.access, requests));
  }

  async include(request: SearchRequest, matches: readonly Resource[], restrict?: ReadRestriction): Promise<IncludeResult> {
    const mine = this.restriction('r');
    const both: ReadRestriction = restrict
      ? (type) => {
          const a = restrict(type);
          const b = mine(type);
          return a === undefined || b === undefined ? undefined : [...a, ...b];
        }
      : mine;
    return this.inner.include(request, matches, both);
  }

  async everything(query: EverythingQuery): Promise<EverythingEntry[]> {
    const grant = this.need('Patient', 'r');
    if (query.patientId) await this.ensureVisible(this.inner, 'Patient', query.patientId, grant, 'r');
    const patientIds = query.patientId === undefined ? await this.fewVisiblePatients(grant) : undefined;
    // Entries the principal may not see are dropped; read on until the page is full, so
    // that a short page still means the end of the record.
    const out: EverythingEntry[] = [];
    let { after, before } = query;
    for (;;) {
      const batch = await this.inner.everything({ ...query, after, before, ...(patientIds ? { patientIds } : {}) });
      const visible = await this.visibleEach(
        batch.map((e) => ({ resourceType: e.resource.resourceType, id: e.resource.id as string, content: e.resource })),
        'r'
      );
      const kept = batch.filter((_, i) => visible[i]);
      // Backward (a previous page), each batch lies before the one read earlier.
      if (before) out.unshift(...kept);
      else out.push(...kept);
      if (batch.length < query.limit || out.length >= query.limit) break;
      if (before) before = batch[0].position;
      else after = batch[batch.length - 1].position;
    }
    return before ? out.slice(-query.limit) : out.slice(0, query.limit);
  }

  /**
   * Type-level `$everything` walks every patient's record and drops what the principal may
   * not see: for a patient's token (their own record, their dependants') that read every
   * record of the database to return one. When the grant confines Patients to at most
   * FEW_PATIENTS, the walk visits only those.
   */
  private async fewVisiblePatients(grant: Allowed): Promise<string[] | undefined> {
    if (!grant.filter) return undefined;
    const ids = await this.inner.matchingIds(liveRequest('Patient', [grant.filter], FEW_PATIENTS + 1));
    return ids.length <= FEW_PATIENTS ? ids : undefined;
  }

  /** Counted only when the principal sees every resource of the types counted: otherwise the count would tell what it hides. */
  async everythingTotal(query: EverythingQuery & { patientId: string }): Promise<number | undefined> {
    const types = [...(query.types ?? patientRecordTypes())].filter((type) => patientRecordTypes().includes(type));
    const grants = types.map((type) => this.access.grant(type, 'r'));
    if (grants.some((grant) => grant.allowed && grant.filter)) return undefined;
    return this.inner.everythingTotal({ ...query, types: new Set(types.filter((_, i) => grants[i].allowed)) });
  }

  async matchCriteria(resourceType: string, criteria: string, lock: boolean): Promise<string[]> {
    const grant = this.need(resourceType, 's');
    const ids = await this.inner.matchCriteria(resourceType, criteria, lock);
    if (grant.filter && ids.length > 0) {
      const visible = await this.visibleIds(this.inner, resourceType, ids, grant);
      if (ids.some((id) => !visible.has(id))) {
        throw forbidden(`The criteria ${resourceType}?${criteria} match a resource outside the access this token grants`);
      }
    }
    return ids;
  }

  // ---- writes ----------------------------------------------------------------

  async create(resource: Resource, ifNoneExist?: string, assignedId?: string): Promise<ConditionalCreateResult> {
    const type = resource.resourceType;
    const grant = this.need(type, 'c');
    if (!grant.filter && ifNoneExist === undefined) return this.inner.create(resource, ifNoneExist, assignedId);
    return this.inner.inTransaction(async (tx) => {
      const result = await tx.create(resource, ifNoneExist, assignedId);
      const id = result.version.id;
      if (result.matched) {
        await this.ensureVisible(tx, type, id, this.need(type, 's'), 's', result.version.resource);
      } else {
        await this.ensureVisible(tx, type, id, grant, 'c', result.version.resource);
      }
      return result;
    });
  }

  async createMany(resources: readonly (Resource & { id: string })[]): Promise<WriteResult[]> {
    const byType = new Map<string, string[]>();
    for (const r of resources) byType.set(r.resourceType, [...(byType.get(r.resourceType) ?? []), r.id]);
    const grants = [...byType.keys()].map((type) => [type, this.need(type, 'c')] as const);
    if (grants.every(([, g]) => !g.filter)) return this.inner.createMany(resources);
    return this.inner.inTransaction(async (tx) => {
      const results = await tx.createMany(resources);
      for (const result of results) {
        const { resourceType, id, resource } = result.version;
        const grant = this.need(resourceType, 'c');
        await this.ensureVisible(tx, resourceType, id, grant, 'c', resource);
      }
      return results;
    });
  }

  async update(resource: Resource & { id: string }, ifMatch?: number): Promise<WriteResult> {
    const type = resource.resourceType;
    const grant = this.need(type, 'u');
    const create = this.access.grant(type, 'c');
    if (!grant.filter && create.allowed && !create.filter) return this.inner.update(resource, ifMatch);
    return this.inner.inTransaction(async (tx) => {
      const before = await current(tx, type, resource.id);
      if (before) await this.ensureVisible(tx, type, resource.id, grant, 'u', before);
      const result = await tx.update(resource, ifMatch);
      await this.checkWritten(tx, result, grant);
      return result;
    });
  }

  async conditionalUpdate(resource: Resource, criteria: string, ifMatch?: number): Promise<WriteResult> {
    const type = resource.resourceType;
    const grant = this.need(type, 'u');
    return this.inner.inTransaction(async (tx) => {
      await new GuardedStore(tx, this.access).matchCriteria(type, criteria, true);
      const result = await tx.conditionalUpdate(resource, criteria, ifMatch);
      await this.checkWritten(tx, result, grant);
      return result;
    });
  }

  async patch(resourceType: string, id: string, patch: PatchDocument, ifMatch?: number): Promise<WriteResult> {
    const grant = this.need(resourceType, 'u');
    if (!grant.filter) return this.inner.patch(resourceType, id, patch, ifMatch);
    return this.inner.inTransaction(async (tx) => {
      const before = await current(tx, resourceType, id);
      if (before) await this.ensureVisible(tx, resourceType, id, grant, 'u', before);
      const result = await tx.patch(resourceType, id, patch, ifMatch);
      await this.ensureVisible(tx, resourceType, id, grant, 'u', result.version.resource);
      return result;
    });
  }

  async delete(resourceType: string, id: string, ifMatch?: number): Promise<WriteResult> {
    const grant = this.need(resourceType, 'd');
    if (!grant.filter) return this.inner.delete(resourceType, id, ifMatch);
    return this.inner.inTransaction(async (tx) => {
      const before = await current(tx, resourceType, id);
      if (before) await this.ensureVisible(tx, resourceType, id, grant, 'd', before);
      return tx.delete(resourceType, id, ifMatch);
    });
  }

  async conditionalDelete(resourceType: string, criteria: string): Promise<WriteResult | undefined> {
    const grant = this.need(resourceType, 'd');
    return this.inner.inTransaction(async (tx) => {
      const ids = await new GuardedStore(tx, this.access).matchCriteria(resourceType, criteria, true);
      if (grant.filter && ids.length === 1) await this.ensureVisible(tx, resourceType, ids[0], grant, 'd');
      return tx.conditionalDelete(resourceType, criteria);
    });
  }

  /** Labels are part of the content: `u`, with the version within reach before and after. */
  async relabel(resourceType: string, id: string, versionId: number | undefined, change: (meta: Meta) => Meta | undefined): Promise<RelabelResult> {
    const grant = this.need(resourceType, 'u');
    if (!grant.filter) return this.inner.relabel(resourceType, id, versionId, change);
    return this.inner.inTransaction(async (tx) => {
      const before = versionId === undefined ? await tx.read(resourceType, id) : await tx.vread(resourceType, id, versionId);
      await this.ensureVisible(tx, resourceType, id, grant, 'u', before.resource);
      const result = await tx.relabel(resourceType, id, versionId, change);
      await this.ensureVisible(tx, resourceType, id, grant, 'u', result.version.resource);
      return result;
    });
  }

  async inTransaction<T>(work: (repo: ResourceStore) => Promise<T>): Promise<T> {
    return this.inner.inTransaction((tx) => work(new GuardedStore(tx, this.access)));
  }

  // ---- rules -----------------------------------------------------------------

  private need(resourceType: string, permission: Permission): Allowed {
    return requireGrant(this.access, resourceType, permission);
  }

  private restriction(permission: Permission): ReadRestriction {
    return (type) => {
      const grant = this.access.grant(type, permission);
      if (!grant.allowed) return undefined;
      return grant.filter ? [grant.filter] : [];
    };
  }

  /** After a create-or-update: a new resource needs `c` as well, and either must end up within reach. */
  private async checkWritten(tx: ResourceStore, result: WriteResult, update: Allowed): Promise<void> {
    const { resourceType, id } = result.version;
    const grant = result.created ? this.need(resourceType, 'c') : update;
    await this.ensureVisible(tx, resourceType, id, grant, result.created ? 'c' : 'u', result.version.resource);
  }

  /**
   * The resource must match the grant's filter: decided from `content` when the filter
   * allows (the compartment, ids: no query), otherwise by the database (current state).
   */
  private async ensureVisible(
    store: ResourceStore,
    resourceType: string,
    id: string,
    grant: Allowed,
    permission: Permission,
    content?: Resource
  ): Promise<void> {
    if (!grant.filter) return;
    const known = content ? matchesInMemory(content, grant.filter) : undefined;
    const visible = known ?? (await this.visibleIds(store, resourceType, [id], grant)).has(id);
    if (!visible) throw outOfReach(resourceType, id, permission);
  }

  /** Which of `ids` (live resources of one type) the grant's filter lets through: one query. */
  private async visibleIds(store: ResourceStore, resourceType: string, ids: string[], grant: Allowed): Promise<Set<string>> {
    if (!grant.filter) return new Set(ids);
    const filters: SearchFilter[] = [{ kind: 'id', not: false, ids }, grant.filter];
    return new Set(await store.matchingIds(liveRequest(resourceType, filters, ids.length)));
  }

  /**
   * For each item (a version or an entry), whether the principal may see it with
   * `permission`: from its content where that decides, otherwise (a deletion, a scope
   * query on other parameters) by the resource's current state, one query per type.
   */
  private async visibleEach(items: readonly { resourceType: string; id: string; content?: Resource }[], permission: Permission): Promise<boolean[]> {
    const decided: (boolean | undefined)[] = items.map((item) => {
      const grant = this.access.grant(item.resourceType, permission);
      if (!grant.allowed) return false;
      if (!grant.filter) return true;
      return item.content ? matchesInMemory(item.content, grant.filter) : undefined;
    });
    const undecided = new Map<string, Set<string>>();
    items.forEach((item, i) => {
      if (decided[i] !== undefined) return;
      const ids = undecided.get(item.resourceType) ?? new Set<string>();
      undecided.set(item.resourceType, ids.add(item.id));
    });
    const current = new Set<string>();
    for (const [type, ids] of undecided) {
      const grant = this.access.grant(type, permission) as Allowed;
      for (const id of await this.visibleIds(this.inner, type, [...ids], grant)) current.add(`${type}/${id}`);
    }
    return items.map((item, i) => decided[i] ?? current.has(`${item.resourceType}/${item.id}`));
  }
}

/** See fewVisiblePatients: a patient's own record and dependants, or a small ward, are far fewer. */
const FEW_PATIENTS = 1000;

function liveRequest(resourceType: string, filters: SearchFilter[], count: number): SearchRequest {
  return { resourceType, filters, sort: [], count, offset: 0, total: 'none', warnings: [] };
}

/** The current content of a live resource, or undefined when there is none (never created, or deleted). */
async function current(store: ResourceStore, resourceType: string, id: string): Promise<Resource | undefined> {
  try {
    return (await store.read(resourceType, id)).resource;
  } catch (err) {
    if (isOperationOutcomeError(err) && (err.status === 404 || err.status === 410)) return undefined;
    throw err;
  }
}

function outOfReach(resourceType: string, id: string, permission: Permission): Error {
  return forbidden(`${resourceType}/${id} is outside what the access token grants for ${LETTER_NAMES[permission]} (patient compartment or scope filter)`);
}
