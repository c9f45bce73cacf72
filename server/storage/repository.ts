import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { applyPatch, type Operation } from 'fast-json-patch';
import { badRequest, gone, notFound, preconditionFailed, unprocessable } from '../core/outcome';
import { newId } from '../core/ids';
import { applySearch, applySearchFilters, searchSortKeys } from '../search/build-search-sql';
import { orderByTerm, type PageCursor, type SortKey } from '../search/page-cursor';
import type { SearchFilter, SearchRequest } from '../search/search-request';
import { type IncludeResult, resolveIncludes } from './include-resolution';
import { resolveChainFilter } from './chain-resolution';
import { inCanonicalOrder } from './canonical-key-order';
import { lockAndMatch } from './conditional-match';
import { PG_DEADLOCK, PG_SERIALIZATION_FAILURE, PG_UNIQUE_VIOLATION, pgErrorCode } from './database';
import { type HistoryPage, type HistoryQuery, readHistory } from './history';
import { type ResourceRow, type ResourceVersion, toVersion } from './resource-row';
import { StaleBaseError, type WriteOperation, type WriteResult, writeResource } from './write-resource';
import { type Db, runSql } from './sql';
import { writeStatements } from './write-statements';

export interface RepositoryOptions {
  searchDefaultCount: number;
  searchMaxCount: number;
}

export interface SearchResult {
  resources: Resource[];
  /** Present when the request asked for a total. */
  total?: number;
  /** true when more matches exist after this page. */
  hasMore: boolean;
  /** Where the next page starts (when `hasMore`). */
  next?: PageCursor;
  /** Where the previous page ends (when this is not the first page). */
  previous?: PageCursor;
}

/** A matched resource with its sort key values as text (the id and, across types, the type last). */
interface KeyedRow {
  resource: Resource;
  keys: (string | null)[];
}

/** How many candidates per wanted row `_has` probes before it collects instead. */
const HAS_PROBE_WINDOW = 4;

function keyedRows(rows: Record<string, unknown>[], keyCount: number): KeyedRow[] {
  return rows.map((row) => ({
    resource: inCanonicalOrder(row.content as Resource),
    keys: Array.from({ length: keyCount }, (_, i) => row[`__k${i}`] as string | null),
  }));
}

/** `_total=estimate` counts exactly when PostgreSQL expects at most this many matches. */
const EXACT_COUNT_BELOW = 10000;

export interface ConditionalCreateResult extends WriteResult {
  /** true when If-None-Exist matched an existing resource and nothing was written. */
  matched: boolean;
}

const RETRYABLE = new Set([PG_UNIQUE_VIOLATION, PG_SERIALIZATION_FAILURE, PG_DEADLOCK]);

/**
 * The one read path and the one write path. Handlers of interactions, operations and
 * jobs use only this; nothing else touches the resource tables.
 */
export class Repository {
  constructor(
    private readonly knex: Knex,
    private readonly options: RepositoryOptions
  ) {}

  // ---- write path ----------------------------------------------------------

