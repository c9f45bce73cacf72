import type { OperationOutcomeIssue, Parameters } from '@medplum/fhirtypes';
import { badRequest, issue } from '../core/outcome';
import type { FhirRequest } from '../fhir/fhir-request';
import { parseDateSearchValue } from '../search/date-search-value';
import { patientRecordTypes, supportingTypes, type CareDates } from '../search/patient-record';
import type { EverythingPosition } from '../storage/everything-reads';
import { isResourceType } from '../validation/structure-definitions';
import { parseElements, parseSummary, type SummaryMode } from '../fhir/summary';

/**
 * The most entries in one $everything page. The spec's default is the whole record in
 * one Bundle; this bounds the memory one request can take (the largest Synthea patient,
 * 3,419 resources and ~40 referenced ones, fits). Beyond it the Bundle has a `next` link.
 */
export const EVERYTHING_PAGE_MAX = 5000;

/** The parameters of https://hl7.org/fhir/R4/patient-operation-everything.html, parsed. */
export interface EverythingParameters {
  types?: ReadonlySet<string>;
  since?: string;
  careDates: CareDates;
  count: number;
  after?: EverythingPosition;
  /** A `previous` link's cursor: the page ends just before this position. */
  before?: EverythingPosition;
  /** `_cursor` as given, for an operation that keeps positions of its own (`rawCursor`). */
  cursor?: string;
  /** `_summary` / `_elements` (fhir/summary.ts), applied to every entry. */
  summary?: SummaryMode;
  elements?: string[];
  /** The parameters as given (for the Bundle's links), without `_cursor`. */
  linkParams: URLSearchParams;
  warnings: OperationOutcomeIssue[];
}

/** Handled by the HTTP layer, not the operation. */
const FORMAT_PARAMETERS: ReadonlySet<string> = new Set(['_format', '_pretty']);

/** What an `$everything` other than Patient's takes: Encounter's has no care dates, and pages with a cursor of its own. */
export interface EverythingOptions {
  operation?: string;
  careDates?: boolean;
  rawCursor?: boolean;
}

/** GET query parameters, or (POST) a Parameters body, and the query string's `_cursor`. */
export function parseEverythingParameters(req: FhirRequest, typeLevel: boolean, options: EverythingOptions = {}): EverythingParameters {
  const given = givenParameters(req);
  const careDates = options.careDates ?? true;
  const result: EverythingParameters = { careDates: {}, count: EVERYTHING_PAGE_MAX, linkParams: new URLSearchParams(), warnings: [] };
  for (const [name, values] of given) {
    const value = values[values.length - 1];
    switch (name) {
      case '_type':
        result.types = parseTypes(values);
        break;
      case '_since':
        result.since = new Date(parseDateSearchValue('_since', `ge${value}`).start).toISOString();
        break;
      case 'start':
        if (!careDates) {
          unknownParameter(req, result, name, options);
          continue;
        }
        result.careDates.from = parseDateSearchValue('start', `eq${value}`).start;
        break;
      case 'end':
        if (!careDates) {
          unknownParameter(req, result, name, options);
          continue;
        }
        result.careDates.to = parseDateSearchValue('end', `eq${value}`).end;
        break;
      case '_count':
        result.count = parseCount(value, result.warnings);
        break;
      case '_summary':
        result.summary = parseSummary(value);
        // A count of the record is Bundle.total, given with the first page already.
        if (result.summary === 'count') throw badRequest(`_summary=count is not supported by $${options.operation ?? 'everything'}: Bundle.total gives the count`, '_summary');
        break;
      case '_elements':
        result.elements = parseElements(values);
        break;
      case '_cursor':
        if (options.rawCursor) result.cursor = value;
        else Object.assign(result, decodeEverythingCursor(value, typeLevel));
        continue;
      default:
        if (FORMAT_PARAMETERS.has(name)) continue;
        unknownParameter(req, result, name, options);
        continue;
    }
    for (const v of values) result.linkParams.append(name, v);
  }
  return result;
}

