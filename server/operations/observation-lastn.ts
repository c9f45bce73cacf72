import type { Bundle, BundleEntry, Observation, Parameters, Resource } from '@medplum/fhirtypes';
import { badRequest } from '../core/outcome';
import { paramsRecord } from '../core/params-record';
import type { FhirHandler } from '../fhir/fhir-request';
import { applySummary, parseElements, parseSummary } from '../fhir/summary';
import { searchParamDef } from '../search/search-parameter-definitions';
import type { SearchQuery } from '../search/parse-search-request';
import { searchEveryPage } from '../storage/search-every-page';
import { observationTime } from './observation-time';

/** Result parameters that would change what "the last n per code" means, or that a single answer has no use for. */
const REFUSED = ['_sort', '_count', '_include', '_revinclude', '_total', '_contained', '_containedType', '_cursor'];

/**
 * `GET|POST Observation/$lastn` (R4 observation-operation-lastn): the most recent `max`
 * (default 1) Observations of each code among those the search parameters given select,
 * for one subject. As the operation says:
 *  - the request names a subject (`patient` or `subject`) and a category or a parameter
 *    on a code (`code`, `code-value-concept` …), else 400;
 *  - Observations are grouped by code: codings with the same system and code are the
 *    same code, and every coding of one Observation's code is equivalent to the others
 *    (so groups join transitively); a code with text alone groups by that exact text;
 *  - each group most recent first by `effective[x]` (a Period by its end, a Timing by its
 *    last event; `issued` when there is none), cut after `max`, but Observations tied
 *    with the last one kept are all returned;
 *  - nothing is filtered out implicitly (entered-in-error included unless `status` says).
 * The search runs through the caller's store, so only what the caller may read is
 * grouped. All groups come in one searchset Bundle (no paging), groups in the order of
 * their most recent Observation; `_summary` and `_elements` apply to the entries.
 */
export const observationLastn: FhirHandler = async (req, ctx) => {
  const given: SearchQuery = { ...req.query, ...bodyParams(req.body) };
  const query: SearchQuery = { ...given };
  const max = parseMax(query.max);
  delete query.max;
  for (const name of REFUSED) if (query[name] !== undefined) throw badRequest(`$lastn does not take ${name}: it returns every group whole, in one Bundle`, name);
  const summary = parseSummary(query._summary);
  const elements = parseElements(query._elements);
  delete query._summary;
  delete query._elements;
  const names = Object.keys(query).map((key) => key.split(/[:.]/)[0]);
  if (!names.some((n) => n === 'patient' || n === 'subject')) throw badRequest('$lastn needs a subject: a patient or subject parameter', 'patient');
  if (!names.some(namesCode)) throw badRequest('$lastn needs a category parameter or a parameter on a code (code, code-value-concept …)', 'code');

  const matches = await searchEveryPage<Observation>(ctx.repo, 'Observation', query);
  const kept = lastPerCode(matches, max);
  const entry: BundleEntry[] = kept.map((resource) => ({
    fullUrl: `${ctx.baseUrl}/Observation/${resource.id}`,
    resource: summary || elements ? applySummary(resource, summary, elements) : resource,
    search: { mode: 'match' },
  }));
  const self = new URLSearchParams();
  for (const [key, value] of Object.entries(given)) {
    for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) self.append(key, v);
  }
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    total: entry.length,
    link: [{ relation: 'self', url: `${ctx.baseUrl}/Observation/$lastn${self.size > 0 ? `?${self}` : ''}` }],
    ...(entry.length > 0 ? { entry } : {}),
  };
  return { status: 200, resource: bundle };
};

/** A form body (as POST _search), or a Parameters resource whose values are the search's. */
function bodyParams(body: unknown): Record<string, string | string[]> {
  if (body instanceof URLSearchParams) return paramsRecord(body);
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || (body as Resource).resourceType !== 'Parameters') throw badRequest('$lastn takes a Parameters resource or a form as its body');
  const out: Record<string, string[]> = {};
  for (const p of (body as Parameters).parameter ?? []) {
    const value = p.valueString ?? p.valueCode ?? p.valueUri ?? p.valueId ?? p.valueDateTime ?? p.valueDate ?? p.valueReference?.reference ?? (p.valuePositiveInt ?? p.valueInteger)?.toString();
    if (!p.name || value === undefined) throw badRequest(`$lastn: parameter "${p.name ?? ''}" needs a name and a value`, p.name);
    (out[p.name] ??= []).push(value);
  }
  return out;
}

function parseMax(value: string | string[] | undefined): number {
  if (value === undefined) return 1;
  if (Array.isArray(value) && value.length > 1) throw badRequest('$lastn: max may appear only once', 'max');
  const text = Array.isArray(value) ? value[0] : value;
  if (!/^[1-9]\d{0,5}$/.test(text)) throw badRequest(`$lastn: max must be a positive integer, not '${text}'`, 'max');
  return Number(text);
}

/** `category`, or a parameter whose expression reaches a `code` element (Observation.code, Observation.component.code …). */
function namesCode(name: string): boolean {
  if (name === 'category') return true;
  const def = searchParamDef('Observation', name);
  return def !== undefined && def.terms.some((term) => /\.code\b/.test(term));
}

/** The Observations kept: per code group, most recent first, up to `max` and every tie with the last one kept. */
export function lastPerCode<T extends Observation>(observations: readonly T[], max: number): T[] {
  const groups = groupByCode(observations);
  const ordered = groups.map((group) => group.map((o) => ({ o, at: observationTime(o, { timing: true, issued: true }) ?? -Infinity })).sort((a, b) => b.at - a.at));
  const kept = ordered.map((group) => group.filter((item, i) => i < max || item.at === group[max - 1].at));
  kept.sort((a, b) => b[0].at - a[0].at);
  return kept.flatMap((group) => group.map((item) => item.o));
}

/**
 * Groups by equivalent code: one union-find over `system|code` of every coding; an
 * Observation joins the codings of its code together. Text alone is a key of its own.
 */
function groupByCode<T extends Observation>(observations: readonly T[]): T[][] {
  const parent = new Map<string, string>();
  const find = (key: string): string => {
    let root = key;
    while (parent.get(root) !== root) root = parent.get(root) as string;
    // Path compression: every key on the way now points at the root.
    for (let k = key; k !== root; ) {
      const next = parent.get(k) as string;
      parent.set(k, root);
      k = next;
    }
    return root;
  };
  const keysOf = observations.map((o, i) => {
    const codings = (o.code?.coding ?? []).filter((c) => c.code).map((c) => `coding:${c.system ?? ''}|${c.code}`);
    if (codings.length > 0) return codings;
    if (o.code?.text) return [`text:${o.code.text}`];
    return [`alone:${i}`];
  });
  for (const keys of keysOf) {
    for (const key of keys) if (!parent.has(key)) parent.set(key, key);
    for (const key of keys.slice(1)) {
      const a = find(keys[0]);
      const b = find(key);
      if (a !== b) parent.set(b, a);
    }
  }
  const groups = new Map<string, T[]>();
  observations.forEach((o, i) => {
    const root = find(keysOf[i][0]);
    const group = groups.get(root);
    if (group) group.push(o);
    else groups.set(root, [o]);
  });
  return [...groups.values()];
}