  async create(resource: Resource, ifNoneExist?: string): Promise<ConditionalCreateResult> {
    if (ifNoneExist === undefined) {
      return this.insertNew(this.knex, resource);
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
      return this.insertNew(tx, resource);
    });
  }

  private async insertNew(db: Db, resource: Resource): Promise<ConditionalCreateResult> {
    const id = newId();
    const result = await writeResource(db, {
      method: 'POST',
      resourceType: resource.resourceType,
      id,
      resource: { ...resource, id } as Resource,
    });
    return { ...result, matched: false };
  }

  /** Update, or create with the client's id when absent (update-as-create). */
  async update(resource: Resource & { id: string }, ifMatch?: number): Promise<WriteResult> {
    return writeResource(this.knex, {
      method: 'PUT',
      resourceType: resource.resourceType,
      id: resource.id,
      resource,
      ifMatch,
    });
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
      return writeResource(tx, {
        method: 'PUT',
        resourceType: resource.resourceType,
        id: target,
        resource: { ...resource, id: target } as Resource,
        ifMatch,
      });
    });
  }

  async patch(resourceType: string, id: string, patch: Operation[], ifMatch?: number): Promise<WriteResult> {
    for (;;) {
      const current = await this.read(resourceType, id);
      if (ifMatch !== undefined && current.versionId !== ifMatch) {
        throw preconditionFailed(`Version ${ifMatch} of ${resourceType}/${id} is not current (current is ${current.versionId})`);
      }
      const patched = applyJsonPatch(current.resource as Resource, patch);
      if (patched.resourceType !== resourceType || patched.id !== id) {
        throw unprocessable('A patch must not change resourceType or id');
      }
      try {
        return await writeResource(this.knex, {
          method: 'PATCH',
          resourceType,
          id,
          resource: patched,
          ifMatch,
          basedOnVersion: current.versionId,
        });
      } catch (err) {
        // Someone wrote in between: apply the patch again to what is current now.
        if (!(err instanceof StaleBaseError)) {
          throw err;
        }
      }
    }
  }

  async delete(resourceType: string, id: string, ifMatch?: number): Promise<WriteResult> {
    return writeResource(this.knex, { method: 'DELETE', resourceType, id, ifMatch });
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
      return writeResource(tx, { method: 'DELETE', resourceType, id: matches[0].id });
    });
  }

  /** For bundles and operations that group several writes in one database transaction. */
  async writeInTransaction(tx: Knex.Transaction, op: WriteOperation): Promise<WriteResult> {
    return writeResource(tx, op);
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
   * type with the same paging, merged in one statement in the requests' shared order,
   * then by resource type, so that a cursor names one position across all of them.
   */
  async searchAcross(requests: readonly SearchRequest[]): Promise<SearchResult> {
    const resolved = await Promise.all(requests.map((r) => this.resolveChains(r)));
    const [request] = resolved;
    const rows =
      resolved.length === 1
        ? await this.findWithKeys(request, request.offset, request.count + 1)
        : await this.findAcross(resolved, request.offset, request.count + 1);
    const more = rows.length > request.count;
    const page = rows.slice(0, request.count);
    const backwards = request.cursor?.direction === 'previous';
    // A previous page was read in reversed order: `more` then means "more before it".
    if (backwards) page.reverse();
    const first = page[0];
    const last = page[page.length - 1];
    const hasMore = backwards ? page.length > 0 : more;
    const hasPrevious = backwards ? more : (request.cursor !== undefined || request.offset > 0) && page.length > 0;
    let total: number | undefined;
    if (request.total === 'accurate') {
      total = await this.countAcross(resolved, (r) => this.countResolved(r));
    } else if (request.total === 'estimate') {
      total = await this.countAcross(resolved, (r) => this.estimateResolved(r));
    }
    return {
      resources: page.map((r) => r.resource),
      total,
      hasMore,
      next: hasMore && last ? { direction: 'next', values: last.keys } : undefined,
      previous: hasPrevious && first ? { direction: 'previous', values: first.keys } : undefined,
    };
  }

  async count(request: SearchRequest): Promise<number> {
    return this.countResolved(await this.resolveChains(request));
  }

  async countAcrossTypes(requests: readonly SearchRequest[]): Promise<number> {
    const resolved = await Promise.all(requests.map((r) => this.resolveChains(r)));
    return this.countAcross(resolved, (r) => this.countResolved(r));
  }

  private async countAcross(requests: readonly SearchRequest[], count: (r: SearchRequest) => Promise<number>): Promise<number> {
    const counts = await Promise.all(requests.map(count));
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * `_total=estimate`: PostgreSQL's row estimate for the filters when it is large (a
   * count would read every match), an exact count when it is small enough to be cheap.
   */
  private async estimateResolved(request: SearchRequest): Promise<number> {
    const query = this.knex(request.resourceType).select(this.knex.raw('1'));
    applySearchFilters(query, request);
    // The builder as a binding: knex inlines it with its own bindings (and `@\\?` escapes).
    const result = await this.knex.raw('EXPLAIN (FORMAT JSON) SELECT * FROM ? AS q', [query]);
    const plan = (result as { rows: { 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }[] }).rows[0]['QUERY PLAN'][0].Plan;
    return plan['Plan Rows'] > EXACT_COUNT_BELOW ? Math.round(plan['Plan Rows']) : this.countResolved(request);
  }

  private async countResolved(request: SearchRequest): Promise<number> {
    const query = this.knex(request.resourceType).count<{ count: number }[]>('* as count');
    applySearchFilters(query, request);
    const [row] = await query;
    return Number(row.count);
  }

  /**
   * `_include` / `_revinclude` of `request` for `matches` (one page of its results): at
   * most `searchMaxCount` resources, read through this same read path.
   */
  async include(request: SearchRequest, matches: readonly Resource[]): Promise<IncludeResult> {
    return resolveIncludes(
      request,
      matches,
      {
        readByIds: (type, ids) => this.find(liveRequest(type, [{ kind: 'id', not: false, ids }], ids.length), 0, ids.length),
        readReferring: (type, code, references, limit) =>
          this.find(liveRequest(type, [{ kind: 'reference', code, entries: references }], limit), 0, limit),
      },
      this.options.searchMaxCount
    );
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

  /** Chained parameters become reference filters on their targets' ids, found through this read path. */
  private async resolveChains(request: SearchRequest): Promise<SearchRequest> {
    if (!request.filters.some((f) => f.kind === 'chain' || f.kind === 'has')) return request;
    const findIds = async (resourceType: string, filter: SearchFilter, limit: number): Promise<string[]> => {
      const query = this.knex(resourceType).select('id');
      applySearchFilters(query, liveRequest(resourceType, [filter], limit));
      const rows: { id: string }[] = await query.limit(limit);
      return rows.map((r) => r.id);
    };
    const filters = await Promise.all(request.filters.map((f) => resolveChainFilter(request.resourceType, f, findIds)));
    return { ...request, filters };
  }

  /** `find`, with each row's sort key values (as text, the id last) for page cursors. */
  private async findWithKeys(request: SearchRequest, offset: number, limit: number): Promise<KeyedRow[]> {
    if (offset === 0 && request.filters.some((f) => f.kind === 'has')) {
      const probed = await this.findByProbingHas(request, limit);
      if (probed) return probed;
    }
    const keys = searchSortKeys(request);
    const query = this.knex(request.resourceType).select('content');
    keys.forEach((key, i) => query.select(this.knex.raw(`(${key.expression})::text AS "__k${i}"`)));
    applySearch(query, request);
    const rows: Record<string, unknown>[] = await query.offset(offset).limit(limit);
    return keyedRows(rows, keys.length);
  }

  /**
   * `_has` as written collects every matching source resource's reference before the
   * first row is returned, so its cost grows with the sources (all body-height
   * Observations for `Patient?_has:Observation:patient:code=8302-2`). When many
   * candidates qualify, walking the candidates in order and probing each is cheaper and
   * does not grow with the data: try that on the first HAS_PROBE_WINDOW × limit
   * candidates; if they hold a full page, that page is exact (it is the first `limit`
   * in order), otherwise undefined and the caller runs the collecting form.
   */
  private async findByProbingHas(request: SearchRequest, limit: number): Promise<KeyedRow[] | undefined> {
    const window = this.knex(request.resourceType).select('*');
    applySearch(window, { ...request, filters: request.filters.filter((f) => f.kind !== 'has') });
    window.limit(limit * HAS_PROBE_WINDOW);
    const alias = 'candidate';
    const probing: SearchRequest = {
      ...request,
      filters: request.filters.filter((f) => f.kind === 'has').map((f) => ({ ...f, probe: true })),
    };
    const keys = searchSortKeys(probing, alias);
    const query = this.knex.select(`${alias}.content`).from(window.as(alias));
    keys.forEach((key, i) => query.select(this.knex.raw(`(${key.expression})::text AS "__k${i}"`)));
    applySearch(query, probing, alias);
    const rows: Record<string, unknown>[] = await query.limit(limit);
    return rows.length === limit ? keyedRows(rows, keys.length) : undefined;
  }

  /** `findWithKeys` for several types at once: each type's first rows, merged by PostgreSQL. */
  private async findAcross(requests: readonly SearchRequest[], offset: number, limit: number): Promise<KeyedRow[]> {
    const typeKey = (type: string): SortKey => ({ expression: `'${type}'::text`, descending: false, nullsFirst: false, notNull: true });
    const outerKeys = [...searchSortKeys(requests[0]), typeKey('')].map((key, i) => ({ ...key, expression: `"__s${i}"` }));
    const branches = requests.map((request) => {
      const keys = [...searchSortKeys(request), typeKey(request.resourceType)];
      const query = this.knex(request.resourceType).select('content');
      keys.forEach((key, i) => query.select(this.knex.raw(`${key.expression} AS "__s${i}", (${key.expression})::text AS "__k${i}"`)));
      applySearch(query, request, undefined, [typeKey(request.resourceType)]);
      return query.limit(offset + limit);
    });
    const reverse = requests[0].cursor?.direction === 'previous';
    const query = this.knex.select('*').from(this.knex.unionAll(branches, true).as('u'));
    for (const key of outerKeys) query.orderByRaw(orderByTerm(key, reverse));
    const rows: Record<string, unknown>[] = await query.offset(offset).limit(limit);
    return rows.map((row) => ({
      resource: inCanonicalOrder(row.content as Resource),
      keys: outerKeys.map((_, i) => row[`__k${i}`] as string | null),
    }));
  }

  /** Every search-shaped read (matches, includes) goes through here. */
  private async find(request: SearchRequest, offset: number, limit: number): Promise<Resource[]> {
    const query = this.knex(request.resourceType).select('content');
    applySearch(query, request);
    const rows: { content: Resource }[] = await query.offset(offset).limit(limit);
    return rows.map((r) => inCanonicalOrder(r.content));
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
      try {
        return await this.knex.transaction(work);
      } catch (err) {
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

function applyJsonPatch(resource: Resource, patch: Operation[]): Resource {
  if (!Array.isArray(patch)) {
    throw badRequest('A JSON Patch document must be an array of operations');
  }
  try {
    return applyPatch(structuredClone(resource), patch, true, true, true).newDocument;
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    if (message.includes('Test operation failed')) {
      throw unprocessable(`JSON Patch test failed: ${message}`);
    }
    throw badRequest(`Invalid JSON Patch: ${message}`);
  }
}
