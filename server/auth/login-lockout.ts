import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import type { AuthConfig } from '../config';
import { hashSecret, verifySecret } from './secret-hash';
import { findUserByUsername, type UserAccount } from './user-store';

/**
 * Password checks with lockout (OWASP Authentication Cheat Sheet, "Account lockout"):
 * after `loginMaxFailures` failures in a row the account is locked for
 * `loginLockSeconds`, and each further failure locks it for twice as long as the one
 * before. A locked account is refused whatever the password, with the same answer as a
 * wrong password or an unknown username, after the same argon2 work.
 */

/** Doubling stops here (2^16 × the first lock), so the interval stays a sane number. */
const MAX_DOUBLINGS = 16;

let dummyHash: Promise<string> | undefined;

/** An argon2 hash of a random secret: unknown usernames cost the same time as known ones. */
function timingDummy(): Promise<string> {
  dummyHash ??= hashSecret(randomBytes(16).toString('hex'));
  return dummyHash;
}

export function isLocked(user: UserAccount, now = new Date()): boolean {
  return user.lockedUntil !== undefined && user.lockedUntil.getTime() > now.getTime();
}

/**
 * The account when the password is right and the account is not locked. A wrong
 * password counts as a failure; a right one on a locked account is refused without
 * counting (it does not extend the lock). The counter is reset by `recordLoginSuccess`
 * once every factor has passed.
 */
export async function checkPassword(knex: Knex, config: AuthConfig, username: string, password: string): Promise<UserAccount | undefined> {
  const user = username === '' ? undefined : await findUserByUsername(knex, username);
  if (!user) {
    await verifySecret(await timingDummy(), password);
    return undefined;
  }
  const ok = await verifySecret(user.passwordHash, password);
  if (!ok) {
    await recordLoginFailure(knex, config, user.id);
    return undefined;
  }
  return isLocked(user) ? undefined : user;
}

/** One more failure in a row; locks (or doubles the lock) from the `loginMaxFailures`-th on. Atomic across processes. */
export async function recordLoginFailure(knex: Knex, config: AuthConfig, userId: string): Promise<void> {
  await knex.raw(
    `UPDATE auth_user
        SET failed_logins = failed_logins + 1,
            locked_until = CASE
              WHEN failed_logins + 1 >= :max
              THEN now() + make_interval(secs => :lock * power(2, least(failed_logins + 1 - :max, :cap)))
              ELSE locked_until
            END
      WHERE id = :id`,
    { max: config.loginMaxFailures, lock: config.loginLockSeconds, cap: MAX_DOUBLINGS, id: userId }
  );
}

export async function recordLoginSuccess(knex: Knex, userId: string): Promise<void> {
  await knex('auth_user').where({ id: userId }).update({ failed_logins: 0, locked_until: null });
}
