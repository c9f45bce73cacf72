import type { IncomingMessage } from 'node:http';
import accepts from 'accepts';
import type { Middleware } from 'koa';
import { badRequest, notAcceptable } from '../core/outcome';
import { FHIR_JSON, FHIR_XML } from './write-response';

declare module 'koa' {
  interface DefaultState {
    /** The media type responses are written with. */
    responseType?: string;
    /** A non-FHIR media type the client prefers, for handlers that can answer in it (FhirRequest.alternativeType). */
    alternativeType?: string;
    /** A Binary read that did not ask for FHIR JSON: its Accept header (FhirRequest.binaryAccept). */
    binaryAccept?: string;
  }
}

/** What `_format` and Accept may name (http.html#mime-type), and the Content-Type answered for each. */
const FORMAT_TYPES: Record<string, string> = {
  json: FHIR_JSON,
  'application/json': 'application/json; charset=utf-8',
  'application/fhir+json': FHIR_JSON,
  'application/json+fhir': FHIR_JSON,
  'text/json': 'application/json; charset=utf-8',
  xml: FHIR_XML,
  'application/xml': 'application/xml; charset=utf-8',
  'application/fhir+xml': FHIR_XML,
  'application/xml+fhir': FHIR_XML,
  'text/xml': 'text/xml; charset=utf-8',
};

/**
 * Media types a few handlers answer in besides FHIR JSON (the SMART Health Card file of
 * $emergency-card). Errors, and handlers that cannot, still answer FHIR JSON.
 */
const ALTERNATIVE_TYPES = ['application/smart-health-card'];

/** JSON first: a client that accepts both equally (HAPI's default Accept lists XML first, same q) gets JSON. */
const OFFERED = [
  'application/fhir+json',
  'application/json',
  'application/json+fhir',
  'text/json',
  'application/fhir+xml',
  'application/xml',
  'application/xml+fhir',
  'text/xml',
  ...ALTERNATIVE_TYPES,
];

/** The Accept values clients send most, answered without running the negotiator. */
const ACCEPTED_AS_IS = new Set(['*/*', 'application/fhir+json']);

/**
 * The Accept header without FHIR's version parameter (http.html#version-parameter,
 * `application/fhir+json; fhirVersion=4.0`), which the negotiator would otherwise demand
 * of every offered type: entries for another FHIR version are dropped, the others keep
 * their type and remaining parameters. Undefined when no entry is left.
 */
export function acceptForR4(accept: string): string | undefined {
  if (!/fhirversion/i.test(accept)) return accept;
  const kept: string[] = [];
  for (const entry of accept.split(',')) {
    const [type, ...params] = entry.split(';').map((part) => part.trim());
    const version = params.find((p) => /^fhirversion\s*=/i.test(p));
    if (version && !/^fhirversion\s*=\s*"?4\.0(\.\d+)?"?$/i.test(version)) continue;
    kept.push([type, ...params.filter((p) => p !== version)].join(';'));
  }
  return kept.length > 0 ? kept.join(', ') : undefined;
}

/** Read and vread of one Binary: the requests that may be answered with its own content. */
const BINARY_READ = /^\/fhir\/Binary\/[A-Za-z0-9.-]{1,64}(\/_history\/[^/]+)?$/;

/** A Bulk Data export's output file (operations/bulk-export.ts). */
const EXPORT_FILE = /^\/fhir\/\$export-file\/[^/]+$/;

/**
 * Whether an Accept header asks for the Binary resource rather than its content: it names
 * a type FHIR is served as (not just a wildcard), at least as preferred as any other type
 * it names (`image/png, application/fhir+xml;q=0.5` wants the image).
 */