/** An unknown parameter: a 400 with `Prefer: handling=strict`, else a warning in the Bundle. */
function unknownParameter(req: FhirRequest, result: EverythingParameters, name: string, options: EverythingOptions): void {
  const operation = options.operation ?? 'everything';
  if (req.preferHandling === 'strict') throw badRequest(`Unknown parameter of $${operation}: ${name}`, name);
  result.warnings.push(issue('warning', 'not-supported', `Unknown parameter of $${operation}, ignored: ${name}`, name));
}

/** Query parameters, then a POSTed Parameters resource's (in given order, repeats kept). */
function givenParameters(req: FhirRequest): Map<string, string[]> {
  const given = new Map<string, string[]>();
  const add = (name: string, value: string): void => void given.set(name, [...(given.get(name) ?? []), value]);
  for (const [name, raw] of Object.entries(req.query)) {
    for (const value of Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]) add(name, value);
  }
  if (req.body === undefined) return given;
  const body = req.body as Parameters;
  if (typeof body !== 'object' || body === null || body.resourceType !== 'Parameters') {
    throw badRequest('POST $everything takes a Parameters resource (or no body)');
  }
  for (const parameter of body.parameter ?? []) {
    const entry = Object.entries(parameter).find(([key]) => key.startsWith('value'));
    const value = entry?.[1];
    if (!parameter.name || (typeof value !== 'string' && typeof value !== 'number')) {
      throw badRequest(`Parameter ${parameter.name ?? '(no name)'} needs a primitive value[x]`, 'Parameters.parameter');
    }
    add(parameter.name, String(value));
  }
  return given;
}

function parseTypes(values: string[]): Set<string> {
  const types = new Set(values.flatMap((v) => v.split(',')).map((t) => t.trim()));
  for (const type of types) {
    if (!isResourceType(type)) throw badRequest(`_type: unknown resource type '${type}'`, '_type');
  }
  return types;
}

function parseCount(value: string, warnings: OperationOutcomeIssue[]): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw badRequest(`_count must be a positive integer, got '${value}'`, '_count');
  const count = Number(value);
  if (count > EVERYTHING_PAGE_MAX) {
    warnings.push(issue('warning', 'too-costly', `_count ${count} exceeds the maximum; using ${EVERYTHING_PAGE_MAX}`, '_count'));
  }
  return Math.min(count, EVERYTHING_PAGE_MAX);
}

/**
 * A page's position (see storage/everything-reads.ts), opaque to clients: `["e", patient
 * id or null, type, id]` as base64url JSON for a page after that entry (`next`), with a
 * fifth element `"b"` for the page before it (`previous`).
 */
export function encodeEverythingCursor(position: EverythingPosition, direction: 'after' | 'before' = 'after'): string {
  const parts = ['e', position.patientId ?? null, position.resourceType, position.id, ...(direction === 'before' ? ['b'] : [])];
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

function decodeEverythingCursor(text: string, typeLevel: boolean): { after: EverythingPosition } | { before: EverythingPosition } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const known = (type: unknown): boolean => typeof type === 'string' && (patientRecordTypes().includes(type) || supportingTypes().includes(type));
  if (
    !Array.isArray(parsed) ||
    !(parsed.length === 4 || (parsed.length === 5 && parsed[4] === 'b')) ||
    parsed[0] !== 'e' ||
    (typeLevel ? typeof parsed[1] !== 'string' : parsed[1] !== null) ||
    !known(parsed[2]) ||
    typeof parsed[3] !== 'string'
  ) {
    throw badRequest('Invalid _cursor: use the next link as the server gave it', '_cursor');
  }
  const position = { ...(typeLevel ? { patientId: parsed[1] as string } : {}), resourceType: parsed[2] as string, id: parsed[3] };
  return parsed.length === 5 ? { before: position } : { after: position };
}
