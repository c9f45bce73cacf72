import type { Coding, Meta, Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { badRequest, gone, notFound, preconditionFailed, unprocessable } from '../core/outcome';
import { newId } from '../core/ids';
import { applySearchFilters } from '../search/build-search-sql';
import { reachesOtherResources, type SearchFilter, type SearchRequest } from '../search/search-request';
import { type IncludeResult, resolveIncludes } from './include-resolution';
import { resolveChainFilter } from './chain-resolution';
import { resolveTokenSets } from './token-set-resolution';
import { findMatches, lockAndMatch } from './conditional-match';
import { PG_DEADLOCK, PG_SERIALIZATION_FAILURE, PG_UNIQUE_VIOLATION, pgErrorCode } from './database';
import { type HistoryPage, type HistoryQuery, readHistory } from './history';
import { countMatches, estimateMatches, findResources, labelsInUse, type LabelsInUse, readPage, type SearchPage } from './search-reads';
import { countEverything, type EverythingEntry, type EverythingQuery, readEverything } from './everything-reads';
import { type ResourceRow, type ResourceVersion, toVersion } from './resource-row';
import { StaleBaseError, type WriteCompanion, type WriteOperation, type WriteResult, writeResource } from './write-resource';
import { type Db, runSql } from './sql';
import { writeStatements } from './write-statements';
import { writeNewResources } from './write-new-resources';
import { type RelabelResult, writeLabels } from './write-labels';
import { withCurrentContent } from './history-content';
import { refreshRegistriesAfterCommit } from './registries-after-commit';
import type { ResourceStore } from './resource-store';
import { applyPatchDocument, type PatchDocument } from './patch-document';

/**
 * Extra filters that confine reads of a type (access rules), [] for none, or undefined
 * when nothing of that type may be read. Storage applies it without knowing why.
 */
export type ReadRestriction = (resourceType: string) => SearchFilter[] | undefined;

export interface RepositoryOptions {
  searchDefaultCount: number;
  searchMaxCount: number;
}

export interface SearchResult extends SearchPage {
  /** Present when the request asked for a total. */
  total?: number;
}

export interface ConditionalCreateResult extends WriteResult {
  /** true when If-None-Exist matched an existing resource and nothing was written. */
  matched: boolean;
}

const RETRYABLE = new Set([PG_UNIQUE_VIOLATION, PG_SERIALIZATION_FAILURE, PG_DEADLOCK]);

/**
 * The one read path and the one write path. Handlers of interactions, operations and
 * jobs use only this; nothing else touches the resource tables.
 */
export class Repository implements ResourceStore {
  constructor(
    private readonly knex: Knex,
    private readonly options: RepositoryOptions,
    /**
     * Rides on every resource write of create, update, patch and delete (and their
     * conditional forms), in the write's own statement: see WriteCompanion.
     */
    private readonly companion?: WriteCompanion
  ) {}

  // ---- write path ----------------------------------------------------------

  /**
   * `assignedId`: the id a transaction gave this entry beforehand, so that other entries
   * could already refer to it. Otherwise the server assigns one.
   */
  async create(resource: Resource, ifNoneExist?: string, assignedId?: string): Promise<ConditionalCreateResult> {
    if (ifNoneExist === undefined) {
      return this.insertNew(this.knex, resource, assignedId);
    }
    return this.transaction(async (tx) => {
      const matches = await lockAndMatch(tx, resource.resourceType, ifNoneExist, this.limits());
      if (matches.length > 1) {
        throw preconditionFailed(`If-None-Exist criteria "${ifNoneExist}" match more than one resource`);
      }
      if (matches.length === 1) {
        const version = await this.readVersion(tx, resource.resourceType, matches[0].id);
        return { version, created: false, noop: true, matched: true };
      }
      return this.insertNew(tx, resource, assignedId);
    });
  }

  private async insertNew(db: Db, resource: Resource, assignedId?: string): Promise<ConditionalCreateResult> {
    const id = assignedId ?? newId();
    const result = await writeResource(
      db,
      { method: 'POST', resourceType: resource.resourceType, id, resource: { ...resource, id } as Resource },
      this.companion
    );
    return { ...result, matched: false };
  }

  /**
   * Creates resources whose ids a transaction assigned, many per statement
   * (write-new-resources.ts). For plain creates only: no conditions, no existing ids.
   */
  async createMany(resources: readonly (Resource & { id: string })[]): Promise<WriteResult[]> {
    if ((this.knex as Knex.Transaction).isTransaction) return writeNewResources(this.knex, resources);
    return this.knex.transaction((tx) => writeNewResources(tx, resources));
  }

  /** Update, or create with the client's id when absent (update-as-create). */
  async update(resource: Resource & { id: string }, ifMatch?: number): Promise<WriteResult> {
    return writeResource(this.knex, { method: 'PUT', resourceType: resource.resourceType, id: resource.id, resource, ifMatch }, this.companion);
  }

  async conditionalUpdate(resource: Resource, criteria: string, ifMatch?: number): Promise<WriteResult> {
    return this.transaction(async (tx) => {
      const matches = await lockAndMatch(tx, resource.resourceType, criteria, this.limits());
      if (matches.length > 1) {
        throw preconditionFailed(`Conditional update criteria "${criteria}" match more than one resource`);
      }
      const target = matches[0]?.id ?? resource.id ?? newId();
      if (resource.id && resource.id !== target) {
        throw badRequest(`Resource id ${resource.id} does not match ${resource.resourceType}/${target} found by the criteria`, `${resource.resourceType}.id`);
      }
      return writeResource(
        tx,
        { method: 'PUT', resourceType: resource.resourceType, id: target, resource: { ...resource, id: target } as Resource, ifMatch },
        this.companion
      );
    });
  }

  async patch(resourceType: string, id: string, patch: PatchDocument, ifMatch?: number): Promise<WriteResult> {
    for (;;) {
      const current = await this.read(resourceType, id);
      if (ifMatch !== undefined && current.versionId !== ifMatch) {
        throw preconditionFailed(`Version ${ifMatch} of ${resourceType}/${id} is not current (current is ${current.versionId})`);
      }
      const patched = applyPatchDocument(current.resource as Resource, patch);
      if (patched.resourceType !== resourceType || patched.id !== id) {
        throw unprocessable('A patch must not change resourceType or id');
      }
      try {
        return await writeResource(
          this.knex,
          { method: 'PATCH', resourceType, id, resource: patched, ifMatch, basedOnVersion: current.versionId },
          this.companion
        );
      } catch (err) {
        // Someone wrote in between: apply the patch again to what is current now.
        if (!(err instanceof StaleBaseError)) {
          throw err;
        }
      }
    }
  }

  async delete(resourceType: string, id: string, ifMatch?: number): Promise<WriteResult> {
    return writeResource(this.knex, { method: 'DELETE', resourceType, id, ifMatch }, this.companion);
  }

  async conditionalDelete(resourceType: string, criteria: string): Promise<WriteResult | undefined> {
    return this.transaction(async (tx) => {
      const matches = await lockAndMatch(tx, resourceType, criteria, this.limits());
      if (matches.length > 1) {
        throw preconditionFailed(`Conditional delete criteria "${criteria}" match more than one resource`);
      }
      if (matches.length === 0) {
        return undefined;
      }
      return writeResource(tx, { method: 'DELETE', resourceType, id: matches[0].id }, this.companion);
    });
  }

  async relabel(resourceType: string, id: string, versionId: number | undefined, change: (meta: Meta) => Meta | undefined): Promise<RelabelResult> {
    const read = (): Promise<ResourceVersion> => (versionId === undefined ? this.read(resourceType, id) : this.vread(resourceType, id, versionId));
    return writeLabels(this.knex, { resourceType, id, versionId, change, read });
  }

  /** For jobs that group their own bookkeeping and a resource write in one database transaction. */
  async writeInTransaction(tx: Knex.Transaction, op: WriteOperation): Promise<WriteResult> {
    return writeResource(tx, op);
  }

  /**
   * Runs `work` in one database transaction, with a repository whose every read and
   * write happens inside it (nested conditional writes become savepoints). The whole
   * of `work` runs again when PostgreSQL aborts it to resolve a deadlock.
   */
  unconfined(): Repository {
    return this;
  }

  async inTransaction<T>(work: (repo: Repository) => Promise<T>): Promise<T> {
    return this.transaction((tx) => work(new Repository(tx, this.options, this.companion)));
  }

  /**
   * The ids of at most two resources matching conditional `criteria` (none, one, or
   * "several"). With `lock`, inside a transaction, concurrent evaluations of the same
   * criteria wait for this transaction to end, as conditional create and update do.
   */
  async matchCriteria(resourceType: string, criteria: string, lock: boolean): Promise<string[]> {
    const rows = lock
      ? await lockAndMatch(this.knex as Knex.Transaction, resourceType, criteria, this.limits())
      : await findMatches(this.knex, resourceType, criteria, this.limits());
    return rows.map((r) => r.id);
  }

  // ---- read path -----------------------------------------------------------

  async read(resourceType: string, id: string): Promise<ResourceVersion> {
    return this.readVersion(this.knex, resourceType, id);
  }

  async vread(resourceType: string, id: string, versionId: number): Promise<ResourceVersion> {
    const row: ResourceRow | undefined = await this.knex('resource_history')
      .select('resource_type', 'id', 'version_id', 'last_updated', 'deleted', 'method', 'content')
      .where({ resource_type: resourceType, id, version_id: versionId })
      .first();
    if (!row) {
      throw notFound(`${resourceType}/${id}/_history/${versionId} not found`);
    }
    if (row.deleted) {
      throw gone(`${resourceType}/${id}/_history/${versionId} is a deletion`);
    }
    await withCurrentContent(this.knex, [row]);
    return toVersion(resourceType, row);
  }

  async history(query: HistoryQuery): Promise<HistoryPage> {
    return readHistory(this.knex, query);
  }

  async search(request: SearchRequest): Promise<SearchResult> {
    return this.searchAcross([request]);
  }

  /**
   * One search over several types (system-level search with `_type`): one request per
   * type with the same paging and result parameters, read as one page.
   */
  async searchAcross(requests: readonly SearchRequest[]): Promise<SearchResult> {
    const resolved = await Promise.all(requests.map((r) => this.resolveChains(r)));
    const page = await readPage(this.knex, resolved);
    const mode = resolved[0].total;
    if (mode === 'none') return page;
    const count = mode === 'estimate' ? estimateMatches : countMatches;
    return { ...page, total: await this.sumOver(resolved, (r) => count(this.knex, r)) };
  }

  /** Ids of (at most `request.count`) live resources matching the filters, nothing else read: for access checks. */
  async matchingIds(request: SearchRequest): Promise<string[]> {
    const resolved = await this.resolveChains(request);
    const query = this.knex(request.resourceType).select('id');
    applySearchFilters(query, resolved);
    const rows: { id: string }[] = await query.limit(request.count);
    return rows.map((r) => r.id);
  }

  async count(request: SearchRequest): Promise<number> {
    return this.countAcrossTypes([request]);
  }

  async countAcrossTypes(requests: readonly SearchRequest[]): Promise<number> {
    const resolved = await Promise.all(requests.map((r) => this.resolveChains(r)));
    return this.sumOver(resolved, (r) => countMatches(this.knex, r));
  }

  /** The profiles, tags and security labels in use on what the searches match, merged (R4 `$meta` at type and system level). */
  async labelsInUse(requests: readonly SearchRequest[]): Promise<LabelsInUse> {
    const resolved = await Promise.all(requests.map((r) => this.resolveChains(r)));
    const each = await Promise.all(resolved.map((r) => labelsInUse(this.knex, r)));
    const key = (c: Coding): string => `${c.system ?? ''}|${c.code ?? ''}`;
    const merge = (lists: Coding[][]): Coding[] => [...new Map(lists.flat().map((c) => [key(c), c])).values()].sort((a, b) => key(a).localeCompare(key(b)));
    return {
      profiles: [...new Set(each.flatMap((l) => l.profiles))].sort(),
      tags: merge(each.map((l) => l.tags)),
      security: merge(each.map((l) => l.security)),
    };
  }

  private async sumOver(requests: readonly SearchRequest[], count: (r: SearchRequest) => Promise<number>): Promise<number> {
    const counts = await Promise.all(requests.map(count));
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * `_include` / `_revinclude` of `request` for `matches` (one page of its results): at
   * most `searchMaxCount` resources, read through this same read path.
   */
  async include(request: SearchRequest, matches: readonly Resource[], restrict?: ReadRestriction): Promise<IncludeResult> {
    // Each read of the walk is confined, so that `:iterate` never steps through a resource the caller may not see.
    const read = async (type: string, filter: SearchFilter, limit: number): Promise<Resource[]> => {
      const extra = restrict ? restrict(type) : [];
      if (extra === undefined) return [];
      return findResources(this.knex, liveRequest(type, [filter, ...extra], limit), 0, limit);
    };
    return resolveIncludes(
      request,
      matches,
      {
        readByIds: (type, ids) => read(type, { kind: 'id', not: false, ids }, ids.length),
        readReferring: (type, code, references, limit) => read(type, { kind: 'reference', code, entries: references }, limit),
      },
      this.options.searchMaxCount
    );
  }

  /** `Patient/$everything`: entries of one patient's record (or every patient's) after a position. */
  async everything(query: EverythingQuery): Promise<EverythingEntry[]> {
    return readEverything(this.knex, query);
  }

  async everythingTotal(query: EverythingQuery & { patientId: string }): Promise<number> {
    return countEverything(this.knex, query);
  }

  async isReachable(): Promise<boolean> {
    try {
      await this.knex.raw('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  // ---- internals -----------------------------------------------------------

  /** Chained parameters become reference filters on their targets' ids, found through this read path; named sets of codes become their codes. */
  private async resolveChains(given: SearchRequest): Promise<SearchRequest> {
    // Sets of codes first: chains and `_has` may hold them.
    const request = await resolveTokenSets(this.knex, given);
    if (!request.filters.some(reachesOtherResources)) return request;
    const findIds = async (resourceType: string, filter: SearchFilter, limit: number): Promise<string[]> => {
      const query = this.knex(resourceType).select('id');
      applySearchFilters(query, liveRequest(resourceType, [filter], limit));
      const rows: { id: string }[] = await query.limit(limit);
      return rows.map((r) => r.id);
    };
    const filters = await Promise.all(request.filters.map((f) => resolveChainFilter(request.resourceType, f, findIds)));
    return { ...request, filters };
  }

  private limits(): { defaultCount: number; maxCount: number } {
    return { defaultCount: this.options.searchDefaultCount, maxCount: this.options.searchMaxCount };
  }

  private async readVersion(db: Db, resourceType: string, id: string): Promise<ResourceVersion> {
    const { read } = writeStatements(resourceType);
    const row = (await runSql<ResourceRow>(db, `read:${resourceType}`, read, [id])).rows[0];
    if (!row) {
      throw notFound(`${resourceType}/${id} not found`);
    }
    if (row.deleted) {
      throw gone(`${resourceType}/${id} was deleted`);
    }
    return toVersion(resourceType, row);
  }

  /** Retries the whole transaction when PostgreSQL reports a race it resolved for us. */
  private async transaction<T>(work: (tx: Knex.Transaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      // Companions written by an attempt that rolls back were not written.
      const companionsBefore = this.companion?.written ?? 0;
      try {
        const result = await this.knex.transaction(work);
        // The write committed: a failed reload is caught up by the background refresh, not reported as a failed write.
        if (!(this.knex as Knex.Transaction).isTransaction) await refreshRegistriesAfterCommit(this.knex).catch(() => undefined);
        return result;
      } catch (err) {
        if (this.companion) this.companion.written = companionsBefore;
        if (attempt >= 3 || !RETRYABLE.has(pgErrorCode(err) ?? '')) {
          throw err;
        }
      }
    }
  }
}

/** A search request with nothing but filters, for reads the repository makes itself (includes, chains). */
function liveRequest(resourceType: string, filters: SearchFilter[], count: number): SearchRequest {
  return { resourceType, filters, sort: [], count, offset: 0, total: 'none', warnings: [] };
}

