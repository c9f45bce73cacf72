import type { Knex } from 'knex';
import { isValidId } from '../../server/core/ids';
import { OperationOutcomeError } from '../../server/core/outcome';
import { newTotpEnrollment, type TotpEnrollment } from '../../server/auth/totp';
import { findUserByUsername, ROLES, type NewUser, type Role, saveUser } from '../../server/auth/user-store';
import { Repository } from '../../server/storage/repository';
import { CliError } from './client-add';

/** `user add` as commander hands it over. */
export interface UserAddOptions {
  username: string;
  password: string;
  fhirUser: string;
  role?: string;
  totp?: boolean;
}

const FHIR_USER_TYPES = ['Patient', 'Practitioner', 'RelatedPerson', 'Person'] as const;
const DEFAULT_ROLE: Partial<Record<(typeof FHIR_USER_TYPES)[number], Role>> = { Patient: 'patient', Practitioner: 'practitioner' };
export const MIN_PASSWORD_LENGTH = 8;

export interface UserPlan {
  user: Omit<NewUser, 'totpSecret'>;
  resourceType: string;
  id: string;
  totp: boolean;
}

/** Checks the options without touching the database. */
export function planUser(options: UserAddOptions): UserPlan {
  const username = options.username;
  if (!/^[^\s\p{C}]{1,128}$/u.test(username)) {
    throw new CliError(`--username "${username}" is not a username: use 1 to 128 characters without spaces`);
  }
  if (options.password.length < MIN_PASSWORD_LENGTH) {
    throw new CliError(`--password is too short: at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  const match = /^([A-Za-z]+)\/(.*)$/.exec(options.fhirUser);
  const resourceType = match?.[1] as (typeof FHIR_USER_TYPES)[number] | undefined;
  if (!match || !resourceType || !FHIR_USER_TYPES.includes(resourceType) || !isValidId(match[2])) {
    throw new CliError(`--fhir-user "${options.fhirUser}" must be Type/id with Type one of ${FHIR_USER_TYPES.join(', ')} and a FHIR id (e.g. Patient/123)`);
  }
  const id = match[2];

  let role: Role;
  if (options.role === undefined) {
    const fallback = DEFAULT_ROLE[resourceType];
    if (!fallback) throw new CliError(`--role is required for a ${resourceType} user (one of ${ROLES.join(', ')})`);
    role = fallback;
  } else {
    if (!(ROLES as readonly string[]).includes(options.role)) {
      throw new CliError(`unknown role "${options.role}": use one of ${ROLES.join(', ')}`);
    }
    role = options.role as Role;
  }
  // The patient role means "this account is the patient"; its data access follows from fhirUser.
  if (role === 'patient' && resourceType !== 'Patient') {
    throw new CliError(`role patient needs a Patient --fhir-user, not ${options.fhirUser}`);
  }
  if (resourceType === 'Patient' && role !== 'patient') {
    throw new CliError(`a Patient --fhir-user can only have role patient, not ${role}`);
  }
  return { user: { username, password: options.password, fhirUser: `${resourceType}/${id}`, role }, resourceType, id, totp: options.totp === true };
}

export interface UserAddResult {
  /** Lines for stdout: the report, then the TOTP secret and URI when one was made. */
  lines: string[];
  warnings: string[];
  /** Informational: the account existed and was replaced. */
  notes: string[];
}

/** Creates the account (or replaces the one with that username). */
export async function addUser(knex: Knex, plan: UserPlan, repository: Repository): Promise<UserAddResult> {
  const warnings: string[] = [];
  const missing = await resourceProblem(repository, plan.resourceType, plan.id);
  if (missing) warnings.push(`${plan.user.fhirUser} ${missing}; the account is created anyway, load the resource before the user logs in`);

  const previous = await findUserByUsername(knex, plan.user.username);
  let totp: TotpEnrollment | undefined;
  if (plan.totp) {
    totp = newTotpEnrollment(plan.user.username);
  } else if (previous?.totpSecret) {
    warnings.push(`user ${plan.user.username} had a TOTP second factor; it is removed (run again with --totp to enrol a new one)`);
  }
  const saved = await saveUser(knex, { ...plan.user, totpSecret: totp?.secret });

  const notes = previous ? [`user ${plan.user.username} existed: its password, fhirUser, role and TOTP are replaced`] : [];
  const lines = [`user ${saved.username} added (role ${saved.role}, fhirUser ${saved.fhirUser})`];
  if (totp) {
    lines.push(`TOTP secret (shown only now): ${totp.secret}`);
    lines.push(`TOTP URI (for an authenticator app or a QR code): ${totp.uri}`);
  }
  return { lines, warnings, notes };
}

/** Why the fhirUser resource cannot be read now (not there yet, deleted), or undefined when it can. */
async function resourceProblem(repository: Repository, resourceType: string, id: string): Promise<string | undefined> {
  try {
    await repository.read(resourceType, id);
    return undefined;
  } catch (err) {
    if (err instanceof OperationOutcomeError && err.status === 404) return 'does not exist yet';
    if (err instanceof OperationOutcomeError && err.status === 410) return 'was deleted';
    throw err;
  }
}
