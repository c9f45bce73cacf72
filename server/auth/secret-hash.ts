import { createHash } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';

/** Passwords and client secrets: argon2id with the library's defaults (OWASP's minimum: 19 MiB, t=2). */
export async function hashSecret(secret: string): Promise<string> {
  return hash(secret);
}

export async function verifySecret(stored: string, candidate: string): Promise<boolean> {
  try {
    return await verify(stored, candidate);
  } catch {
    return false;
  }
}

/**
 * Codes and refresh tokens are 256-bit random values: a fast hash keeps a database leak
 * from yielding usable tokens, and lets the token be looked up by its hash.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
