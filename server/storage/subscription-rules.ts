import type { Resource, Subscription } from '@medplum/fhirtypes';
import { unprocessable } from '../core/outcome';
import { paramsRecord } from '../core/params-record';
import { parseSearchRequest } from '../search/parse-search-request';
import { isResourceType } from '../validation/structure-definitions';

/** The payload types rest-hook notifications are written in: FHIR JSON or FHIR XML. */
const PAYLOADS = new Set(['application/fhir+json', 'application/json', 'application/fhir+xml', 'application/xml']);

/**
 * What the server decides about a Subscription as it is written (R4 subscription.html):
 * its criteria must be a search this server can run, its channel a rest-hook to an http(s)
 * endpoint with a JSON or XML payload or none, or a websocket (422 otherwise); one written as `requested` is
 * stored `active`, since from then on every matching write is notified
 * (jobs/subscription-delivery.ts). Any other resource passes unchanged.
 */
export function withSubscriptionRules(resource: Resource): Resource {
  if (resource.resourceType !== 'Subscription') return resource;
  const subscription = resource as Subscription;
  // Missing required elements are the validator's to report, with their paths.
  if (typeof subscription.criteria !== 'string' || !subscription.channel) return resource;
  subscriptionCriteria(subscription.criteria);
  const channel = subscription.channel;
  if (channel.type !== 'rest-hook' && channel.type !== 'websocket') {
    throw unprocessable(`Subscription.channel.type ${channel.type} is not supported here; use rest-hook or websocket`, 'Subscription.channel.type');
  }
  // A websocket client binds to the Subscription on the server's socket (http/subscription-sockets.ts) and is pinged there.
  if (channel.type === 'websocket') return subscription.status === 'requested' ? ({ ...subscription, status: 'active' } as Subscription) : subscription;
  if (!channel.endpoint || !/^https?:\/\/[^\s/]+/i.test(channel.endpoint)) {
    throw unprocessable('A rest-hook Subscription needs an http(s) channel.endpoint', 'Subscription.channel.endpoint');
  }
  if (channel.payload !== undefined && !PAYLOADS.has(channel.payload.split(';')[0].trim())) {
    throw unprocessable(`Subscription.channel.payload ${channel.payload} is not supported; use application/fhir+json or application/fhir+xml, or none`, 'Subscription.channel.payload');
  }
  for (const header of channel.header ?? []) {
    if (!/^[A-Za-z0-9-]+:\s?[^\r\n]*$/.test(header)) throw unprocessable(`Subscription.channel.header "${header}" is not "Name: value"`, 'Subscription.channel.header');
  }
  return subscription.status === 'requested' ? ({ ...subscription, status: 'active' } as Subscription) : subscription;
}

/** The type and search query of a Subscription's criteria (`Observation?code=…`); 422 when this server could not run it. */
export function subscriptionCriteria(criteria: string): { resourceType: string; query: Record<string, string | string[]> } {
  const at = criteria.indexOf('?');
  const resourceType = at < 0 ? criteria : criteria.slice(0, at);
  if (!isResourceType(resourceType)) throw unprocessable(`Subscription.criteria must start with a resource type, not "${resourceType}"`, 'Subscription.criteria');
  const query = paramsRecord(new URLSearchParams(at < 0 ? '' : criteria.slice(at + 1)));
  try {
    parseSearchRequest(resourceType, query, { strict: true, defaultCount: 1, maxCount: 1 });
  } catch (err) {
    throw unprocessable(`Subscription.criteria is not a search this server can run: ${(err as Error).message}`, 'Subscription.criteria');
  }
  return { resourceType, query };
}
