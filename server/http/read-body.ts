import { parse as parseContentType } from 'content-type';
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { badRequest, unsupportedMediaType } from '../core/outcome';
import { jsonDepthExceeds } from './json-depth';
import { formHoldsNul, jsonHoldsNul, NUL_REFUSAL } from './nul-characters';
import { xmlToResourceYielding } from '../fhir/xml-to-resource';

/** FHIR resources nest a few dozen levels at most; 200 leaves room for extensions. */
const MAX_JSON_DEPTH = 200;

const JSON_MEDIA_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json+fhir']);
/** FHIR XML (xml.html); plain XML types too, except where a Binary's own content may come as them. */
const FHIR_XML_MEDIA_TYPES = new Set(['application/fhir+xml', 'application/xml+fhir']);
const PLAIN_XML_MEDIA_TYPES = new Set(['application/xml', 'text/xml']);
const PATCH_MEDIA_TYPE = 'application/json-patch+json';
const FORM_MEDIA_TYPE = 'application/x-www-form-urlencoded';

export interface ParsedBody {
  body?: unknown;
  mediaType?: string;
  /** A body in another media type, where `raw` allowed it (a Binary's content): the bytes as sent. */
  raw?: Buffer;
}

/**
 * Reads and parses the request body within `limit` bytes (raw-body answers 413 beyond).
 * Accepted: FHIR JSON and FHIR XML everywhere, JSON Patch for PATCH, a form for POST
 * _search, and any other media type where `raw` is set (a Binary's content, returned as
 * bytes). An XML resource is returned in its JSON form, with the FHIR JSON media type:
 * from here on nothing depends on the format it came in.
 */
export async function readBody(ctx: Context, limit: number, options: { form: boolean; raw?: boolean }): Promise<ParsedBody> {
  const header = ctx.get('Content-Type');
  const length = ctx.get('Content-Length');
  const hasBody = (length !== '' && length !== '0') || ctx.get('Transfer-Encoding') !== '';
  if (!hasBody) {
    return {};
  }
  let mediaType: string;
  let charset: string | undefined;
  try {
    const parsed = parseContentType(header);
    mediaType = parsed.type;
    charset = parsed.parameters.charset?.toLowerCase();
  } catch {
    throw unsupportedMediaType(`Content-Type "${header}" is not supported; send application/fhir+json or application/fhir+xml`);
  }
  const isJson = JSON_MEDIA_TYPES.has(mediaType) || (mediaType === PATCH_MEDIA_TYPE && ctx.method === 'PATCH');
  const isForm = mediaType === FORM_MEDIA_TYPE && options.form;
  const isXml = FHIR_XML_MEDIA_TYPES.has(mediaType) || (PLAIN_XML_MEDIA_TYPES.has(mediaType) && !options.raw);
  if (!isJson && !isForm && !isXml && options.raw) {
    return { raw: await getRawBody(ctx.req, { limit, length: length || undefined }), mediaType };
  }
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw unsupportedMediaType(`charset ${charset} is not supported; send UTF-8`);
  }
  if (!isJson && !isForm && !isXml) {
    throw unsupportedMediaType(`Content-Type ${mediaType} is not supported here; send application/fhir+json or application/fhir+xml`);
  }
  const text = await getRawBody(ctx.req, { limit, length: length || undefined, encoding: 'utf-8' });
  if (isForm) {
    const form = new URLSearchParams(text);
    if (formHoldsNul(form)) throw badRequest(NUL_REFUSAL);
    return { body: form, mediaType };
  }
  if (text.trim() === '') {
    return { mediaType };
  }
  let body: unknown;
  if (isXml) {
    body = await xmlToResourceYielding(text);
  } else {
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw badRequest(`The body is not valid JSON: ${(err as Error).message}`);
    }
    if (jsonHoldsNul(text)) throw badRequest(NUL_REFUSAL);
  }
  if (jsonDepthExceeds(body, MAX_JSON_DEPTH)) {
    throw badRequest(`A resource nested deeper than ${MAX_JSON_DEPTH} levels is not accepted`);
  }
  return { body, mediaType: isXml ? 'application/fhir+json' : mediaType };
}
