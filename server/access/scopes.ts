/**
 * SMART App Launch scopes, v1 and v2
 * (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
 * Parsing fails closed: anything not exactly of a known shape is `undefined`, and an
 * unknown scope can only ever be dropped, never read as something wider.
 */

export type Permission = 'c' | 'r' | 'u' | 'd' | 's';
export type ScopeContext = 'patient' | 'user' | 'system';

export interface ResourceScope {
  kind: 'resource';
  context: ScopeContext;
  /** A resource type, or `*`. */
  resourceType: string;
  permissions: ReadonlySet<Permission>;
  /** SMART v2 query filter (`category=laboratory`), without the `?`. */
  query?: string;
  raw: string;
}

/** openid, fhirUser, profile, launch, launch/patient, launch/encounter, offline_access, online_access. */
export interface OtherScope {
  kind: 'other';
  raw: string;
}

export type ParsedScope = ResourceScope | OtherScope;

const OTHER_SCOPES = new Set(['openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'launch/encounter', 'offline_access', 'online_access']);
const ORDER: readonly Permission[] = ['c', 'r', 'u', 'd', 's'];
const V1: Record<string, Permission[]> = { read: ['r', 's'], write: ['c', 'u', 'd'], '*': ['c', 'r', 'u', 'd', 's'] };
const SHAPE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]{1,63})\.([a-z*]+)(?:\?(.+))?$/;

export function parseScope(raw: string): ParsedScope | undefined {
  if (OTHER_SCOPES.has(raw)) return { kind: 'other', raw };
  const match = SHAPE.exec(raw);
  if (!match) return undefined;
  const [, context, resourceType, letters, query] = match;
  let permissions: Permission[] | undefined = V1[letters];
  if (permissions) {
    // v1 has no query filters.
    if (query !== undefined) return undefined;
  } else {
    permissions = v2Letters(letters);
    if (!permissions) return undefined;
  }
  if (query !== undefined && !isQuery(query)) return undefined;
  return { kind: 'resource', context: context as ScopeContext, resourceType, permissions: new Set(permissions), query, raw };
}

/** `cruds` letters, each at most once and in that order (SMART v2 §3.1.1). */
function v2Letters(letters: string): Permission[] | undefined {
  let next = 0;
  const out: Permission[] = [];
  for (const letter of letters) {
    const at = ORDER.indexOf(letter as Permission, next);
    if (at < 0) return undefined;
    out.push(ORDER[at]);
    next = at + 1;
  }
  return out.length > 0 ? out : undefined;
}

function isQuery(query: string): boolean {
  try {
    const params = [...new URLSearchParams(query)];
    return params.length > 0 && params.every(([name, value]) => name !== '' && value !== '');
  } catch {
    return false;
  }
}

/** The scope string of a resource scope, in v1 form where one exists (clients compare strings). */
export function formatResourceScope(scope: Omit<ResourceScope, 'raw' | 'kind'>): string {
  const letters = ORDER.filter((p) => scope.permissions.has(p)).join('');
  const v1 = scope.query === undefined ? Object.entries(V1).find(([, ps]) => ps.join('') === letters)?.[0] : undefined;
  return `${scope.context}/${scope.resourceType}.${v1 ?? letters}${scope.query === undefined ? '' : `?${scope.query}`}`;
}

export function splitScopes(scope: string | undefined): string[] {
  return (scope ?? '').split(/\s+/).filter(Boolean);
}

/**
 * What may be granted of `requested` to a client registered for `allowed`: each
 * requested scope as asked when a registered scope covers it, otherwise the part of it
 * that registered scopes cover (`patient/*.rs` asked, `patient/Observation.read`
 * registered → `patient/Observation.read`). Unknown or malformed scopes are dropped.
 * The result has no duplicates and keeps the requested order.
 */
export function grantableScopes(requested: readonly string[], allowed: readonly string[]): string[] {
  const allowedParsed = allowed.map(parseScope).filter((s): s is ParsedScope => s !== undefined);
  const granted: string[] = [];
  const add = (s: string): void => {
    if (!granted.includes(s)) granted.push(s);
  };
  for (const raw of requested) {
    const wanted = parseScope(raw);
    if (!wanted) continue;
    if (wanted.kind === 'other') {
      if (allowedParsed.some((a) => a.kind === 'other' && a.raw === wanted.raw)) add(raw);
      continue;
    }
    for (const a of allowedParsed) {
      if (a.kind !== 'resource') continue;
      const part = intersect(wanted, a);
      if (!part) continue;
      add(sameScope(part, wanted) ? raw : formatResourceScope(part));
      if (sameScope(part, wanted)) break;
    }
  }
  return granted;
}

/** The access both scopes grant, when it is itself one scope. */
export function intersect(a: ResourceScope, b: ResourceScope): Omit<ResourceScope, 'raw' | 'kind'> | undefined {
  if (a.context !== b.context) return undefined;
  if (a.resourceType !== '*' && b.resourceType !== '*' && a.resourceType !== b.resourceType) return undefined;
  if (a.query !== undefined && b.query !== undefined && a.query !== b.query) return undefined;
  const permissions = new Set([...a.permissions].filter((p) => b.permissions.has(p)));
  if (permissions.size === 0) return undefined;
  return {
    context: a.context,
    resourceType: a.resourceType === '*' ? b.resourceType : a.resourceType,
    permissions,
    query: a.query ?? b.query,
  };
}

function sameScope(part: Omit<ResourceScope, 'raw' | 'kind'>, scope: ResourceScope): boolean {
  return (
    part.context === scope.context &&
    part.resourceType === scope.resourceType &&
    part.query === scope.query &&
    part.permissions.size === scope.permissions.size
  );
}
