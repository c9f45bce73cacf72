import { badRequest, notFound, type OperationOutcomeError } from '../core/outcome';
import type { Route } from './routes';
import type { FhirRequest } from './fhir-request';
import { isResourceType } from '../validation/structure-definitions';

export type RouteMatch =
  | { route: Route; params: Record<string, string> }
  | { route?: undefined; allowed: string[]; unknownType?: string; unknownOperation?: string };

interface CompiledRoute {
  route: Route;
  /** A literal segment, or `:name` capturing the segment as params.name. */
  segments: string[];
}

/**
 * Matches a path below /fhir against the route table: segments are compared literally
 * or captured, and a `:resourceType` capture must be an R4 type (so `metadata` or
 * `_history` fall through to their literal routes), and no capture starts with `$` (ids
 * and types never do: `$name` is an operation, matched only literally). The first route in table order wins;
 * when none matches the method, the methods of routes matching the path are returned
 * for a 405.
 */
export function compileRoutes(routes: readonly Route[]): (method: string, path: string) => RouteMatch {
  const byLength = new Map<number, CompiledRoute[]>();
  for (const route of routes) {
    const segments = route.path.split('/').filter((s) => s !== '');
    const list = byLength.get(segments.length) ?? [];
    list.push({ route, segments });
    byLength.set(segments.length, list);
  }
  return (method, path) => {
    const parts = path.split('/').filter((s) => s !== '');
    const wanted = method === 'HEAD' ? 'GET' : method;
    const allowed = new Set<string>();
    let unknownType: string | undefined;
    for (const candidate of byLength.get(parts.length) ?? []) {
      const params = captures(candidate.segments, parts);
      if (!params) continue;
      if (params.resourceType !== undefined && !isResourceType(params.resourceType)) {
        unknownType = params.resourceType;
        continue;
      }
      if (candidate.route.method === wanted) {
        return { route: candidate.route, params };
      }
      allowed.add(candidate.route.method);
      if (candidate.route.method === 'GET') allowed.add('HEAD');
    }
    const operation = allowed.size === 0 ? parts.find((p) => p.startsWith('$')) : undefined;
    return { allowed: [...allowed], unknownType, ...(operation ? { unknownOperation: decode(operation) } : {}) };
  };
}

/** The 404 for a path no route matches (405s are the caller's: they need the Allow header). */
export function noRoute(found: Exclude<RouteMatch, { route: Route }>, method: string, path: string): OperationOutcomeError {
  if (found.unknownOperation) return notFound(`The operation ${found.unknownOperation} is not supported at ${method} ${path}`, 'not-supported');
  if (found.unknownType) return notFound(`Unknown resource type "${found.unknownType}"`);
  return notFound(`No FHIR endpoint at ${method} ${path}`);
}

function captures(segments: string[], parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    if (segment.startsWith(':')) {
      if (parts[i].startsWith('$')) return undefined;
      params[segment.slice(1)] = decode(parts[i]);
    } else if (segment !== parts[i]) {
      return undefined;
    }
  }
  return params;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest(`Malformed URL segment "${segment}"`);
  }
}

/** The parts of a FhirRequest that come from the matched path. */
export function pathFields(
  route: Route,
  params: Record<string, string>
): Pick<FhirRequest, 'resourceType' | 'id' | 'versionId' | 'compartment'> {
  // A route on one type (`/Patient/:id/$everything`) names it as a literal segment.
  const literalType = route.path.split('/')[1];
  return {
    resourceType: params.resourceType ?? (isResourceType(literalType) ? literalType : undefined),
    id: params.id,
    versionId: params.versionId,
    compartment: params.compartmentId !== undefined ? { type: route.path.split('/')[1], id: params.compartmentId } : undefined,
  };
}
