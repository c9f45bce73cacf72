import type { Resource } from '@medplum/fhirtypes';
import { resourceDefinitions } from '../validation/structure-definitions';

/**
 * JSONB keeps keys sorted by length, so a stored resource comes back as
 * `{"id":…,"meta":…,"resourceType":…}`. Clients and people expect the FHIR order
 * (resourceType first, then the elements in definition order), so the top level is put
 * back in that order on the way out. Nested objects keep JSONB's order; JSON objects
 * are unordered, and only the top level is read by eye or by streaming parsers.
 */
const orderByType = new Map<string, Map<string, number>>();
for (const sd of resourceDefinitions) {
  if (sd.kind !== 'resource' || !sd.type || sd.derivation === 'constraint') {
    continue;
  }
  const order = new Map<string, number>([['resourceType', -1]]);
  for (const element of sd.snapshot?.element ?? []) {
    const parts = element.path?.split('.') ?? [];
    if (parts.length === 2) {
      order.set(parts[1].replace('[x]', ''), order.size);
    }
  }
  orderByType.set(sd.type, order);
}

/** Ranks per type and key, computed once: the choice-element search below walks every element. */
const rankCache = new Map<Map<string, number>, Map<string, number>>();

function rank(order: Map<string, number>, key: string): number {
  let ranks = rankCache.get(order);
  if (!ranks) {
    ranks = new Map();
    rankCache.set(order, ranks);
  }
  let value = ranks.get(key);
  if (value === undefined) {
    value = computeRank(order, key);
    // Keys are element names; a flood of unknown keys (invalid content never gets stored) cannot grow this far.
    if (ranks.size < 10000) ranks.set(key, value);
  }
  return value;
}

function computeRank(order: Map<string, number>, key: string): number {
  const name = key.startsWith('_') ? key.slice(1) : key;
  const exact = order.get(name);
  if (exact !== undefined) {
    return exact + (key.startsWith('_') ? 0.5 : 0);
  }
  // choice elements: valueQuantity ranks as value[x]
  for (const [element, position] of order) {
    if (name.startsWith(element) && /^[A-Z]/.test(name.slice(element.length))) {
      return position + (key.startsWith('_') ? 0.5 : 0);
    }
  }
  return Number.MAX_SAFE_INTEGER;
}

export function inCanonicalOrder<T extends Resource>(resource: T): T {
  const order = orderByType.get(resource.resourceType);
  if (!order) {
    return resource;
  }
  const keys = Object.keys(resource);
  const sorted = keys
    .map((key) => [key, rank(order, key)] as const)
    .sort((a, b) => a[1] - b[1])
    .map(([key]) => key);
  const result: Record<string, unknown> = {};
  for (const key of sorted) {
    result[key] = (resource as unknown as Record<string, unknown>)[key];
  }
  return result as unknown as T;
}
