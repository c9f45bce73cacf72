import type { Resource } from '@medplum/fhirtypes';
import type { Context } from 'koa';
import type { NativeContent } from '../fhir/binary-content';
import { resourceToXml } from '../fhir/resource-to-xml';
import { stringifyWithStoredText } from '../storage/lazy-resource';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';
export const FHIR_XML = 'application/fhir+xml; charset=utf-8';

/** Serialises a resource in the format negotiated (JSON unless the client chose XML), as the client asked (`_pretty`). */
export function writeResource(ctx: Context, resource: Resource): void {
  const pretty = ctx.query._pretty === 'true';
  const type = ctx.state.responseType ?? FHIR_JSON;
  ctx.body = type.includes('xml') ? resourceToXml(resource, pretty) : pretty ? JSON.stringify(resource, null, 2) : stringifyWithStoredText(resource);
  ctx.type = type;
}

/** A JSON document that is not a FHIR resource (a `.smart-health-card` file), with its own media type. */
export function writeDocument(ctx: Context, document: { contentType: string; json: unknown }): void {
  ctx.type = document.contentType;
  ctx.body = JSON.stringify(document.json);
}

/** A Binary's own content, in its own media type (binary.html#rest). */
export function writeContent(ctx: Context, content: NativeContent): void {
  // Set before the body, which would otherwise default it to application/octet-stream.
  ctx.set('Content-Type', content.contentType);
  if (content.securityContext) ctx.set('X-Security-Context', content.securityContext);
  ctx.body = content.data;
}
