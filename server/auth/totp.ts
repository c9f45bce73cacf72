import { Secret, TOTP } from 'otpauth';

/**
 * Time-based one-time passwords (RFC 6238) as authenticator apps make them: HMAC-SHA1,
 * 6 digits, 30-second steps. One step either side is accepted for clock drift.
 */
const ALGORITHM = 'SHA1';
const DIGITS = 6;
const PERIOD = 30;
const WINDOW = 1;

function totpFor(secretBase32: string, label = 'user', issuer = 'FHIR server'): TOTP {
  return new TOTP({ issuer, label, algorithm: ALGORITHM, digits: DIGITS, period: PERIOD, secret: Secret.fromBase32(secretBase32) });
}

/** Whether `code` is the current code of the secret (or of the step before or after). */
export function verifyTotp(secretBase32: string, code: string, timestamp = Date.now()): boolean {
  const token = code.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(token)) return false;
  try {
    return totpFor(secretBase32).validate({ token, timestamp, window: WINDOW }) !== null;
  } catch {
    // A malformed stored secret never authenticates.
    return false;
  }
}

/** The code of `timestamp` (tests, and a CLI that shows the first code to confirm enrolment). */
export function totpCode(secretBase32: string, timestamp = Date.now()): string {
  return totpFor(secretBase32).generate({ timestamp });
}

export interface TotpEnrollment {
  /** Base32, 160 bits: what `auth_user.totp_secret` stores. */
  secret: string;
  /** `otpauth://totp/...`: what an authenticator app scans (as a QR code) or imports. */
  uri: string;
}

/** A new secret for `user add --totp`, and the otpauth:// URI that enrols it in an app. */
export function newTotpEnrollment(username: string, issuer = 'FHIR server'): TotpEnrollment {
  const secret = new Secret({ size: 20 }).base32;
  return { secret, uri: totpFor(secret, username, issuer).toString() };
}