function namesFhirFormat(accept: string): boolean {
  let fhir = 0;
  let other = 0;
  for (const entry of (acceptForR4(accept) ?? '').split(',')) {
    const [type, ...params] = entry.split(';').map((part) => part.trim().toLowerCase());
    const q = params.find((p) => /^q\s*=/.test(p));
    const weight = q ? Number(q.slice(q.indexOf('=') + 1)) || 0 : 1;
    if (type in FORMAT_TYPES) fhir = Math.max(fhir, weight);
    else if (type !== '' && !type.endsWith('/*')) other = Math.max(other, weight);
  }
  return fhir > 0 && fhir >= other;
}

const JSON_OFFERED = OFFERED.filter((type) => type.includes('json'));

/**
 * `accepted` unless it is XML and a JSON type is accepted as much: HTTP leaves equal
 * preferences to the server, and accepts' tie-break (the client's order) would answer
 * XML to HAPI's default Accept, which lists XML first.
 */
function preferJson(accept: string, accepted: string): string {
  if (!accepted.includes('xml')) return accepted;
  const xml = quality(accept, accepted);
  for (const type of JSON_OFFERED) if (quality(accept, type) >= xml) return type;
  return accepted;
}

/** The q an Accept header gives `type`: that of its most specific matching entry (RFC 9110 §12.5.1). */
function quality(accept: string, type: string): number {
  let specificity = 0;
  let q = 0;
  for (const entry of accept.split(',')) {
    const [range, ...params] = entry.split(';').map((part) => part.trim().toLowerCase());
    const match = range === type ? 3 : range.endsWith('/*') && type.startsWith(range.slice(0, -1)) ? 2 : range === '*/*' ? 1 : 0;
    if (match <= specificity) continue;
    specificity = match;
    const given = params.find((p) => /^q\s*=/.test(p));
    q = given ? Number(given.slice(given.indexOf('=') + 1)) || 0 : 1;
  }
  return q;
}

/**
 * `_format` overrides Accept (https://hl7.org/fhir/R4/http.html#mime-type). FHIR JSON
 * and FHIR XML are served: a client that accepts neither gets 406.
 */
export function negotiation(): Middleware {
  return async (ctx, next) => {
    const format = ctx.query._format;
    if (format !== undefined) {
      const value = (Array.isArray(format) ? format[format.length - 1] : format).split(';')[0].trim();
      const type = FORMAT_TYPES[value.replace(/ /g, '+')];
      if (!type) {
        throw notAcceptable(`_format ${value} is not supported; this server speaks FHIR JSON and FHIR XML`);
      }
      ctx.state.responseType = type;
    } else if (ctx.method === 'GET' && EXPORT_FILE.test(ctx.path)) {
      // A Bulk Data output file is NDJSON whatever else the client lists (clients send application/fhir+ndjson).
    } else if ((ctx.method === 'GET' || ctx.method === 'HEAD') && BINARY_READ.test(ctx.path) && !namesFhirFormat(ctx.get('Accept'))) {
      // binary.html#rest: without an explicit FHIR type (JSON or XML), a Binary is read as its own content.
      ctx.state.binaryAccept = ctx.get('Accept');
    } else if (ctx.get('Accept') && !ACCEPTED_AS_IS.has(ctx.get('Accept'))) {
      const accept = acceptForR4(ctx.get('Accept'));
      const best = accept === undefined ? false : accepts({ headers: { accept } } as IncomingMessage).type(OFFERED);
      // Given several types, accepts answers the best one (or false), never a list.
      const accepted = typeof best === 'string' ? best : false;
      if (accepted === false) {
        throw notAcceptable(`Accept ${ctx.get('Accept')} is not supported; this server speaks FHIR JSON and FHIR XML`);
      }
      if (ALTERNATIVE_TYPES.includes(accepted)) ctx.state.alternativeType = accepted;
      else ctx.state.responseType = FORMAT_TYPES[preferJson(accept as string, accepted)] ?? FHIR_JSON;
    }
    const pretty = ctx.query._pretty;
    if (pretty !== undefined && pretty !== 'true' && pretty !== 'false') {
      throw badRequest(`_pretty must be true or false, got ${String(pretty)}`);
    }
    await next();
  };
}
