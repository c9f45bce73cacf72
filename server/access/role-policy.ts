import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isResourceType } from '../validation/structure-definitions';
import type { Permission } from './scopes';

/** The shipped policy: a data file, so that what a role may do is read and changed without code. */
export const DEFAULT_ROLE_POLICY_FILE = path.join(__dirname, '..', '..', 'policies', 'roles.json');

const ROLES = ['admin', 'practitioner', 'nurse', 'receptionist', 'patient', 'pharmacist', 'lab-technician', 'insurer', 'auditor'];
const LETTERS = /^c?r?u?d?s?$/;

/** Role → resource type (or `*`) → the letters allowed. */
export type RolePolicy = ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<Permission>>>;

export class RolePolicyError extends Error {}

/**
 * Reads and checks a policy file: every role one of the nine, every key a resource type
 * or `*`, every value SMART v2 letters in cruds order. A mistake stops the server at
 * start with the entry named, instead of silently granting or denying.
 */
export function loadRolePolicy(file: string = DEFAULT_ROLE_POLICY_FILE): RolePolicy {
  const raw = readPolicyFile(file);
  const roles = (raw as { roles?: unknown })?.roles;
  if (typeof roles !== 'object' || roles === null) throw new RolePolicyError(`role policy ${file}: no "roles" object`);
  const policy = new Map<string, Map<string, Set<Permission>>>();
  for (const [role, types] of Object.entries(roles)) {
    if (!ROLES.includes(role)) throw new RolePolicyError(`role policy ${file}: unknown role "${role}" (roles: ${ROLES.join(', ')})`);
    if (typeof types !== 'object' || types === null) throw new RolePolicyError(`role policy ${file}: "${role}" must map types to letters`);
    const rules = new Map<string, Set<Permission>>();
    for (const [type, letters] of Object.entries(types)) {
      if (type !== '*' && !isResourceType(type)) throw new RolePolicyError(`role policy ${file}: "${role}" names unknown resource type "${type}"`);
      if (typeof letters !== 'string' || !LETTERS.test(letters)) {
        throw new RolePolicyError(`role policy ${file}: "${role}.${type}" must be letters of "cruds" in that order, got ${JSON.stringify(letters)}`);
      }
      rules.set(type, new Set(letters as unknown as Iterable<Permission>));
    }
    policy.set(role, rules);
  }
  return policy;
}

/** Operation name (without `$`) → the roles that may call it. */
export type OperationPolicy = ReadonlyMap<string, ReadonlySet<string>>;

/** The file's `operations`: which roles may call the operations whose own rules decide (break-the-glass, transfer). */
export function loadOperationPolicy(file: string = DEFAULT_ROLE_POLICY_FILE): OperationPolicy {
  const raw = readPolicyFile(file);
  const operations = (raw as { operations?: unknown })?.operations ?? {};
  if (typeof operations !== 'object' || operations === null) throw new RolePolicyError(`role policy ${file}: "operations" must map operation names to roles`);
  const policy = new Map<string, Set<string>>();
  for (const [name, roles] of Object.entries(operations)) {
    if (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string' || !ROLES.includes(r))) {
      throw new RolePolicyError(`role policy ${file}: operation "${name}" must list roles among ${ROLES.join(', ')}`);
    }
    policy.set(name, new Set(roles as string[]));
  }
  return policy;
}

function readPolicyFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new RolePolicyError(`role policy ${file}: ${(err as Error).message}`);
  }
}

let shipped: RolePolicy | undefined;
let shippedOperations: OperationPolicy | undefined;

export function shippedOperationPolicy(): OperationPolicy {
  return (shippedOperations ??= loadOperationPolicy());
}

/** Whether `role` may call `operation`; an operation the policy does not name is open to no role. */
export function roleMayCall(policy: OperationPolicy, role: string, operation: string): boolean {
  return policy.get(operation)?.has(role) ?? false;
}

export function shippedRolePolicy(): RolePolicy {
  return (shipped ??= loadRolePolicy());
}

/** Whether `role` may use `permission` on `resourceType`; an unknown role may do nothing. */
export function roleAllows(policy: RolePolicy, role: string, resourceType: string, permission: Permission): boolean {
  const rules = policy.get(role);
  if (!rules) return false;
  const letters = rules.get(resourceType) ?? rules.get('*');
  return letters?.has(permission) ?? false;
}
