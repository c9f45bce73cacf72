import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { hashSecret } from './secret-hash';

export const ROLES = ['admin', 'practitioner', 'nurse', 'receptionist', 'patient', 'pharmacist', 'lab-technician', 'insurer', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

/** A login account, linked to the FHIR resource that is the user (`fhirUser`). */
export interface UserAccount {
  id: string;
  username: string;
  passwordHash: string;
  /** `Patient/123`, `Practitioner/456`, `RelatedPerson/7`, `Person/8`. */
  fhirUser: string;
  role: Role;
  /** Base32 TOTP secret when a second factor is enrolled. */
  totpSecret?: string;
  failedLogins: number;
  lockedUntil?: Date;
}

export interface NewUser {
  username: string;
  password: string;
  fhirUser: string;
  role: Role;
  totpSecret?: string;
}

interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  fhir_user: string;
  role: Role;
  totp_secret: string | null;
  failed_logins: number;
  locked_until: Date | null;
}

function toUser(row: UserRow): UserAccount {
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    fhirUser: row.fhir_user,
    role: row.role,
    totpSecret: row.totp_secret ?? undefined,
    failedLogins: row.failed_logins,
    lockedUntil: row.locked_until ?? undefined,
  };
}

export async function findUserByUsername(knex: Knex, username: string): Promise<UserAccount | undefined> {
  const row: UserRow | undefined = await knex('auth_user').where({ username }).first();
  return row ? toUser(row) : undefined;
}

export async function findUserById(knex: Knex, id: string): Promise<UserAccount | undefined> {
  const row: UserRow | undefined = await knex('auth_user').where({ id }).first();
  return row ? toUser(row) : undefined;
}

/** Creates the account, or replaces password, fhirUser, role and TOTP of the same username. */
export async function saveUser(knex: Knex, user: NewUser): Promise<UserAccount> {
  const row = {
    id: randomUUID(),
    username: user.username,
    password_hash: await hashSecret(user.password),
    fhir_user: user.fhirUser,
    role: user.role,
    totp_secret: user.totpSecret ?? null,
    failed_logins: 0,
    locked_until: null,
  };
  const [saved]: UserRow[] = await knex('auth_user')
    .insert(row)
    .onConflict('username')
    .merge(['password_hash', 'fhir_user', 'role', 'totp_secret', 'failed_logins', 'locked_until'])
    .returning('*');
  return toUser(saved);
}
