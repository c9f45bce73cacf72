import type { IncomingMessage } from 'node:http';
import type { Binary, Resource } from '@medplum/fhirtypes';
import accepts from 'accepts';
import { format as formatContentType, parse as parseContentType } from 'content-type';
import { badRequest, notAcceptable } from '../core/outcome';

/**
 * Binary on the REST API (https://hl7.org/fhir/R4/binary.html#rest): a read that does not
 * ask for FHIR JSON gets the content itself, with its own media type; a create or update
 * whose body is not FHIR JSON stores that body as a Binary's content.
 */

/** A Binary read answered with its content: what the HTTP adapter writes. */
export interface NativeContent {
  contentType: string;
  data: Buffer;
  /** Binary.securityContext, sent as X-Security-Context. */
  securityContext?: string;
}

/**
 * The native answer to a Binary read whose client's Accept (`accept`, the header as sent,
 * empty for none) did not name FHIR JSON; 406 when it does not take the content's type either.
 */
export function nativeContent(binary: Resource, accept: string): NativeContent | undefined {
  if (binary.resourceType !== 'Binary') return undefined;
  const { contentType, data, securityContext } = binary as Binary;
  if (accept !== '' && accepts({ headers: { accept } } as IncomingMessage).type(mediaTypeOf(contentType)) === false) {
    throw notAcceptable(`Accept ${accept} does not take this Binary's content type ${contentType}; ask for application/fhir+json to get the resource`);
  }
  return { contentType, data: Buffer.from(data ?? '', 'base64'), securityContext: securityContext?.reference };
}

/** The Binary a create or update with a non-FHIR body stores: the body, its Content-Type, its X-Security-Context. */
export function binaryFromUpload(data: Buffer, contentTypeHeader: string, securityContext: string | undefined, id: string | undefined): Binary {
  let contentType: string;
  try {
    // Normalised (`text/plain; charset=utf-8`): Binary.contentType is a code, which allows single spaces only.
    contentType = formatContentType(parseContentType(contentTypeHeader));
  } catch {
    throw badRequest(`Content-Type "${contentTypeHeader}" is not a media type`);
  }
  return {
    resourceType: 'Binary',
    ...(id !== undefined ? { id } : {}),
    contentType,
    ...(securityContext ? { securityContext: { reference: securityContext } } : {}),
    ...(data.length > 0 ? { data: data.toString('base64') } : {}),
  };
}

function mediaTypeOf(contentType: string): string {
  try {
    return parseContentType(contentType).type;
  } catch {
    return contentType;
  }
}
